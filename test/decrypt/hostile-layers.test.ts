import { existsSync, readdirSync } from 'node:fs'
import { cp, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  createLayerDecryptor,
  type LayerDecryptor,
  type LayerDecryptorOptions,
} from '../../src/decrypt/layer-decryptor.js'
import { loadDecryptionKeys } from '../../src/decrypt/private-keys.js'
import type { Descriptor } from '../../src/manifest.js'
import { ociLayoutSource } from '../../src/sources/oci-layout-source.js'
import { unpackImage } from '../../src/unpack-image.js'
import { expectFailure } from '../helpers/failure.js'
import { blobPath } from '../helpers/layout-writer.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { BUSYBOX_LAYOUT, requireTool } from '../rig/index.js'
import {
  JWE_ANNOTATION,
  type KeyPair,
  makeKeyPair,
  PUBOPTS_ANNOTATION,
  readManifest,
  rewriteLayers,
  skopeoEncrypt,
} from './helpers/encrypted-images.js'

/**
 * One hostile case per threat, on a skopeo-encrypted copy of the busybox fixture: each must fail
 * with its typed error and leave no rootfs (nor staging directory) in the bundle.
 */

const tools = requireTool('skopeo', 'openssl')
afterAll(removeTempDirs)

type Edit = Parameters<typeof rewriteLayers>[1]

/**
 * Every engine: the calling thread, a thread of the layer's own, and `auto` moving to a thread at
 * the first write, or deciding after 100 kB (adaptive-decryption.ts; the switch in the middle of
 * a layer is tested in decrypt-thread.test.ts).
 */
describe.skipIf(!tools).each<[string, LayerDecryptorOptions]>([
  ['on this thread', { engine: 'calling-thread' }],
  ['on its own thread', { engine: 'thread', threadMinBytes: 0 }],
  ['auto, moved to a thread at once', { threadMinBytes: 0, probeBytes: 1 }],
  ['auto, deciding after 100 kB', { threadMinBytes: 0, probeBytes: 100_000 }],
])('hostile encrypted layers, decrypted %s', (_name, engine) => {
  let work: string
  let encrypted: string
  let rsa: KeyPair
  let decryptor: LayerDecryptor

  beforeAll(async () => {
    work = await makeTempDir('ocipull-hostile-enc-')
    rsa = await makeKeyPair(work, 'rsa', 'rsa')
    encrypted = join(work, 'encrypted')
    await skopeoEncrypt(`oci:${BUSYBOX_LAYOUT}:latest`, `oci:${encrypted}:latest`, {
      recipients: [rsa.public],
    })
    decryptor = createLayerDecryptor({
      keys: await loadDecryptionKeys({ path: rsa.private }),
      ...engine,
    })
  })

  let copies = 0
  /** A copy of the encrypted layout with `edit` applied (digests, sizes and manifest fixed up). */
  const variant = async (edit?: Edit) => {
    const layout = join(work, `variant-${copies++}`)
    await cp(encrypted, layout, { recursive: true })
    if (edit) await rewriteLayers(layout, edit)
    return layout
  }

  /** Unpacks and expects `code`; then nothing may be left in the bundle. */
  const expectRefused = async (
    layout: string,
    d: LayerDecryptor | undefined,
    code: string,
    ...fragments: string[]
  ) => {
    const bundle = join(await makeTempDir('ocipull-hostile-'), 'bundle')
    await mkdir(bundle)
    const source = ociLayoutSource({ path: layout, tag: 'latest' })
    try {
      await expectFailure(unpackImage(source, { bundle, ...(d ? { decryptor: d } : {}) }), code, ...fragments)
    } finally {
      await source.close()
    }
    expect(readdirSync(bundle)).toEqual([])
  }

  const flipLastLayerByte =
    (offset: (size: number) => number): Edit =>
    (_layer, blob, i) => {
      if (i !== 0) return undefined
      const copy = Buffer.from(blob)
      const at = offset(copy.length)
      copy[at] = (copy[at] as number) ^ 0x01
      return { blob: copy }
    }

  test('wrong key: ERR_KEY_INVALID naming what was tried, before any layer is fetched', async () => {
    const other = await makeKeyPair(work, 'other', 'rsa')
    const wrong = createLayerDecryptor({ keys: await loadDecryptionKeys({ path: other.private }) })
    await expectRefused(
      encrypted,
      wrong,
      'ERR_KEY_INVALID',
      'no key unwraps',
      'enc.keys.jwe (RSA-OAEP) with',
      'other.pem',
    )
  })

  test('missing key: ERR_KEY_UNAVAILABLE without a decryptor and with keys of another type', async () => {
    await expectRefused(encrypted, undefined, 'ERR_KEY_UNAVAILABLE', 'encrypted and no decryption keys')
    const ec = await makeKeyPair(work, 'ec', 'ec')
    const ecOnly = createLayerDecryptor({ keys: await loadDecryptionKeys({ path: ec.private }) })
    await expectRefused(encrypted, ecOnly, 'ERR_KEY_UNAVAILABLE', 'no key of its type')
    await expectRefused(encrypted, createLayerDecryptor(), 'ERR_KEY_UNAVAILABLE', 'no private keys given')
  })

  test('tampered ciphertext with the blob digest fixed up: HMAC mismatch, ERR_DECRYPTION_FAILED', async () => {
    // Bytes in the middle: gzip and tar see garbage long before the end, and still the HMAC verdict wins.
    const layout = await variant(flipLastLayerByte((n) => Math.floor(n / 2)))
    await expectRefused(layout, decryptor, 'ERR_DECRYPTION_FAILED', 'HMAC mismatch')
    const early = await variant(flipLastLayerByte(() => 0))
    await expectRefused(early, decryptor, 'ERR_DECRYPTION_FAILED', 'HMAC mismatch')
    const last = await variant(flipLastLayerByte((n) => n - 1))
    await expectRefused(last, decryptor, 'ERR_DECRYPTION_FAILED', 'HMAC mismatch')
  })

  test('truncated ciphertext with digest and size fixed up: ERR_DECRYPTION_FAILED', async () => {
    const layout = await variant((_layer, blob, i) =>
      i === 0 ? { blob: blob.subarray(0, blob.length - 1000) } : undefined,
    )
    await expectRefused(layout, decryptor, 'ERR_DECRYPTION_FAILED', 'HMAC mismatch')
  })

  test('tampered ciphertext without fixing the digest: the blob digest check wins', async () => {
    const layout = await variant()
    const manifest = await readManifest(layout)
    const layer = manifest.layers[0] as Descriptor
    const path = join(layout, blobPath(layer.digest))
    const { readFile, writeFile } = await import('node:fs/promises')
    const blob = await readFile(path)
    blob[100] = (blob[100] as number) ^ 0xff
    await writeFile(path, blob)
    await expectRefused(layout, decryptor, 'ERR_DIGEST_MISMATCH')
  })

  test("another layer's public options (HMAC) on this layer: ERR_DECRYPTION_FAILED", async () => {
    const manifest = await readManifest(encrypted)
    const second = manifest.layers[1]?.annotations?.[PUBOPTS_ANNOTATION] as string
    const layout = await variant((layer, _blob, i) =>
      i === 0 ? { annotations: { ...layer.annotations, [PUBOPTS_ANNOTATION]: second } } : undefined,
    )
    await expectRefused(layout, decryptor, 'ERR_DECRYPTION_FAILED', 'HMAC mismatch')
  })

  const badAnnotations: {
    name: string
    annotations: (a: Record<string, string>) => Record<string, string>
    fragments: string[]
  }[] = [
    {
      name: 'pubopts that are not JSON',
      annotations: (a) => ({ ...a, [PUBOPTS_ANNOTATION]: Buffer.from('{"cipher":').toString('base64') }),
      fragments: ['org.opencontainers.image.enc.pubopts', 'not valid JSON'],
    },
    {
      name: 'pubopts that are not base64',
      annotations: (a) => ({ ...a, [PUBOPTS_ANNOTATION]: 'not base64!' }),
      fragments: ['not standard padded base64'],
    },
    {
      name: 'pubopts without hmac',
      annotations: (a) => ({
        ...a,
        [PUBOPTS_ANNOTATION]: Buffer.from('{"cipher":"AES_256_CTR_HMAC_SHA256"}').toString('base64'),
      }),
      fragments: ['hmac: missing'],
    },
    {
      name: 'pubopts missing',
      annotations: ({ [PUBOPTS_ANNOTATION]: _, ...a }) => a,
      fragments: ['pubopts is missing'],
    },
    {
      name: 'a JWE that is not JSON',
      annotations: (a) => ({ ...a, [JWE_ANNOTATION]: Buffer.from('{"protected":').toString('base64') }),
      fragments: ['enc.keys.jwe', 'malformed JWE'],
    },
    {
      name: 'a JWE that is neither JSON nor compact',
      annotations: (a) => ({ ...a, [JWE_ANNOTATION]: Buffer.from('hello').toString('base64') }),
      fragments: ['enc.keys.jwe', 'neither JSON nor compact'],
    },
    {
      name: 'an attestation-agent packet that is not JSON, with no JWE',
      annotations: ({ [JWE_ANNOTATION]: _, ...a }) => ({
        ...a,
        'org.opencontainers.image.enc.keys.provider.attestation-agent':
          Buffer.from('{"kid":').toString('base64'),
      }),
      fragments: ['provider.attestation-agent', 'not valid JSON'],
    },
  ]
  for (const c of badAnnotations) {
    test(`bad annotation: ${c.name}: ERR_MANIFEST_INVALID`, async () => {
      const layout = await variant((layer, _blob, i) =>
        i === 0 ? { annotations: c.annotations(layer.annotations ?? {}) } : undefined,
      )
      const withSource = createLayerDecryptor({
        keys: await loadDecryptionKeys({ path: rsa.private }),
        keySource: { getResource: async () => Buffer.alloc(32) },
      })
      await expectRefused(layout, withSource, 'ERR_MANIFEST_INVALID', ...c.fragments)
    })
  }

  test('an unsupported cipher: ERR_MEDIA_TYPE_UNSUPPORTED', async () => {
    const pub = Buffer.from(
      JSON.stringify({ cipher: 'AES_128_GCM', hmac: Buffer.alloc(32).toString('base64') }),
    )
    const layout = await variant((layer, _blob, i) =>
      i === 0
        ? { annotations: { ...layer.annotations, [PUBOPTS_ANNOTATION]: pub.toString('base64') } }
        : undefined,
    )
    await expectRefused(layout, decryptor, 'ERR_MEDIA_TYPE_UNSUPPORTED', 'AES_128_GCM')
  })

  test('the untouched image unpacks (the cases above fail for their reason only)', async () => {
    const bundle = join(await makeTempDir('ocipull-hostile-'), 'bundle')
    const source = ociLayoutSource({ path: await variant(), tag: 'latest' })
    try {
      await unpackImage(source, { bundle, decryptor })
    } finally {
      await source.close()
    }
    expect(existsSync(join(bundle, 'rootfs', 'bin', 'hello'))).toBe(true)
  })
})
