import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { startHttpProxy } from '../helpers/http-proxy.js'
import { type RigRegistry, requireRegistry, startRegistry } from '../rig/index.js'
import { cleanEnv, configDir, deadPort, logMark, requestsIn } from './rig-pair.js'

/**
 * A CDH-style cdh.toml, an Init-Data document and an image-rs config.json drive `ocipull inspect`
 * end to end against real registries (`--config FILE`), as CDH would pull with image-rs.
 */

const files = configDir()
afterAll(() => files.remove())

interface InspectJson {
  name: string
  digest: string
}

const initData = (cdhToml: string) => `algorithm = "sha384"
version = "0.1.0"

[data]
"aa.toml" = '''
[token_configs]
[token_configs.kbs]
url = "http://127.0.0.1:8080"
'''

"cdh.toml" = '''
${cdhToml}'''
`

describe.skipIf(!requireRegistry('http', 'tls-basic'))('--config: cdh.toml, Init-Data, config.json', () => {
  let plain: RigRegistry
  let tls: RigRegistry
  let dead: string
  beforeAll(async () => {
    ;[plain, tls] = await Promise.all([startRegistry('http'), startRegistry('tls-basic')])
    dead = `127.0.0.1:${await deadPort()}`
  }, 300_000)
  afterAll(async () => {
    await plain?.stop()
    await tls?.stop()
  })

  test('a cdh.toml: inline registry_config, auth file URI, extra root, pull proxy', async () => {
    const auth = files.write(
      'auth.json',
      JSON.stringify({
        auths: { [tls.host]: { auth: Buffer.from('testuser:testpass').toString('base64') } },
      }),
    )
    const proxy = await startHttpProxy()
    try {
      const cdh = files.write(
        'cdh.toml',
        `socket = "unix:///run/confidential-containers/cdh.sock"
credentials = []

[kbc]
name = "cc_kbc"
url = "http://127.0.0.1:8080"

[image]
work_dir = "/run/image-rs"
authenticated_registry_credentials_uri = "file://${auth}"
extra_root_certificates = ["""
${readFileSync(tls.caFile!, 'utf8')}"""]

[image.image_pull_proxy]
https_proxy = "${proxy.url}"
no_proxy = "${dead}"

[image.registry_config]
unqualified-search-registries = ["docker.io"]

[[image.registry_config.registry]]
prefix = "registry.example.test/team"
location = "${tls.host}"

[[image.registry_config.registry.mirror]]
location = "${dead}"
`,
      )
      const logTls = logMark(tls)
      const r = await runCli(
        ['inspect', '--json', '--config', cdh, 'registry.example.test/team/busybox:oci'],
        cleanEnv(),
      )
      expect(r.stderr).toBe('')
      const out = JSON.parse(r.stdout) as InspectJson
      expect(out.name).toBe('docker://registry.example.test/team/busybox:oci')
      expect(out.digest).toBe(tls.images['busybox:oci'].digest)
      // The mirror is tried first, directly (no_proxy: undici 7.30 hangs on a proxy that drops a
      // CONNECT, nodejs/undici#3897), then the location through the configured proxy.
      expect(proxy.seen).toContain(`CONNECT ${tls.host}`)
      expect(proxy.seen).not.toContain(`CONNECT ${dead}`)
      const log = await logTls.since()
      expect(log).toMatch(/msg="authorized request"/)
      expect(requestsIn(log)).toContain('GET /v2/busybox/manifests/oci 200')
    } finally {
      await proxy.close()
    }
  })

  test('an Init-Data document: its cdh.toml names a registries.conf by file URI', async () => {
    const conf = files.write(
      'init-registries.conf',
      `[[registry]]\nprefix = "registry.example.test/init"\nlocation = "${plain.host}"\ninsecure = true\n`,
    )
    const doc = files.write(
      'initdata.toml',
      initData(
        `[kbc]\nname = "cc_kbc"\nurl = "http://127.0.0.1:8080"\n\n[image]\nregistry_configuration_uri = "file://${conf}"\n`,
      ),
    )
    const log = logMark(plain)
    const r = await runCli(
      [
        'inspect',
        '--json',
        '--platform',
        'linux/arm64',
        '--config',
        doc,
        'registry.example.test/init/multiarch:oci',
      ],
      cleanEnv(),
    )
    expect(r.stderr).toBe('')
    const out = JSON.parse(r.stdout) as InspectJson
    expect(out.name).toBe('docker://registry.example.test/init/multiarch:oci')
    expect(requestsIn(await log.since())).toContain('GET /v2/multiarch/manifests/oci 200')
  })

  test('an Init-Data document that blocks the registry: exit 7, nothing sent', async () => {
    const doc = files.write(
      'initdata-blocked.toml',
      initData(
        `[image.registry_config]\n[[image.registry_config.registry]]\nlocation = "${plain.host}"\nblocked = true\n`,
      ),
    )
    const log = logMark(plain)
    const r = await runCli(['inspect', '--insecure', '--config', doc, plain.ref('busybox:oci')], cleanEnv())
    expect(r.code).toBe(7)
    expect(r.stderr).toMatch(/^ocipull: ERR_REGISTRY_BLOCKED: /)
    expect(requestsIn(await log.since())).toEqual([])
  })

  test('an image-rs config.json', async () => {
    const json = files.write(
      'config.json',
      JSON.stringify({
        work_dir: '/run/image-rs',
        registry_config: {
          registry: [{ prefix: 'registry.example.test/json', location: plain.host, insecure: true }],
        },
      }),
    )
    const r = await runCli(
      ['inspect', '--json', '--config', json, 'registry.example.test/json/busybox:v2s2'],
      cleanEnv(),
    )
    expect(r.stderr).toBe('')
    expect((JSON.parse(r.stdout) as InspectJson).digest).toBe(plain.images['busybox:v2s2'].digest)
  })

  test('--registries-conf replaces the registries of --config', async () => {
    const cfg = files.write(
      'blocks.json',
      JSON.stringify({ registry_config: { registry: [{ location: plain.host, blocked: true }] } }),
    )
    const conf = files.write('allows.conf', `[[registry]]\nlocation = "${plain.host}"\ninsecure = true\n`)
    const r = await runCli(
      ['inspect', '--config', cfg, '--registries-conf', conf, plain.ref('busybox:oci')],
      cleanEnv(),
    )
    expect(r.code).toBe(0)
  })

  test('CONTAINERS_REGISTRIES_CONF is the default registries.conf', async () => {
    const conf = files.write('env.conf', `[[registry]]\nlocation = "${plain.host}"\nblocked = true\n`)
    const r = await runCli(
      ['inspect', plain.ref('busybox:oci')],
      cleanEnv({ CONTAINERS_REGISTRIES_CONF: conf }),
    )
    expect(r.code).toBe(7)
  })

  test('kbs:/// URIs need a key source, and say so', async () => {
    const doc = files.write(
      'initdata-kbs.toml',
      initData(
        `[kbc]\nname = "cc_kbc"\nurl = "http://127.0.0.1:8080"\n\n[image]\nregistry_configuration_uri = "kbs:///default/registry-configuration/test"\n`,
      ),
    )
    const r = await runCli(['inspect', '--config', doc, plain.ref('busybox:oci')], cleanEnv())
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(
      /^ocipull: ERR_RESOURCE_URI_INVALID: .*registry_configuration_uri kbs:\/\/\/default\/registry-configuration\/test: no key source is configured/,
    )
  })

  test.each([
    [
      'a missing --config file',
      ['--config', '/nonexistent/cdh.toml'],
      /^ocipull: ERR_CONFIG_FILE_INVALID: \/nonexistent\/cdh\.toml: cannot open: ENOENT/,
    ],
    [
      'a directory as --registries-conf',
      ['--registries-conf', '/'],
      /^ocipull: ERR_CONFIG_FILE_INVALID: \/: not a regular file/,
    ],
  ])('%s: exit 2', async (_name, args, want) => {
    const r = await runCli(['inspect', ...args, 'registry.example.test/x:1'], cleanEnv())
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(want)
  })
})
