import { createPrivateKey, createPublicKey } from 'node:crypto'
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CompactEncrypt, FlattenedEncrypt, GeneralEncrypt } from 'jose'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createLayerDecryptor, type LayerDecryptorOptions } from '../../src/decrypt/layer-decryptor.js'
import {
  type DecryptionKey,
  loadDecryptionKeys,
  parseDecryptionKeySpec,
} from '../../src/decrypt/private-keys.js'
import type { Descriptor } from '../../src/manifest.js'
import { runCli } from '../helpers/cli.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import type { TreeEntry } from '../helpers/tree-snapshot.js'
import { BUSYBOX_LAYOUT, requireTool, run } from '../rig/index.js'
import {
  JWE_ANNOTATION,
  type KeyPair,
  makeKeyPair,
  privateOptionsOf,
  readManifest,
  rewriteLayers,
  skopeoCopy,
  skopeoEncrypt,
  unpackSnapshot,
} from './helpers/encrypted-images.js'

/**
 * Images encrypted by real skopeo 1.9 (Go ocicrypt) from the busybox fixture, unpacked by ocipull
 * with the matching private key: the rootfs must equal the unencrypted image's.
 */

const tools = requireTool('skopeo', 'openssl')
afterAll(removeTempDirs)

const OCI = 'application/vnd.oci.image.layer.v1'

/** The `alg` of every recipient of a layer's JWE annotation. */
function jweAlgs(layer: Descriptor): string[] {
  const jwe = JSON.parse(Buffer.from(layer.annotations?.[JWE_ANNOTATION] as string, 'base64').toString())
  const header = (p: string) => JSON.parse(Buffer.from(p, 'base64url').toString()) as { alg?: string }
  if (jwe.recipients) return jwe.recipients.map((r: { header?: { alg?: string } }) => r.header?.alg)
  return [header(jwe.protected).alg as string]
}

describe.skipIf(!tools)('skopeo-encrypted images', () => {
  let work: string
  let rsa: KeyPair
  let ec: KeyPair
  let plain: Record<string, TreeEntry>
  const layouts: Record<string, string> = {}

  const keysOf = async (...specs: string[]): Promise<DecryptionKey[]> =>
    (await Promise.all(specs.map((s) => loadDecryptionKeys(parseDecryptionKeySpec(s))))).flat()
  const bundle = async () => join(await makeTempDir('ocipull-decrypt-'), 'bundle')

  beforeAll(async () => {
    work = await makeTempDir('ocipull-skopeo-enc-')
    rsa = await makeKeyPair(work, 'rsa', 'rsa')
    ec = await makeKeyPair(work, 'ec', 'ec')
    const busybox = `oci:${BUSYBOX_LAYOUT}:latest`
    const zstd = join(work, 'plain-zstd')
    await skopeoCopy(busybox, `oci:${zstd}:latest`, ['--dest-compress-format', 'zstd'])
    // skopeo keeps uncompressed layers uncompressed only through the dir: transport.
    const plainDir = join(work, 'plain-dir')
    const encDir = join(work, 'enc-dir')
    await skopeoCopy(busybox, `dir:${plainDir}`, ['--dest-decompress'])
    await skopeoEncrypt(`dir:${plainDir}`, `dir:${encDir}`, { recipients: [rsa.public] })
    layouts['uncompressed'] = join(work, 'enc-none')
    await skopeoCopy(`dir:${encDir}`, `oci:${layouts['uncompressed']}:latest`)
    const encrypt = async (name: string, from: string, recipients: string[], layers?: number[]) => {
      layouts[name] = join(work, name)
      await skopeoEncrypt(from, `oci:${layouts[name]}:latest`, { recipients, ...(layers ? { layers } : {}) })
    }
    await encrypt('rsa', busybox, [rsa.public])
    await encrypt('ec', busybox, [ec.public])
    await encrypt('both', busybox, [rsa.public, ec.public])
    await encrypt('zstd', `oci:${zstd}:latest`, [ec.public])
    await encrypt('partial', busybox, [rsa.public], [0, -1])
    // A JWK public key works as a recipient too; skopeo 1.9 ignores its `alg` (still RSA-OAEP)
    // and refuses EC JWKs.
    const jwk = createPublicKey(await readFile(rsa.public)).export({ format: 'jwk' })
    await writeFile(join(work, 'rsa.jwk'), JSON.stringify({ ...jwk, alg: 'RSA-OAEP-256' }))
    await encrypt('rsa-jwk', busybox, [join(work, 'rsa.jwk')])
    plain = await unpackSnapshot(BUSYBOX_LAYOUT, await bundle())
  })

  const cases = [
    {
      name: 'RSA recipient (RSA-OAEP), tar+gzip',
      layout: 'rsa',
      key: () => rsa.private,
      media: ['gzip', 'gzip', 'gzip'],
    },
    {
      name: 'EC P-256 recipient (ECDH-ES+A256KW), tar+gzip',
      layout: 'ec',
      key: () => ec.private,
      media: ['gzip', 'gzip', 'gzip'],
    },
    {
      name: 'two recipients, the RSA key',
      layout: 'both',
      key: () => rsa.private,
      media: ['gzip', 'gzip', 'gzip'],
    },
    {
      name: 'two recipients, the EC key',
      layout: 'both',
      key: () => ec.private,
      media: ['gzip', 'gzip', 'gzip'],
    },
    {
      name: 'RSA recipient given as a JWK public key',
      layout: 'rsa-jwk',
      key: () => rsa.private,
      media: ['gzip', 'gzip', 'gzip'],
      alg: 'RSA-OAEP',
    },
    { name: 'tar+zstd layers', layout: 'zstd', key: () => ec.private, media: ['zstd', 'zstd', 'zstd'] },
    { name: 'uncompressed tar layers', layout: 'uncompressed', key: () => rsa.private, media: ['', '', ''] },
  ]
  for (const c of cases) {
    test(c.name, async () => {
      const manifest = await readManifest(layouts[c.layout] as string)
      expect(manifest.layers.map((l) => l.mediaType)).toEqual(
        c.media.map((m) => `${OCI}.tar${m === '' ? '' : `+${m}`}+encrypted`),
      )
      const decryptor = createLayerDecryptor({ keys: await keysOf(c.key()) })
      expect(await unpackSnapshot(layouts[c.layout] as string, await bundle(), { decryptor })).toEqual(plain)
      if ('alg' in c) expect(jweAlgs(manifest.layers[0] as Descriptor)).toEqual([c.alg])
    })
  }

  test("each image decrypts the same on the layers' own threads, and with `auto` moving there", async () => {
    const engines: LayerDecryptorOptions[] = [
      { engine: 'thread', threadMinBytes: 0 },
      { threadMinBytes: 0, probeBytes: 1 },
      { threadMinBytes: 0, probeBytes: 100_000 },
    ]
    for (const c of cases) {
      for (const engine of engines) {
        const decryptor = createLayerDecryptor({ keys: await keysOf(c.key()), ...engine })
        expect(
          await unpackSnapshot(layouts[c.layout] as string, await bundle(), { decryptor }),
          `${c.name} ${JSON.stringify(engine)}`,
        ).toEqual(plain)
      }
    }
  })

  test('RSA-OAEP-256, ECDH-ES+A128KW/A192KW, compact JWEs (skopeo 1.9 cannot write them; jose does, over its options)', async () => {
    const forms: [string, (optsdata: Buffer) => Promise<string>, KeyPair[]][] = [
      [
        'general: A128KW + A192KW',
        async (o) => {
          const e = new GeneralEncrypt(o).setProtectedHeader({ enc: 'A256GCM' })
          e.addRecipient(createPublicKey(await readFile(rsa.public))).setUnprotectedHeader({
            alg: 'RSA-OAEP-256',
          })
          e.addRecipient(createPublicKey(await readFile(ec.public))).setUnprotectedHeader({
            alg: 'ECDH-ES+A128KW',
          })
          return JSON.stringify(await e.encrypt())
        },
        [rsa, ec],
      ],
      [
        'flattened: A192KW, A128CBC-HS256',
        async (o) =>
          JSON.stringify(
            await new FlattenedEncrypt(o)
              .setProtectedHeader({ alg: 'ECDH-ES+A192KW', enc: 'A128CBC-HS256' })
              .encrypt(createPublicKey(await readFile(ec.public))),
          ),
        [ec],
      ],
      [
        'compact: ECDH-ES+A256KW',
        async (o) =>
          new CompactEncrypt(o)
            .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A192GCM' })
            .encrypt(createPublicKey(await readFile(ec.public))),
        [ec],
      ],
    ]
    for (const [name, wrap, keyPairs] of forms) {
      const layout = join(work, `jose-${name.split(':')[0]}`)
      await cp(layouts['rsa'] as string, layout, { recursive: true })
      await rewriteLayers(layout, async (layer) => {
        const optsdata = await privateOptionsOf(layer, rsa.private)
        const jwe = Buffer.from(await wrap(optsdata)).toString('base64')
        return { annotations: { ...layer.annotations, [JWE_ANNOTATION]: jwe } }
      })
      for (const pair of keyPairs) {
        const decryptor = createLayerDecryptor({ keys: await keysOf(pair.private) })
        expect(
          await unpackSnapshot(layout, await bundle(), { decryptor }),
          `${name}, ${pair.private}`,
        ).toEqual(plain)
      }
    }
  })

  test('non-distributable media types (+encrypted)', async () => {
    const layout = join(work, 'nondistributable')
    await cp(layouts['rsa'] as string, layout, { recursive: true })
    await rewriteLayers(layout, (layer) => ({
      mediaType: layer.mediaType.replace('.layer.v1.', '.layer.nondistributable.v1.'),
    }))
    const manifest = await readManifest(layout)
    expect(new Set(manifest.layers.map((l) => l.mediaType))).toEqual(
      new Set(['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip+encrypted']),
    )
    const decryptor = createLayerDecryptor({ keys: await keysOf(rsa.private) })
    expect(await unpackSnapshot(layout, await bundle(), { decryptor })).toEqual(plain)
  })

  test('only some layers encrypted (--encrypt-layer 0 -1)', async () => {
    const manifest = await readManifest(layouts['partial'] as string)
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([
      `${OCI}.tar+gzip+encrypted`,
      `${OCI}.tar+gzip`,
      `${OCI}.tar+gzip+encrypted`,
    ])
    const decryptor = createLayerDecryptor({ keys: await keysOf(rsa.private) })
    expect(await unpackSnapshot(layouts['partial'] as string, await bundle(), { decryptor })).toEqual(plain)
  })

  test('private keys as encrypted PKCS#8 PEM, DER (PKCS#8, PKCS#1, SEC1), JWK and a key directory', async () => {
    const dir = join(work, 'key-forms')
    await mkdir(join(dir, 'several'), { recursive: true })
    const ecEncrypted = join(dir, 'ec-encrypted.pem')
    await run('openssl', [
      'pkcs8',
      '-topk8',
      '-in',
      ec.private,
      '-out',
      ecEncrypted,
      '-v2',
      'aes-256-cbc',
      '-passout',
      'pass:s3cret:with:colons',
    ])
    await writeFile(join(dir, 'password'), 's3cret:with:colons')
    const rsaKey = createPrivateKey(await readFile(rsa.private))
    const ecKey = createPrivateKey(await readFile(ec.private))
    const files = {
      rsaPkcs8Der: rsaKey.export({ format: 'der', type: 'pkcs8' }),
      rsaPkcs1Der: rsaKey.export({ format: 'der', type: 'pkcs1' }),
      ecSec1Der: ecKey.export({ format: 'der', type: 'sec1' }),
      ecJwk: Buffer.from(JSON.stringify(ecKey.export({ format: 'jwk' }))),
      rsaJwks: Buffer.from(JSON.stringify({ keys: [rsaKey.export({ format: 'jwk' })] })),
    }
    for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes)
    await writeFile(join(dir, 'several', 'a.pem'), await readFile(rsa.private))
    await writeFile(join(dir, 'several', 'b.jwk'), files.ecJwk)
    const specs = [
      `${ecEncrypted}:s3cret:with:colons`,
      `${ecEncrypted}:pass=s3cret:with:colons`,
      `${ecEncrypted}:file=${join(dir, 'password')}`,
      ...Object.keys(files).map((name) => join(dir, name)),
      join(dir, 'several'),
    ]
    for (const spec of specs) {
      const keys = await keysOf(spec)
      const layout = keys[0]?.key.asymmetricKeyType === 'rsa' ? 'rsa' : 'ec'
      const decryptor = createLayerDecryptor({ keys })
      expect(
        await unpackSnapshot(layouts[spec.endsWith('several') ? 'both' : layout] as string, await bundle(), {
          decryptor,
        }),
        spec,
      ).toEqual(plain)
    }
    expect(await readdir(join(dir, 'several'))).toHaveLength(2)
    await expect(keysOf(ecEncrypted)).rejects.toMatchObject({ code: 'ERR_KEY_INVALID' })
    await expect(keysOf(`${ecEncrypted}:wrong`)).rejects.toMatchObject({ code: 'ERR_KEY_INVALID' })
    await expect(keysOf(ec.public)).rejects.toMatchObject({ code: 'ERR_KEY_INVALID' })
    await expect(keysOf(join(dir, 'missing.pem'))).rejects.toMatchObject({ code: 'ERR_KEY_UNAVAILABLE' })
  })

  test('ocipull unpack --decryption-key (CLI): exit 0 with the key, 8 without', async () => {
    const target = await bundle()
    const ref = `oci:${layouts['both']}:latest`
    const absent = await runCli([
      'unpack',
      ref,
      '--bundle',
      target,
      '--json',
      '--decryption-key',
      `${work}/nothing-here.pem`,
    ])
    expect(absent).toMatchObject({
      code: 8,
      stderr: expect.stringMatching(/ERR_KEY_UNAVAILABLE: .*nothing-here/),
    })
    const good = await runCli([
      'unpack',
      ref,
      '--bundle',
      target,
      '--decryption-key',
      rsa.private,
      '--decryption-key',
      ec.private,
    ])
    expect(good.stderr).not.toMatch(/ERR_/)
    expect(good.code).toBe(0)
    const missing = await runCli(['unpack', ref, '--bundle', await bundle()])
    expect(missing).toMatchObject({
      code: 8,
      stderr: expect.stringMatching(/ERR_KEY_UNAVAILABLE: .*encrypted/),
    })
  })
})
