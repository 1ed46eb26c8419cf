import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { afterAll, describe, expect, test } from 'vitest'
import { type CipherKey, localDecryption } from '../../src/decrypt/aes-ctr-hmac.js'
import { parseAnnotationPacket, unwrapAnnotationPacket } from '../../src/decrypt/annotation-packet.js'
import { threadDecryption } from '../../src/decrypt/decrypt-thread.js'
import { decodeKeyProviderOutput, encodeKeyUnwrapInput } from '../../src/decrypt/keyprovider-messages.js'
import { readLayerEncryption } from '../../src/decrypt/layer-annotations.js'
import { createLayerDecryptor, type LayerDecryption } from '../../src/decrypt/layer-decryptor.js'
import { layerNonce, parsePrivateOptions } from '../../src/decrypt/layer-options.js'
import { loadDecryptionKeys } from '../../src/decrypt/private-keys.js'
import { type Digest, digestOf } from '../../src/digest.js'
import type { Descriptor, ImageManifest } from '../../src/manifest.js'
import { VerifyStream } from '../../src/verify-stream.js'
import { REF_NAME, writeBlob, writeLayoutFiles } from '../helpers/layout-writer.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { REPO_ROOT } from '../rig/index.js'
import { unpackSnapshot } from './helpers/encrypted-images.js'

/**
 * The shared vectors (test/fixtures/decrypt, copied from ../shared/vectors; see its README),
 * checked byte for byte: a layer encrypted by real Go ocicrypt (skopeo 1.9.3), its JWE and
 * attestation-agent wrapped keys, and keyprovider messages in Go's and Rust's encodings.
 */

const DIR = join(REPO_ROOT, 'test', 'fixtures', 'decrypt')
const file = (name: string) => readFile(join(DIR, name))
const text = async (name: string) => (await file(name)).toString('utf8').trim()
afterAll(removeTempDirs)

const encryptedLayer = async (): Promise<Descriptor> =>
  (JSON.parse(await text('ocicrypt-layer/manifest.encrypted.json')) as ImageManifest).layers[0] as Descriptor
const kek = async () =>
  Buffer.from(
    (JSON.parse(await text('ocicrypt-layer/aa-offline_fs_kbc-keys.json')) as Record<string, string>)[
      'default/key/key_id1'
    ] as string,
    'base64',
  )

/** The two engines of src/decrypt: this thread (small layers) and a thread of the layer's own (big ones). */
const engines: [string, (key: CipherKey, what: string) => LayerDecryption][] = [
  ['this thread', (key, what) => localDecryption(key, what)],
  ['own thread', (key, what) => threadDecryption(key, { blobAlgorithm: 'sha256', what })],
]

const vectorKey = async (digest?: Digest): Promise<CipherKey> => {
  const { pubopts } = readLayerEncryption(await encryptedLayer(), 'vector')
  const privopts = parsePrivateOptions(await file('ocicrypt-layer/privopts.json'), 'vector privopts')
  return {
    symkey: privopts.symkey,
    nonce: layerNonce(pubopts, privopts, 'vector'),
    hmac: pubopts.hmac,
    digest: digest ?? privopts.digest,
  }
}

/** Runs `blob` (in two pieces) through authenticate → decipher, as applyLayer does; the plaintext. */
const decrypt = async (d: LayerDecryption, blob: Buffer, source?: Readable): Promise<Buffer> => {
  const out: Buffer[] = []
  try {
    const input = source ?? Readable.from([blob.subarray(0, 7), blob.subarray(7)])
    await pipeline(Readable.from(d.authenticate(input)), d.decipher, async (s: AsyncIterable<Buffer>) => {
      for await (const c of s) out.push(c)
    })
  } finally {
    d.close()
  }
  return Buffer.concat(out)
}

describe.each(engines)('ocicrypt-layer vector, decrypted on %s', (_name, engine) => {
  test('the skopeo-made blob decrypts to the plain gzip layer, with its HMAC and digest', async () => {
    const layer = await encryptedLayer()
    const key = await vectorKey()
    const plain = await file('ocicrypt-layer/layer.plain.tar.gz')
    expect(key.digest).toBe(digestOf(plain))
    const blob = await file('ocicrypt-layer/layer.encrypted.bin')
    expect(digestOf(blob)).toBe(layer.digest)
    expect((await decrypt(engine(key, 'vector'), blob)).equals(plain)).toBe(true)
  })

  test('the blob digest, when the source hashes with the decryption (blobHash)', async () => {
    const layer = await encryptedLayer()
    const plain = await file('ocicrypt-layer/layer.plain.tar.gz')
    const blob = await file('ocicrypt-layer/layer.encrypted.bin')
    const d = engine(await vectorKey(), 'vector')
    const source = (digest: Digest) =>
      Readable.from([blob.subarray(0, 1000), blob.subarray(1000)]).pipe(
        new VerifyStream({ digest, size: blob.length, ...(d.blobHash ? { hash: d.blobHash } : {}) }),
      )
    expect((await decrypt(d, blob, source(layer.digest))).equals(plain)).toBe(true)
    const wrong = engine(await vectorKey(), 'vector')
    await expect(
      decrypt(
        wrong,
        blob,
        Readable.from([blob]).pipe(
          new VerifyStream({
            digest: digestOf(Buffer.from('another blob')),
            size: blob.length,
            ...(wrong.blobHash ? { hash: wrong.blobHash } : {}),
          }),
        ),
      ),
    ).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' })
  })

  test('a flipped bit fails the HMAC', async () => {
    const blob = Buffer.from(await file('ocicrypt-layer/layer.encrypted.bin'))
    blob[60] = (blob[60] as number) ^ 0x80
    await expect(decrypt(engine(await vectorKey(), 'v'), blob)).rejects.toMatchObject({
      code: 'ERR_DECRYPTION_FAILED',
      message: expect.stringMatching(/v: (HMAC mismatch|decrypted blob digest mismatch)/),
    })
  })

  test('a wrong private digest fails the decipher (the HMAC holds)', async () => {
    const blob = await file('ocicrypt-layer/layer.encrypted.bin')
    const key = await vectorKey(digestOf(Buffer.from('not the plaintext')))
    await expect(decrypt(engine(key, 'v'), blob)).rejects.toMatchObject({
      code: 'ERR_DECRYPTION_FAILED',
      message: expect.stringMatching(/v: decrypted blob digest mismatch/),
    })
  })
})

describe('ocicrypt-layer vector, keys', () => {
  test('the JWE annotation unwraps with the TEST-ONLY RSA key to the private options, byte for byte', async () => {
    const keys = await loadDecryptionKeys({
      path: join(DIR, 'ocicrypt-layer/TEST-ONLY-jwe-recipient-rsa2048-private.pem'),
    })
    const key = await createLayerDecryptor({ keys }).layerKey(await encryptedLayer())
    expect(key.via).toBe('enc.keys.jwe')
    const privopts = parsePrivateOptions(await file('ocicrypt-layer/privopts.json'), 'p')
    expect(key.privopts).toEqual(privopts)
    const decoded = JSON.parse(await text('ocicrypt-layer/jwe-annotation.decoded.json'))
    const annotation = (await encryptedLayer()).annotations?.[
      'org.opencontainers.image.enc.keys.jwe'
    ] as string
    expect(JSON.parse(Buffer.from(annotation, 'base64').toString())).toEqual(decoded)
  })

  test('the attestation-agent packet unwraps with the KEK of default/key/key_id1, byte for byte', async () => {
    const packet = parseAnnotationPacket(
      await file('ocicrypt-layer/annotation-packet.attestation-agent.json'),
      'vector packet',
    )
    expect(packet).toMatchObject({
      kid: 'kbs:///default/key/key_id1',
      wrapType: 'A256GCM',
      provider: 'kbs',
      version: '0.1.0',
    })
    const optsdata = unwrapAnnotationPacket(packet, await kek(), 'vector packet')
    expect(optsdata.toString()).toBe(await text('ocicrypt-layer/privopts.json'))
    const asked: string[] = []
    const decryptor = createLayerDecryptor({
      keySource: {
        getResource: async (uri) => {
          asked.push(uri)
          return kek()
        },
      },
    })
    const key = await decryptor.layerKey(await encryptedLayer())
    expect(key.via).toBe('enc.keys.provider.attestation-agent')
    expect(asked).toEqual(['kbs:///default/key/key_id1'])
  })

  test('the vector image unpacks to the plain image with either wrapped key', async () => {
    const work = await makeTempDir('ocipull-vector-')
    const config = await file('ocicrypt-layer/config.json')
    const write = async (name: string, manifest: Buffer, layerBlob: Buffer, mediaType: string) => {
      const layout = join(work, name)
      await writeBlob(layout, config, 'application/vnd.oci.image.config.v1+json')
      await writeBlob(layout, layerBlob, mediaType)
      const m = await writeBlob(layout, manifest, 'application/vnd.oci.image.manifest.v1+json')
      await writeLayoutFiles(layout, {
        schemaVersion: 2,
        manifests: [{ ...m, annotations: { [REF_NAME]: 'latest' } }],
      })
      return layout
    }
    const plain = await write(
      'plain',
      await file('ocicrypt-layer/manifest.plain.json'),
      await file('ocicrypt-layer/layer.plain.tar.gz'),
      'x',
    )
    const enc = await write(
      'enc',
      await file('ocicrypt-layer/manifest.encrypted.json'),
      await file('ocicrypt-layer/layer.encrypted.bin'),
      'x',
    )
    const want = await unpackSnapshot(plain, join(work, 'b0'))
    expect(Object.keys(want)).toContain('/hello.txt')
    const keys = await loadDecryptionKeys({
      path: join(DIR, 'ocicrypt-layer/TEST-ONLY-jwe-recipient-rsa2048-private.pem'),
    })
    expect(
      await unpackSnapshot(enc, join(work, 'b1'), { decryptor: createLayerDecryptor({ keys }) }),
    ).toEqual(want)
    const keySource = { getResource: async () => kek() }
    expect(
      await unpackSnapshot(enc, join(work, 'b2'), { decryptor: createLayerDecryptor({ keySource }) }),
    ).toEqual(want)
  })
})

describe('keyprovider vectors', () => {
  test('keyunwrap output: Go base64 and Rust number arrays give the same private options', async () => {
    const privopts = Buffer.from(await text('ocicrypt-layer/privopts.json'))
    const go = decodeKeyProviderOutput(await file('keyprovider/keyunwrap.output.go-style.json'), 'go')
    const rust = decodeKeyProviderOutput(
      await file('keyprovider/keyunwrap.output.rust-cdh-style.json'),
      'rust',
    )
    expect(go).toEqual({ optsdata: privopts })
    expect(rust).toEqual({ optsdata: privopts })
  })

  test('keywrap output: both encodings give the attestation-agent packet', async () => {
    const packet = Buffer.from(await text('ocicrypt-layer/annotation-packet.attestation-agent.json'))
    expect(decodeKeyProviderOutput(await file('keyprovider/keywrap.output.go-style.json'), 'go')).toEqual({
      annotation: packet,
    })
    expect(
      decodeKeyProviderOutput(
        await file('keyprovider/keywrap.output.rust-coco-keyprovider-style.json'),
        'rust',
      ),
    ).toEqual({
      annotation: packet,
    })
  })

  test('our keyunwrap request is the Go-style vector', async () => {
    const packet = Buffer.from(await text('ocicrypt-layer/annotation-packet.attestation-agent.json'))
    const ours = encodeKeyUnwrapInput(packet, { 'attestation-agent': [Buffer.from('cc_kbc::null')] })
    expect(JSON.parse(ours)).toEqual(JSON.parse(await text('keyprovider/keyunwrap.input.go-style.json')))
  })
})
