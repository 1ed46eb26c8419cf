import { existsSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type DevKbs, startDevKbs } from '../../src/kbs/server/dev-kbs.js'
import { runCli } from '../helpers/cli.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'
import { createGpgHome, type GpgHome } from '../policy/gpg-home.js'
import { fixturesInfo, REPO_ROOT, type RigRegistry, requireRegistry, requireTool } from '../rig/index.js'
import { initDataToml } from './init-data-toml.js'
import { signIntoLookaside } from './lookaside-signature.js'
import {
  BUSYBOX_BUNDLE_FACTS,
  blobGetsIn,
  busyboxBundleFacts,
  maxLayersInFlight,
  pullEvents,
  storedLayers,
} from './pulled-bundle.js'
import { cleanEnv, configDir, deadPort, logMark, requestsIn, startRegistryPair } from './rig-pair.js'

/**
 * Configuration drives `ocipull pull` end to end against real registries: a CDH cdh.toml and an
 * Init-Data document (work_dir, max_concurrent_layer_downloads_per_image, an inline
 * registries.conf whose mirror serves while the origin is down, a signature policy inline or
 * from the development KBS over RCAR, the registries.d lookaside), and `--registries-conf`
 * (blocked, remapped, credentials per host). What each registry served is read from its own
 * access log; the policy must decide before any layer blob is fetched.
 */

const files = configDir()
afterAll(async () => {
  files.remove()
  await removeTempDirs()
})

const busybox = fixturesInfo().busybox
const layerDigests = busybox.layers.map((l) => l.digest)
/** A JSON string of ASCII text is also a TOML basic string. */
const tomlString = (text: string) => JSON.stringify(text)
const authFileFor = (host: string) =>
  JSON.stringify({ auths: { [host]: { auth: Buffer.from('testuser:testpass').toString('base64') } } })

const ready = requireRegistry('http', 'tls-basic') && requireTool('skopeo', 'gpg')

describe.skipIf(!ready)('ocipull pull driven by configuration', () => {
  let a: RigRegistry // http; the mirror, and the target of a remapped prefix
  let b: RigRegistry // http; the location of a remapped prefix
  let ta: RigRegistry // tls-basic; registry A of the credential checks
  let tb: RigRegistry // tls-basic; registry B, which must never see A's credentials
  let gpg: GpgHome
  let kbs: DevKbs
  let kbsRepo: string
  /** The origin, which nothing answers: `${dead}/busybox:oci` is what the user pulls. */
  let dead: string
  let lookaside: string
  /** registries.d directories: one names the lookaside of the origin, the other nothing. */
  let registriesD: string
  let emptyRegistriesD: string
  /** A --policy file: the origin's images must be signed by the trusted keyring file. */
  let flagsPolicy: string
  let trustedKeyring: string
  let trustedKeyData: string
  let otherKeyData: string
  /** The rootfs ocipull makes from the committed layout (checked against umoci by the conformance suite). */
  let localTree: ReturnType<typeof snapshotTree>

  beforeAll(async () => {
    ;[{ a, b }, { a: ta, b: tb }] = await Promise.all([
      startRegistryPair('http'),
      startRegistryPair('tls-basic'),
    ])
    dead = `127.0.0.1:${await deadPort()}`
    gpg = await createGpgHome()
    const trusted = await gpg.generateKey('Config Signer')
    const other = await gpg.generateKey('Someone Else')
    const trustedKeys = await gpg.exportKeys([trusted])
    trustedKeyring = join(files.dir, 'trusted.gpg')
    await writeFile(trustedKeyring, trustedKeys)
    trustedKeyData = trustedKeys.toString('base64')
    otherKeyData = (await gpg.exportKeys([other])).toString('base64')
    // The signature names the user's reference (the dead origin), not the mirror that serves it.
    lookaside = join(files.dir, 'lookaside')
    await signIntoLookaside({
      gpg,
      key: trusted,
      manifest: join(REPO_ROOT, busybox.layout, 'blobs', 'sha256', busybox.digest.slice('sha256:'.length)),
      digest: busybox.digest,
      reference: `${dead}/busybox:oci`,
      repository: 'busybox',
      lookaside,
    })
    registriesD = join(files.dir, 'registries.d')
    await mkdir(registriesD)
    await writeFile(join(registriesD, 'origin.yaml'), sigstoreYaml())
    emptyRegistriesD = join(files.dir, 'registries.d-empty')
    await mkdir(emptyRegistriesD)
    flagsPolicy = files.write('flags-policy.json', JSON.stringify(signedBy({ keyPath: trustedKeyring })))
    kbsRepo = await makeTempDir('ocipull-pull-config-kbs-')
    kbs = await startDevKbs({ repository: kbsRepo })
    const local = await makeTempDir('ocipull-pull-config-')
    const r = await runCli(
      [
        'pull',
        '--bundle',
        join(local, 'bundle'),
        '--work-dir',
        join(local, 'store'),
        `oci:${join(REPO_ROOT, busybox.layout)}:${busybox.tag}`,
      ],
      cleanEnv(),
    )
    expect([r.code, r.stderr]).toEqual([0, expect.not.stringMatching(/ERR_/)])
    localTree = snapshotTree(join(local, 'bundle', 'rootfs'))
  }, 300_000)
  afterAll(async () => {
    await kbs?.close()
    await gpg?.remove()
    await Promise.all([a?.stop(), b?.stop(), ta?.stop(), tb?.stop()])
  })

  const sigstoreYaml = () => `docker:\n  ${dead}:\n    lookaside: file://${lookaside}\n`
  /** Accept images of the origin signed by one key (inline, or a keyring file); reject the rest. */
  const signedBy = (key: { keyData: string } | { keyPath: string }) => ({
    default: [{ type: 'reject' }],
    transports: { docker: { [dead]: [{ type: 'signedBy', keyType: 'GPGKeys', ...key }] } },
  })
  const reject = { default: [{ type: 'reject' }] }
  const accept = { default: [{ type: 'insecureAcceptAnything' }] }

  interface ImageSection {
    workDir: string
    maxDownloads: number
    policy?: object
    policyUri?: string
  }
  /** The `[image]` table of a cdh.toml: the mirror `a` serves the dead origin. */
  const imageSection = (s: ImageSection) => `[image]
work_dir = "${s.workDir}"
max_concurrent_layer_downloads_per_image = ${s.maxDownloads}
${s.policy === undefined ? '' : `image_security_policy = ${tomlString(JSON.stringify(s.policy))}`}
${s.policyUri === undefined ? '' : `image_security_policy_uri = "${s.policyUri}"`}
sigstore_config = ${tomlString(sigstoreYaml())}

[image.registry_config]
unqualified-search-registries = []

[[image.registry_config.registry]]
location = "${dead}"

[[image.registry_config.registry.mirror]]
location = "${a.host}"
insecure = true
`
  const cdhToml = (s: ImageSection) => `socket = "unix:///run/confidential-containers/cdh.sock"
credentials = []

${imageSection(s)}`
  const initData = (s: ImageSection) =>
    initDataToml({
      'aa.toml': `[token_configs]\n[token_configs.kbs]\nurl = "${kbs.url}"\n`,
      'cdh.toml': `[kbc]\nname = "cc_kbc"\nurl = "${kbs.url}"\n\n${imageSection(s)}`,
    })

  /** A fresh run directory: `bundle` and `store` (the work_dir) below it. */
  const runDir = async () => {
    const dir = await makeTempDir('ocipull-pull-config-')
    return { bundle: join(dir, 'bundle'), store: join(dir, 'store') }
  }
  const pull = (args: string[], ref: string, bundle: string) =>
    runCli(['pull', '--json', '--bundle', bundle, ...args, ref], cleanEnv())

  /** A pull that worked: bundle, rootfs, layers in the work_dir, every blob in `servedBy` (a log). */
  const expectPulled = (
    r: { code: number; stdout: string; stderr: string },
    run: { bundle: string; store: string },
    servedBy: string,
  ) => {
    expect(r.stderr).not.toMatch(/ERR_/)
    expect(r.code).toBe(0)
    expect(busyboxBundleFacts(run.bundle)).toEqual(BUSYBOX_BUNDLE_FACTS)
    expect(snapshotTree(join(run.bundle, 'rootfs'))).toEqual(localTree)
    expect(storedLayers(run.store)).toHaveLength(3)
    expect(blobGetsIn(servedBy)).toEqual(
      expect.arrayContaining([busybox.config.digest, ...layerDigests].map((d) => `${d} 200`)),
    )
  }
  /** A pull the policy refused: exit 7 before any layer blob was fetched, no bundle, no layer. */
  const expectRejected = (
    r: { code: number; stderr: string },
    run: { bundle: string; store: string },
    mirrorLog: string,
  ) => {
    expect(r.code).toBe(7)
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^ocipull: ERR_POLICY_REJECTED: /)
    expect(requestsIn(mirrorLog)).toContain('GET /v2/busybox/manifests/oci 200') // it was asked...
    const fetched = blobGetsIn(mirrorLog).map((g) => g.split(' ')[0])
    expect(fetched.filter((d) => layerDigests.includes(d as string))).toEqual([]) // ...for no layer
    expect(existsSync(join(run.bundle, 'config.json'))).toBe(false)
    expect(storedLayers(run.store)).toEqual([])
  }

  describe('a CDH cdh.toml', () => {
    const cases: [string, number, () => object][] = [
      [
        'GPG-signed by the trusted key (keyData), signature in the lookaside',
        0,
        () => signedBy({ keyData: trustedKeyData }),
      ],
      ['signed, but the policy trusts another key', 7, () => signedBy({ keyData: otherKeyData })],
      ['insecureAcceptAnything', 0, () => accept],
      ['reject', 7, () => reject],
    ]
    test.each(cases)('image_security_policy: %s → exit %i', async (_name, code, policy) => {
      const run = await runDir()
      const conf = files.write(
        `cdh-${code}-${Math.random().toString(36).slice(2)}.toml`,
        cdhToml({ workDir: run.store, maxDownloads: 1, policy: policy() }),
      )
      const mirror = logMark(a)
      const r = await pull(['--config', conf], `${dead}/busybox:oci`, run.bundle)
      const served = await mirror.since()
      if (code !== 0) return expectRejected(r, run, served)
      expectPulled(r, run, served)
      expect(r.stdout).toContain(`"source":"docker://${dead}/busybox:oci"`)
      // max_concurrent_layer_downloads_per_image = 1: one layer at a time.
      expect(maxLayersInFlight(pullEvents(r.stdout))).toBe(1)
    })

    test('control: with max_concurrent_layer_downloads_per_image = 3 the layers download together', async () => {
      const run = await runDir()
      const conf = files.write(
        'cdh-3.toml',
        cdhToml({ workDir: run.store, maxDownloads: 3, policy: signedBy({ keyData: trustedKeyData }) }),
      )
      const r = await pull(['--config', conf], `${dead}/busybox:oci`, run.bundle)
      expect(r.stderr).toBe('')
      expect(maxLayersInFlight(pullEvents(r.stdout))).toBe(3)
    })

    // The flags' policy trusts the signer's keyring file; the config's policy says the opposite.
    const flagCases: [string, number, object, () => string][] = [
      [
        'a registries.d with the lookaside: the config says reject, the flags accept',
        0,
        reject,
        () => registriesD,
      ],
      [
        'a registries.d without it, over sigstore_config: no signature, rejected',
        7,
        accept,
        () => emptyRegistriesD,
      ],
    ]
    test.each(flagCases)(
      '--policy and --registries.d win over the config: %s → exit %i',
      async (_n, code, configPolicy, dir) => {
        const run = await runDir()
        const conf = files.write(
          `cdh-flags-${code}.toml`,
          cdhToml({ workDir: run.store, maxDownloads: 1, policy: configPolicy }),
        )
        const mirror = logMark(a)
        const r = await pull(
          ['--config', conf, '--policy', flagsPolicy, '--registries.d', dir()],
          `${dead}/busybox:oci`,
          run.bundle,
        )
        if (code === 0) expectPulled(r, run, await mirror.since())
        else expectRejected(r, run, await mirror.since())
      },
    )
  })

  describe('an Init-Data document', () => {
    const policyUri = 'kbs:///default/security-policy/test'
    const servePolicy = async (policy: object) => {
      await mkdir(join(kbsRepo, 'default', 'security-policy'), { recursive: true })
      await writeFile(join(kbsRepo, 'default', 'security-policy', 'test'), JSON.stringify(policy))
    }

    test('its cdh.toml [image] drives the pull; the KBS in aa.toml is not contacted when nothing needs it', async () => {
      const run = await runDir()
      const doc = files.write(
        'initdata.toml',
        initData({ workDir: run.store, maxDownloads: 1, policy: signedBy({ keyData: trustedKeyData }) }),
      )
      const before = { ...kbs.stats }
      const mirror = logMark(a)
      const r = await pull(['--config', doc], `${dead}/busybox:oci`, run.bundle)
      expectPulled(r, run, await mirror.since())
      expect(maxLayersInFlight(pullEvents(r.stdout))).toBe(1)
      expect(kbs.stats).toEqual(before)
    })

    const cases: [string, number, () => object, object | undefined][] = [
      ['a reject policy', 7, () => reject, undefined],
      ['an accepting policy, over an inline reject (the URI wins, as in image-rs)', 0, () => accept, reject],
      ['a signedBy policy', 0, () => signedBy({ keyData: trustedKeyData }), undefined],
    ]
    test.each(cases)(
      'image_security_policy_uri served by the KBS over RCAR: %s → exit %i',
      async (_name, code, served, inline) => {
        await servePolicy(served())
        const run = await runDir()
        const doc = files.write(
          `initdata-kbs-${code}-${Math.random().toString(36).slice(2)}.toml`,
          initData({
            workDir: run.store,
            maxDownloads: 1,
            policyUri,
            ...(inline === undefined ? {} : { policy: inline }),
          }),
        )
        const before = kbs.stats.resource
        const mirror = logMark(a)
        const r = await pull(['--config', doc], `${dead}/busybox:oci`, run.bundle)
        expect(kbs.stats.resource).toBeGreaterThan(before)
        const served2 = await mirror.since()
        if (code === 0) expectPulled(r, run, served2)
        else expectRejected(r, run, served2)
      },
    )

    const failures: [string, () => Promise<() => void>, RegExp][] = [
      [
        'the KBS denies the resource',
        async () => {
          await servePolicy(accept)
          kbs.policy = 'deny'
          return () => {
            kbs.policy = 'allow-all'
          }
        },
        /^ocipull: ERR_KBS_DENIED: /,
      ],
      [
        'the KBS has no such resource',
        async () => {
          await rm(join(kbsRepo, 'default', 'security-policy', 'test'), { force: true })
          return () => undefined
        },
        /^ocipull: ERR_KEY_UNAVAILABLE: .*security-policy\/test/,
      ],
    ]
    test.each(failures)('%s: exit 8 and nothing is asked of any registry', async (_name, setup, want) => {
      const restore = await setup()
      try {
        const run = await runDir()
        const doc = files.write(
          `initdata-fail-${Math.random().toString(36).slice(2)}.toml`,
          initData({ workDir: run.store, maxDownloads: 1, policyUri, policy: accept }),
        )
        const mirror = logMark(a)
        const r = await pull(['--config', doc], `${dead}/busybox:oci`, run.bundle)
        expect(r.code).toBe(8)
        expect(r.stderr.trim().split('\n').at(-1)).toMatch(want)
        expect(requestsIn(await mirror.since())).toEqual([])
        expect(existsSync(run.bundle)).toBe(false)
      } finally {
        restore()
      }
    })
  })

  describe('--registries-conf, --authfile', () => {
    test('a blocked registry: exit 7, ERR_REGISTRY_BLOCKED, and no request reaches it', async () => {
      const run = await runDir()
      const conf = files.write('blocked.conf', `[[registry]]\nlocation = "${a.host}"\nblocked = true\n`)
      const log = logMark(a)
      const r = await pull(
        ['--registries-conf', conf, '--insecure', '--work-dir', run.store],
        a.ref('busybox:oci'),
        run.bundle,
      )
      expect(r.code).toBe(7)
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^ocipull: ERR_REGISTRY_BLOCKED: /)
      expect(requestsIn(await log.since())).toEqual([])
      expect(existsSync(run.bundle)).toBe(false)
    })

    test('a remapped prefix is pulled from its location', async () => {
      const run = await runDir()
      const conf = files.write(
        'remap.conf',
        `[[registry]]\nprefix = "registry.example.test/team"\nlocation = "${b.host}"\ninsecure = true\n`,
      )
      const logA = logMark(a)
      const logB = logMark(b)
      const r = await pull(
        ['--registries-conf', conf, '--work-dir', run.store],
        'registry.example.test/team/busybox:oci',
        run.bundle,
      )
      expectPulled(r, run, await logB.since())
      expect(requestsIn(await logA.since())).toEqual([])
    })

    /** Lines where the registry authenticated a user, or tried to: it was sent credentials. */
    const authenticatedIn = (log: string) =>
      log
        .split('\n')
        .filter((l) => /msg="authorized request"|auth\.user\.name=|error authenticating user/.test(l))

    /** A pull with an auth file holding testuser's credentials for `host` only; both CAs trusted. */
    const pullWithAuthFile = (
      conf: string,
      host: string,
      ref: string,
      run: { bundle: string; store: string },
    ) =>
      pull(
        [
          ...['--registries-conf', conf, '--work-dir', run.store],
          ...['--authfile', files.write(`auth-${host.replace(/\W/g, '-')}.json`, authFileFor(host))],
          ...['--cacert', ta.caFile as string, '--cacert', tb.caFile as string],
        ],
        ref,
        run.bundle,
      )

    test("credentials for A never reach B, A's mirror; A serves the pull", async () => {
      const run = await runDir()
      const conf = files.write(
        'mirror-tls.conf',
        `[[registry]]\nlocation = "${ta.host}"\n[[registry.mirror]]\nlocation = "${tb.host}"\n`,
      )
      const logA = logMark(ta)
      const logB = logMark(tb)
      const r = await pullWithAuthFile(conf, ta.host, ta.ref('busybox:oci'), run)
      const fromA = await logA.since()
      expectPulled(r, run, fromA)
      expect(authenticatedIn(fromA).length).toBeGreaterThan(0)
      const fromB = await logB.since()
      expect(requestsIn(fromB)).toEqual(['GET /v2/busybox/manifests/oci 401']) // asked once, anonymously
      expect(authenticatedIn(fromB)).toEqual([])
      expect(blobGetsIn(fromB)).toEqual([])
    })

    test('a prefix remapped to B gets no credentials of the registry the user named: exit 4', async () => {
      const run = await runDir()
      const conf = files.write(
        'remap-tls.conf',
        `[[registry]]\nprefix = "private.example.test"\nlocation = "${tb.host}"\n`,
      )
      const logB = logMark(tb)
      const r = await pullWithAuthFile(conf, 'private.example.test', 'private.example.test/busybox:oci', run)
      expect(r.code).toBe(4)
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^ocipull: ERR_UNAUTHORIZED: /)
      const fromB = await logB.since()
      expect(requestsIn(fromB)).toContain('GET /v2/busybox/manifests/oci 401')
      expect(authenticatedIn(fromB)).toEqual([])
      expect(blobGetsIn(fromB)).toEqual([])
    })
  })
})
