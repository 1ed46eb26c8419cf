import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { cp, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  createLayerDecryptor,
  type LayerDecryptor,
  type LayerDecryptorOptions,
} from '../../src/decrypt/layer-decryptor.js'
import { loadDecryptionKeys } from '../../src/decrypt/private-keys.js'
import type { Digest } from '../../src/digest.js'
import { OcipullError } from '../../src/errors.js'
import type { PullEvent } from '../../src/events.js'
import { parseImageName } from '../../src/image-name.js'
import { type DevKbs, type ResourcePolicy, startDevKbs } from '../../src/kbs/server/dev-kbs.js'
import type { KeySource } from '../../src/keys/key-source.js'
import { openKeySource } from '../../src/keys/open-key-source.js'
import { openImageSource } from '../../src/open-image-source.js'
import { type PullImageOptions, pullImage } from '../../src/pull-image.js'
import { chainIds } from '../../src/store/chain-id.js'
import { cleanEnv, logMark, requestsIn } from '../config/rig-pair.js'
import {
  type KeyPair,
  makeKeyPair,
  readManifest,
  rewrapForAttestationAgent,
  rewriteLayers,
  skopeoCopy,
  skopeoEncrypt,
  unpackSnapshot,
} from '../decrypt/helpers/encrypted-images.js'
import { type CliResult, runCli } from '../helpers/cli.js'
import { closedPort } from '../helpers/fault-server.js'
import { writeLayeredImage } from '../helpers/layered-image.js'
import { tarOfFiles } from '../helpers/tar-builder.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { snapshotTree, type TreeEntry } from '../helpers/tree-snapshot.js'
import {
  BUSYBOX_LAYOUT,
  fixturesInfo,
  type RigRegistry,
  requireRegistry,
  requireTool,
  run,
  startRegistry,
} from '../rig/index.js'

/**
 * `ocipull pull` of encrypted images from the rig's real docker-registry (plain HTTP):
 * - images encrypted by skopeo 1.9 (Go ocicrypt) to JWE recipients and pushed by it, pulled with
 *   --decryption-key: the rootfs equals the plain fixture's, and a second pull fetches no blob;
 * - CoCo-style images whose layer keys are attestation-agent packets under a KEK held by the
 *   development KBS, fetched once over RCAR with the sample attester (--kbs, --initdata,
 *   --config with an Init-Data file);
 * - the hostile cases, each a typed error that commits nothing;
 * - pullImage stopping its downloads as soon as the key source fails.
 */

const ready = requireRegistry('http') && requireTool('skopeo', 'openssl')
const snapshotters = process.getuid?.() === 0 ? (['dir', 'overlay'] as const) : (['dir'] as const)
const KEK_PATH = 'default/key/ocipull-pull-encrypted'
const KID = `kbs:///${KEK_PATH}`
const ENCRYPTED = 'application/vnd.oci.image.layer.v1.tar+gzip+encrypted'
afterAll(removeTempDirs)

/** The busybox fixture's ChainIDs as store directory names: what a committed layer is called. */
const busyboxChain = () =>
  chainIds(fixturesInfo().busybox.diffIds as Digest[]).map((id) => id.replace(':', '-'))

const events = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as PullEvent)

/** An Init-Data document whose aa.toml names the KBS. */
const initData = (url: string) =>
  `version = "0.1.0"\nalgorithm = "sha384"\n\n[data]\n"aa.toml" = '''\n[token_configs.kbs]\nurl = "${url}"\n'''\n`

describe.skipIf(!ready)('ocipull pull of encrypted images', () => {
  let reg: RigRegistry
  let kbs: DevKbs
  let work: string
  let rsa: KeyPair
  let ec: KeyPair
  let other: KeyPair
  let plain: Record<string, TreeEntry>
  let initDataFile: string
  /** The 7-layer image of the library test: six plain layers, the last one encrypted (CoCo). */
  let manyLayers: string[]
  const kek = randomBytes(32)
  const env = cleanEnv({ OCICRYPT_KEYPROVIDER_CONFIG: undefined })
  let runs = 0
  /** Overlay rootfs mounts not yet unmounted (a failed assertion leaves one behind). */
  const mounts = new Set<string>()

  beforeAll(async () => {
    ;[reg, work] = await Promise.all([startRegistry('http'), makeTempDir('ocipull-pull-enc-')])
    const repository = join(work, 'kbs-repository')
    await mkdir(join(repository, 'default', 'key'), { recursive: true })
    await writeFile(join(repository, KEK_PATH), kek)
    kbs = await startDevKbs({ repository })
    initDataFile = join(work, 'initdata.toml')
    await writeFile(initDataFile, initData(kbs.url))
    ;[rsa, ec, other] = await Promise.all([
      makeKeyPair(work, 'rsa', 'rsa'),
      makeKeyPair(work, 'ec', 'ec'),
      makeKeyPair(work, 'other', 'rsa'),
    ])
    const busybox = `oci:${BUSYBOX_LAYOUT}:latest`
    const dest = reg.skopeoFlags({ dest: true })
    const push = (from: string, repo: string, recipients: string[], layers?: number[]) =>
      skopeoEncrypt(from, `docker://${reg.ref(repo)}`, {
        recipients,
        extra: dest,
        ...(layers ? { layers } : {}),
      })
    const zstd = join(work, 'plain-zstd')
    const rsaLayout = join(work, 'rsa')
    await Promise.all([
      skopeoCopy(busybox, `oci:${zstd}:latest`, ['--dest-compress-format', 'zstd']),
      skopeoEncrypt(busybox, `oci:${rsaLayout}:latest`, { recipients: [rsa.public] }),
      push(busybox, 'encrypted/ec:v1', [ec.public]),
      push(busybox, 'encrypted/both:v1', [rsa.public, ec.public]),
      push(busybox, 'encrypted/partial:v1', [rsa.public], [0, -1]),
    ])
    // CoCo: skopeo's private options re-wrapped under the KBS's KEK, without the JWE.
    const coco = join(work, 'coco')
    const tampered = join(work, 'tampered')
    await Promise.all([
      cp(rsaLayout, coco, { recursive: true }),
      cp(rsaLayout, tampered, { recursive: true }),
    ])
    await rewrapForAttestationAgent(coco, { privateKey: rsa.private, kek, kid: KID, dropJwe: true })
    // A byte flipped in the middle of the last layer's ciphertext, its digest and size fixed up.
    await rewriteLayers(tampered, (_layer, blob, i) => {
      if (i !== 2) return undefined
      const copy = Buffer.from(blob)
      copy[copy.length >> 1] = (copy[copy.length >> 1] as number) ^ 0x01
      return { blob: copy }
    })
    const many = join(work, 'many-plain')
    const manyCoco = join(work, 'many-coco')
    await writeLayeredImage(
      many,
      Array.from({ length: 7 }, (_, i) => tarOfFiles({ [`layer-${i}`]: randomBytes(64 * 1024) })),
    )
    await skopeoEncrypt(`oci:${many}:latest`, `oci:${manyCoco}:latest`, {
      recipients: [rsa.public],
      layers: [-1],
    })
    await rewrapForAttestationAgent(manyCoco, { privateKey: rsa.private, kek, kid: KID, dropJwe: true })
    manyLayers = (await readManifest(manyCoco)).layers.map((l) => l.digest)
    await Promise.all([
      skopeoCopy(`oci:${rsaLayout}:latest`, `docker://${reg.ref('encrypted/rsa:v1')}`, dest),
      push(`oci:${zstd}:latest`, 'encrypted/zstd:v1', [ec.public]),
      skopeoCopy(`oci:${coco}:latest`, `docker://${reg.ref('encrypted/coco:v1')}`, dest),
      skopeoCopy(`oci:${tampered}:latest`, `docker://${reg.ref('encrypted/tampered:v1')}`, dest),
      skopeoCopy(`oci:${manyCoco}:latest`, `docker://${reg.ref('encrypted/many:v1')}`, dest),
    ])
    plain = await unpackSnapshot(BUSYBOX_LAYOUT, join(work, 'plain-bundle'))
  })
  afterAll(async () => {
    for (const m of mounts) await run('umount', [m]).catch(() => undefined)
    await kbs?.close()
    await reg?.stop()
  })

  /** A fresh directory for one pull: `bundle` and `store` inside it. */
  const fresh = async () => {
    const dir = join(work, `run-${runs++}`)
    await mkdir(dir)
    return { dir, bundle: join(dir, 'bundle'), store: join(dir, 'store') }
  }
  /** `pullImage` of `repo` into a fresh bundle and store; the error, if any, is returned. */
  const pullLibrary = async (repo: string, options: Omit<PullImageOptions, 'bundle' | 'workDir'>) => {
    const { bundle, store } = await fresh()
    const source = openImageSource(parseImageName(`docker://${reg.ref(repo)}`), {
      insecureRegistries: [reg.host],
    })
    try {
      const error = await pullImage(source, { bundle, workDir: store, ...options }).then(
        () => undefined,
        (err: unknown) => err,
      )
      return { error, bundle, store }
    } finally {
      await source.close()
    }
  }
  const pull = (repo: string, dir: string, ...extra: string[]) =>
    runCli(
      [
        'pull',
        '--insecure',
        '--json',
        '--bundle',
        join(dir, 'bundle'),
        '--work-dir',
        join(dir, 'store'),
        ...extra,
        `docker://${reg.ref(repo)}`,
      ],
      env,
    )
  const blobGets = (log: string, repo: string) =>
    requestsIn(log).filter((l) => l.startsWith(`GET /v2/${repo}/blobs/`)).length
  /** The rootfs, compared; an overlay mount is unmounted afterwards. */
  const expectPlainRootfs = async (bundle: string, snapshotter: string) => {
    expect(snapshotTree(join(bundle, 'rootfs'))).toEqual(plain)
    if (snapshotter === 'overlay') {
      await run('umount', [join(bundle, 'rootfs')])
      mounts.delete(join(bundle, 'rootfs'))
    }
  }

  const images = [
    { name: 'RSA recipient (RSA-OAEP), tar+gzip', repo: 'rsa', key: () => rsa, media: 'gzip' },
    { name: 'EC P-256 recipient (ECDH-ES+A256KW), tar+gzip', repo: 'ec', key: () => ec, media: 'gzip' },
    { name: 'tar+zstd layers', repo: 'zstd', key: () => ec, media: 'zstd' },
    { name: 'two recipients, the RSA key', repo: 'both', key: () => rsa, media: 'gzip' },
    { name: 'two recipients, the EC key', repo: 'both', key: () => ec, media: 'gzip' },
    { name: 'only the first and last layers encrypted', repo: 'partial', key: () => rsa, media: 'gzip' },
  ]
  for (const c of images) {
    for (const snapshotter of snapshotters) {
      test(`${c.name}, --snapshotter ${snapshotter}: the plain rootfs; a second pull fetches no blob`, async () => {
        const { dir, bundle } = await fresh()
        const repo = `encrypted/${c.repo}`
        const flags = ['--snapshotter', snapshotter, '--decryption-key', c.key().private]
        const log = logMark(reg)
        if (snapshotter === 'overlay') mounts.add(join(bundle, 'rootfs'))
        const first = await pull(`${repo}:v1`, dir, ...flags)
        expect(first.stderr).not.toMatch(/ERR_/)
        expect(first.code).toBe(0)
        const started = events(first.stdout).filter((e) => e.type === 'layer-start')
        const encrypted = c.repo === 'partial' ? [true, false, true] : [true, true, true]
        expect(started.map((e) => e.mediaType).sort()).toEqual(
          encrypted
            .map((enc) => `application/vnd.oci.image.layer.v1.tar+${c.media}${enc ? '+encrypted' : ''}`)
            .sort(),
        )
        expect(blobGets(await log.since(), repo)).toBe(4) // config + 3 layers
        await expectPlainRootfs(bundle, snapshotter)

        const again = logMark(reg)
        const second = await pull(`${repo}:v1`, dir, ...flags)
        expect(second.code).toBe(0)
        expect(blobGets(await again.since(), repo)).toBe(0)
        const kinds = events(second.stdout).map((e) => e.type)
        expect(kinds.filter((k) => k === 'layer-cached')).toHaveLength(3)
        expect(kinds).not.toContain('layer-start')
        await expectPlainRootfs(bundle, snapshotter)

        // Every layer is in the store now, but without the key the pull is still refused.
        const keyless = await pull(`${repo}:v1`, dir, '--snapshotter', snapshotter)
        expect(keyless.code).toBe(8)
        expect(keyless.stderr.trim().split('\n').at(-1)).toMatch(/^ocipull: ERR_KEY_UNAVAILABLE: /)
      })
    }
  }

  const kbsPulls = [
    { name: '--kbs URL', flags: () => ['--kbs', kbs.url] },
    { name: '--initdata FILE (its aa.toml names the KBS)', flags: () => ['--initdata', initDataFile] },
    { name: '--config INITDATA alone', flags: () => ['--config', initDataFile] },
  ]
  for (const c of kbsPulls) {
    test(`CoCo image, ${c.name}: the KEK fetched once over RCAR for three layers`, async () => {
      const { dir, bundle } = await fresh()
      const before = { ...kbs.stats }
      const r = await pull('encrypted/coco:v1', dir, ...c.flags())
      expect(r.stderr).not.toMatch(/ERR_/)
      expect(r.code).toBe(0)
      const started = events(r.stdout).filter((e) => e.type === 'layer-start')
      expect(started.map((e) => e.mediaType)).toEqual([ENCRYPTED, ENCRYPTED, ENCRYPTED])
      expect(kbs.stats).toEqual({
        auth: before.auth + 1,
        attest: before.attest + 1,
        resource: before.resource + 1,
      })
      await expectPlainRootfs(bundle, 'dir')
    })
  }

  const hostile: {
    name: string
    repo: string
    flags: () => Promise<string[]> | string[]
    code: string
    exit: number
    /** The development KBS's resource policy during the pull (default allow-all). */
    kbsPolicy?: ResourcePolicy
    /** Layers whose ChainID must not be in the store afterwards (default: all three). */
    uncommitted?: number[]
  }[] = [
    {
      name: 'a wrong key',
      repo: 'rsa',
      flags: () => ['--decryption-key', other.private],
      code: 'ERR_KEY_INVALID',
      exit: 8,
    },
    {
      name: 'no key',
      repo: 'rsa',
      flags: () => [],
      code: 'ERR_KEY_UNAVAILABLE',
      exit: 8,
    },
    {
      name: 'a tampered ciphertext with its digest fixed up',
      repo: 'tampered',
      flags: () => ['--decryption-key', rsa.private],
      code: 'ERR_DECRYPTION_FAILED',
      exit: 5,
      uncommitted: [2],
    },
    {
      name: 'a KBS that denies',
      repo: 'coco',
      flags: () => ['--kbs', kbs.url],
      kbsPolicy: 'deny',
      code: 'ERR_KBS_DENIED',
      exit: 8,
    },
    {
      name: 'a KBS that is down',
      repo: 'coco',
      flags: async () => ['--kbs', `http://127.0.0.1:${await closedPort()}`],
      code: 'ERR_KEY_UNAVAILABLE',
      exit: 8,
    },
  ]
  for (const c of hostile) {
    test(`${c.name}: ${c.code}, exit ${c.exit}, nothing committed`, async () => {
      const { dir, bundle, store } = await fresh()
      kbs.policy = c.kbsPolicy ?? 'allow-all'
      let r: CliResult
      try {
        r = await pull(`encrypted/${c.repo}:v1`, dir, ...(await c.flags()))
      } finally {
        kbs.policy = 'allow-all'
      }
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(new RegExp(`^ocipull: ${c.code}: `))
      expect(r.code).toBe(c.exit)
      expect(existsSync(join(bundle, 'config.json'))).toBe(false)
      const chain = busyboxChain()
      const committed = readdirSync(join(store, 'layers'))
      for (const i of c.uncommitted ?? [0, 1, 2]) expect(committed).not.toContain(chain[i])
      expect(readdirSync(join(store, 'staging'))).toEqual([])
    })
  }

  test('pullImage with every big-layer engine: the registry source hashes each blob on the decryption thread', async () => {
    const keys = await loadDecryptionKeys({ path: rsa.private })
    const engines: LayerDecryptorOptions[] = [
      { engine: 'thread', threadMinBytes: 0 },
      { threadMinBytes: 0, probeBytes: 1 },
    ]
    let hashed = 0
    /** The decryptor, with its blob hash counted: bytes the registry source handed it. */
    const counted = (options: LayerDecryptorOptions): LayerDecryptor => {
      const base = createLayerDecryptor({ keys, ...options })
      return {
        layerKey: (d, o) => base.layerKey(d, o),
        async open(d, o) {
          const decryption = await base.open(d, o)
          const hash = decryption.blobHash
          if (hash) {
            decryption.blobHash = {
              update: (chunk) => {
                hashed += chunk.length
                return hash.update(chunk)
              },
              digest: () => hash.digest(),
            }
          }
          return decryption
        },
      }
    }
    const pullWith = (repo: string, options: LayerDecryptorOptions) =>
      pullLibrary(repo, { decryptor: counted(options) })
    for (const options of engines) {
      hashed = 0
      const ok = await pullWith('encrypted/rsa:v1', options)
      expect(ok.error, JSON.stringify(options)).toBeUndefined()
      const manifest = await readManifest(join(work, 'rsa'))
      expect(hashed).toBe(manifest.layers.reduce((n, l) => n + l.size, 0))
      expect(snapshotTree(join(ok.bundle, 'rootfs'))).toEqual(plain)
      const bad = await pullWith('encrypted/tampered:v1', options)
      expect(bad.error, JSON.stringify(options)).toMatchObject({
        code: 'ERR_DECRYPTION_FAILED',
        message: expect.stringContaining('HMAC mismatch'),
      })
      expect(readdirSync(join(bad.store, 'staging'))).toEqual([])
      expect(existsSync(join(bad.bundle, 'config.json'))).toBe(false)
    }
  })

  test('pullImage: a failing key source stops the downloads (no more layer GETs than were in flight)', async () => {
    const concurrency = 2
    const layerGets = (log: string) =>
      requestsIn(log).filter((l) =>
        manyLayers.some((d) => l.startsWith(`GET /v2/encrypted/many/blobs/${d} `)),
      ).length
    const pullMany = (decryptor: LayerDecryptor, onEvent?: (e: PullEvent) => void) =>
      pullLibrary('encrypted/many:v1', {
        concurrency,
        decryptor,
        progressIntervalMs: 0,
        ...(onEvent ? { onEvent } : {}),
      })

    // The same pull with the KEK served by the dev KBS fetches all seven layers.
    const kbsSource = openKeySource({ kbs: { url: kbs.url } })
    const control = logMark(reg)
    try {
      const ok = await pullMany(createLayerDecryptor({ keySource: kbsSource }))
      expect(ok.error).toBeUndefined()
    } finally {
      await kbsSource.close()
    }
    expect(layerGets(await control.since())).toBe(7)

    // The key source fails as soon as a layer's bytes flow: no layer has finished by then, so
    // at most `concurrency` layer GETs were in flight, and none may start after it.
    let flowing: () => void = () => {}
    const firstBytes = new Promise<void>((resolve) => {
      flowing = resolve
    })
    const failing: KeySource = {
      async getResource(uri) {
        await firstBytes
        throw new OcipullError('ERR_KEY_UNAVAILABLE', `${uri}: the key source failed`)
      },
    }
    const log = logMark(reg)
    const failed = await pullMany(createLayerDecryptor({ keySource: failing }), (e) => {
      if (e.type === 'layer-progress') flowing()
    })
    expect(failed.error).toMatchObject({
      code: 'ERR_KEY_UNAVAILABLE',
      message: expect.stringContaining('the key source failed'),
    })
    // Checked at once: the pull fails only when its layers have stopped and cleaned up.
    expect(readdirSync(join(failed.store, 'staging'))).toEqual([])
    expect(readdirSync(join(failed.store, 'layers'))).toEqual([])
    expect(existsSync(join(failed.bundle, 'config.json'))).toBe(false)
    const gets = layerGets(await log.since())
    expect(gets).toBeGreaterThanOrEqual(1)
    expect(gets).toBeLessThanOrEqual(concurrency)
  })
})
