import { randomBytes } from 'node:crypto'
import { cp, mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { parseAnnotationPacket, unwrapAnnotationPacket } from '../../src/decrypt/annotation-packet.js'
import { runKeyProviderCmd } from '../../src/decrypt/keyprovider-cmd.js'
import { loadKeyProviderConfig } from '../../src/decrypt/keyprovider-config.js'
import { decodeKeyProviderOutput } from '../../src/decrypt/keyprovider-messages.js'
import { createLayerDecryptor, type LayerDecryptorOptions } from '../../src/decrypt/layer-decryptor.js'
import { OcipullError } from '../../src/errors.js'
import type { KeySource } from '../../src/keys/key-source.js'
import { ociLayoutSource } from '../../src/sources/oci-layout-source.js'
import { unpackImage } from '../../src/unpack-image.js'
import { runCli } from '../helpers/cli.js'
import { expectFailure } from '../helpers/failure.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import type { TreeEntry } from '../helpers/tree-snapshot.js'
import { BUSYBOX_LAYOUT, REPO_ROOT, requireTool } from '../rig/index.js'
import {
  AA_ANNOTATION,
  makeKeyPair,
  readManifest,
  rewrapForAttestationAgent,
  skopeoEncrypt,
  unpackSnapshot,
} from './helpers/encrypted-images.js'

/**
 * CoCo-style images: skopeo's private options re-wrapped into attestation-agent packets under a
 * KEK (what coco_keyprovider writes). ocipull unwraps them in-process with a KEK from a key
 * source, or through a `cmd` key provider (scripts/encrypt-keyprovider.mjs, answering in Go's or
 * Rust's encoding) configured by an ocicrypt.conf.
 */

const tools = requireTool('skopeo', 'openssl')
afterAll(removeTempDirs)

const KID = 'kbs:///default/image-kek/ocipull-test'
const PROVIDER_SCRIPT = join(REPO_ROOT, 'scripts', 'encrypt-keyprovider.mjs')

/** A key source over a table, as a test would configure an offline-fs map. */
function tableKeySource(table: Record<string, Buffer>, asked: string[] = []): KeySource {
  return {
    async getResource(uri) {
      asked.push(uri)
      const key = table[uri]
      if (key === undefined) throw new OcipullError('ERR_KEY_UNAVAILABLE', `${uri}: no such resource`)
      return key
    },
  }
}

describe.skipIf(!tools)('attestation-agent packets and key providers', () => {
  let work: string
  let layout: string
  let plain: Record<string, TreeEntry>
  const kek = randomBytes(32)
  let keysFile: string

  const bundle = async () => join(await makeTempDir('ocipull-kp-'), 'bundle')
  const conf = async (name: string, provider: unknown) => {
    const path = join(work, `${name}.conf`)
    await writeFile(path, JSON.stringify({ 'key-providers': { 'attestation-agent': provider } }))
    return path
  }
  const cmd = (...extra: string[]) => ({
    cmd: { path: process.execPath, args: [PROVIDER_SCRIPT, '--keys', keysFile, ...extra] },
  })
  const unpackWith = async (options: LayerDecryptorOptions) =>
    unpackSnapshot(layout, await bundle(), { decryptor: createLayerDecryptor(options) })
  const refuse = async (options: LayerDecryptorOptions, code: string, ...fragments: string[]) => {
    const target = await bundle()
    const source = ociLayoutSource({ path: layout, tag: 'latest' })
    try {
      await expectFailure(
        unpackImage(source, { bundle: target, decryptor: createLayerDecryptor(options) }),
        code,
        ...fragments,
      )
    } finally {
      await source.close()
    }
    expect(await readdir(target).catch(() => [])).toEqual([])
  }

  beforeAll(async () => {
    work = await makeTempDir('ocipull-aa-')
    const rsa = await makeKeyPair(work, 'rsa', 'rsa')
    const skopeoLayout = join(work, 'jwe')
    await skopeoEncrypt(`oci:${BUSYBOX_LAYOUT}:latest`, `oci:${skopeoLayout}:latest`, {
      recipients: [rsa.public],
    })
    layout = join(work, 'aa')
    await cp(skopeoLayout, layout, { recursive: true })
    await rewrapForAttestationAgent(layout, { privateKey: rsa.private, kek, kid: KID, dropJwe: true })
    keysFile = join(work, 'keys.json')
    await writeFile(keysFile, JSON.stringify({ 'default/image-kek/ocipull-test': kek.toString('base64') }))
    plain = await unpackSnapshot(BUSYBOX_LAYOUT, await bundle())
  })

  test('the image carries only attestation-agent packets', async () => {
    const manifest = await readManifest(layout)
    for (const layer of manifest.layers) {
      expect(Object.keys(layer.annotations ?? {}).sort()).toEqual([
        AA_ANNOTATION,
        'org.opencontainers.image.enc.pubopts',
      ])
    }
  })

  test('in-process: the KEK from the key source, fetched once for three layers', async () => {
    const asked: string[] = []
    expect(await unpackWith({ keySource: tableKeySource({ [KID]: kek }, asked) })).toEqual(plain)
    expect(asked).toEqual([KID])
  })

  test('a cmd key provider from ocicrypt.conf, answering in Go style and in Rust style', async () => {
    for (const extra of [[], ['--rust']]) {
      const keyProviders = await loadKeyProviderConfig({
        path: await conf(`go${extra.length}`, cmd(...extra)),
      })
      expect(await unpackWith({ keyProviders })).toEqual(plain)
    }
  })

  test('the CLI reads OCICRYPT_KEYPROVIDER_CONFIG', async () => {
    const env = { ...process.env, OCICRYPT_KEYPROVIDER_CONFIG: await conf('cli', cmd('--rust')) }
    const result = await runCli(['unpack', `oci:${layout}:latest`, '--bundle', await bundle()], env)
    expect(result.stderr).not.toMatch(/ERR_/)
    expect(result.code).toBe(0)
  })

  test("the provider's keywrap output is a packet our parser unwraps", async () => {
    const optsdata = Buffer.from('{"symkey":"x"}')
    const input = JSON.stringify({
      op: 'keywrap',
      keywrapparams: {
        ec: {
          Parameters: {
            'attestation-agent': [Buffer.from(`keyid=${KID}::algorithm=A256GCM`).toString('base64')],
          },
        },
        optsdata: optsdata.toString('base64'),
      },
      keyunwrapparams: { dc: null, annotation: null },
    })
    for (const extra of [[], ['--rust']]) {
      const out = await runKeyProviderCmd(
        { path: process.execPath, args: [PROVIDER_SCRIPT, '--keys', keysFile, ...extra] },
        input,
        { what: 'provider' },
      )
      const { annotation } = decodeKeyProviderOutput(out, 'provider')
      const packet = parseAnnotationPacket(annotation as Buffer, 'packet')
      expect(packet.kid).toBe(KID)
      expect(unwrapAnnotationPacket(packet, kek, 'packet')).toEqual(optsdata)
    }
  })

  test('in-process first, then the key provider: a missing kid at the source falls back to the provider', async () => {
    const keyProviders = await loadKeyProviderConfig({ path: await conf('fallback', cmd()) })
    expect(await unpackWith({ keySource: tableKeySource({}), keyProviders })).toEqual(plain)
  })

  const failures: {
    name: string
    options: () => Promise<LayerDecryptorOptions>
    code: string
    fragments: string[]
  }[] = [
    {
      name: 'a wrong KEK at the key source',
      options: async () => ({ keySource: tableKeySource({ [KID]: randomBytes(32) }) }),
      code: 'ERR_KEY_INVALID',
      fragments: [
        'enc.keys.provider.attestation-agent (kid kbs:///default/image-kek/ocipull-test): the key does not fit',
      ],
    },
    {
      name: 'a KEK of the wrong length',
      options: async () => ({ keySource: tableKeySource({ [KID]: randomBytes(16) }) }),
      code: 'ERR_KEY_INVALID',
      fragments: ['the key does not fit'],
    },
    {
      name: 'a key source without the kid',
      options: async () => ({ keySource: tableKeySource({}) }),
      code: 'ERR_KEY_UNAVAILABLE',
      fragments: ['no such resource'],
    },
    {
      name: 'a key source that denies',
      options: async () => ({
        keySource: {
          getResource: async (uri) => {
            throw new OcipullError('ERR_KBS_DENIED', `${uri}: denied by policy`)
          },
        },
      }),
      code: 'ERR_KBS_DENIED',
      fragments: ['denied by policy'],
    },
    {
      name: 'no key source and no provider',
      options: async () => ({}),
      code: 'ERR_KEY_UNAVAILABLE',
      fragments: ['no key source and no key provider configured'],
    },
    {
      name: 'a provider with the wrong KEK (exits 1)',
      options: async () => {
        const other = join(work, 'other-keys.json')
        await writeFile(
          other,
          JSON.stringify({ 'default/image-kek/ocipull-test': randomBytes(32).toString('base64') }),
        )
        return {
          keyProviders: await loadKeyProviderConfig({
            path: await conf('wrong', {
              cmd: { path: process.execPath, args: [PROVIDER_SCRIPT, '--keys', other] },
            }),
          }),
        }
      },
      code: 'ERR_KEY_UNAVAILABLE',
      fragments: ['via key provider attestation-agent', 'exited 1', 'does not unwrap the packet'],
    },
    {
      name: 'a provider that answers garbage',
      options: async () => ({
        keyProviders: await loadKeyProviderConfig({
          path: await conf('garbage', {
            cmd: { path: '/bin/sh', args: ['-c', 'cat >/dev/null; echo nope'] },
          }),
        }),
      }),
      code: 'ERR_KEY_UNAVAILABLE',
      fragments: ['not valid JSON'],
    },
    {
      name: 'a provider that never answers (timeout)',
      options: async () => ({
        keyProviderTimeoutMs: 300,
        keyProviders: await loadKeyProviderConfig({
          path: await conf('hang', { cmd: { path: '/bin/sleep', args: ['30'] } }),
        }),
      }),
      code: 'ERR_KEY_UNAVAILABLE',
      fragments: ['no answer within 300 ms'],
    },
    {
      name: 'a provider that cannot start',
      options: async () => ({
        keyProviders: await loadKeyProviderConfig({
          path: await conf('absent', { cmd: { path: join(work, 'no-such-provider') } }),
        }),
      }),
      code: 'ERR_KEY_UNAVAILABLE',
      fragments: ['cannot run', 'ENOENT'],
    },
    {
      name: 'a grpc provider',
      options: async () => ({
        keyProviders: await loadKeyProviderConfig({ path: await conf('grpc', { grpc: '127.0.0.1:50000' }) }),
      }),
      code: 'ERR_KEY_UNAVAILABLE',
      fragments: ['grpc providers are not supported'],
    },
  ]
  for (const f of failures) {
    test(`refused: ${f.name}`, async () =>
      refuse(await f.options(), f.code, 'no key unwraps', ...f.fragments))
  }

  test('an abort while the provider runs: ERR_ABORTED at once', async () => {
    const keyProviders = await loadKeyProviderConfig({
      path: await conf('slow', { cmd: { path: '/bin/sleep', args: ['30'] } }),
    })
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 200)
    const started = Date.now()
    const decryptor = createLayerDecryptor({ keyProviders })
    const manifest = await readManifest(layout)
    await expect(
      decryptor.layerKey(manifest.layers[0] as never, { signal: controller.signal }),
    ).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(Date.now() - started).toBeLessThan(5000)
  })

  test('a broken ocicrypt.conf: ERR_CONFIG_FILE_INVALID', async () => {
    const path = join(work, 'broken.conf')
    await mkdir(work, { recursive: true })
    await writeFile(path, '{"key-providers":{"x":{"cmd":{"args":[]}}}}')
    await expect(loadKeyProviderConfig({ path })).rejects.toMatchObject({
      code: 'ERR_CONFIG_FILE_INVALID',
      message: expect.stringMatching(/key-providers\.x\.cmd\.path: missing/),
    })
    await expect(loadKeyProviderConfig({ env: {} })).resolves.toEqual(new Map())
  })
})
