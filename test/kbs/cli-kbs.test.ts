import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { gzipSync } from 'node:zlib'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createKbsClient } from '../../src/kbs/kbs-client.js'
import { type DevKbs, startDevKbs } from '../../src/kbs/server/dev-kbs.js'
import { runCli } from '../helpers/cli.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { REPO_ROOT } from '../rig/paths.js'
import { requireTool } from '../rig/tools.js'
import { makeTestCa } from './kbs-test-kit.js'

const KEK = Buffer.from('ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100', 'hex')

let repo: string
let work: string
let kbs: DevKbs

beforeAll(async () => {
  repo = await makeTempDir()
  work = await makeTempDir()
  await mkdir(join(repo, 'default', 'key'), { recursive: true })
  await writeFile(join(repo, 'default', 'key', 'key_id1'), KEK)
  kbs = await startDevKbs({ repository: repo })
})
afterAll(async () => {
  await kbs?.close()
  await removeTempDirs()
})

function initData(url: string, extra = ''): string {
  return `version = "0.1.0"\nalgorithm = "sha384"\n[data]\n"aa.toml" = '''\n[token_configs.kbs]\nurl = "${url}"\n${extra}'''\n`
}

describe('ocipull kbs get-resource', () => {
  test('--kbs URL: the resource bytes, unchanged, on stdout; exit 0', async () => {
    const out = join(work, 'out.bin')
    const { PassThrough } = await import('node:stream')
    const { main } = await import('../../src/cli/main.js')
    const stdout = new PassThrough()
    const chunks: Buffer[] = []
    stdout.on('data', (c: Buffer) => chunks.push(c))
    const code = await main(['kbs', 'get-resource', 'kbs:///default/key/key_id1', '--kbs', kbs.url], {
      stdout,
      stderr: new PassThrough(),
      env: {},
      signal: new AbortController().signal,
    })
    await writeFile(out, Buffer.concat(chunks))
    expect(code).toBe(0)
    expect(await readFile(out)).toEqual(KEK)
  })

  test('--initdata FILE (TOML, and the Kata annotation form) names the KBS', async () => {
    const toml = join(work, 'initdata.toml')
    await writeFile(toml, initData(kbs.url))
    const annotation = join(work, 'initdata.b64')
    await writeFile(annotation, `${gzipSync(initData(kbs.url)).toString('base64')}\n`)
    for (const file of [toml, annotation]) {
      const r = await runCli(['kbs', 'get-resource', 'kbs:///default/key/key_id1', '--initdata', file], {})
      expect([r.code, r.stderr]).toEqual([0, ''])
    }
  })

  const failures: [string, () => string[], number, RegExp][] = [
    ['no --kbs', () => ['kbs', 'get-resource', 'kbs:///a/b/c'], 2, /needs --kbs or --initdata/],
    [
      'a bad URI',
      () => ['kbs', 'get-resource', 'kbs:///a/b', '--kbs', kbs.url],
      2,
      /ERR_RESOURCE_URI_INVALID/,
    ],
    [
      'a file URI',
      () => ['kbs', 'get-resource', 'file:///etc/hostname', '--kbs', kbs.url],
      2,
      /ERR_RESOURCE_URI_INVALID/,
    ],
    [
      'a missing resource',
      () => ['kbs', 'get-resource', 'kbs:///a/b/c', '--kbs', kbs.url],
      8,
      /ERR_KEY_UNAVAILABLE: kbs http:\/\/127\.0\.0\.1:\d+: GET \/kbs\/v0\/resource\/a\/b\/c: refused/,
    ],
    [
      'an unreadable --kbs-cert',
      () => ['kbs', 'get-resource', 'kbs:///a/b/c', '--kbs', kbs.url, '--kbs-cert', '/nonexistent.pem'],
      2,
      /ERR_OPTIONS_INVALID/,
    ],
    [
      'a bad --tee-key-algorithm',
      () => ['kbs', 'get-resource', 'kbs:///a/b/c', '--kbs', kbs.url, '--tee-key-algorithm', 'P-384'],
      2,
      /tee-key-algorithm/,
    ],
    ['an ftp KBS URL', () => ['kbs', 'get-resource', 'kbs:///a/b/c', '--kbs', 'ftp://x'], 2, /want http/],
    ['an unknown subcommand', () => ['kbs', 'frobnicate'], 2, /want serve or get-resource/],
  ]
  for (const [name, args, code, message] of failures) {
    test(name, async () => {
      const r = await runCli(args(), {})
      expect(r.code).toBe(code)
      expect(r.stderr).toMatch(message)
    })
  }

  test('a denying KBS exits 8 with ERR_KBS_DENIED', async () => {
    kbs.policy = 'deny'
    try {
      const r = await runCli(['kbs', 'get-resource', 'kbs:///default/key/key_id1', '--kbs', kbs.url], {})
      expect(r.code).toBe(8)
      expect(r.stderr).toMatch(/^ocipull: ERR_KBS_DENIED: .*PolicyDeny/)
    } finally {
      kbs.policy = 'allow-all'
    }
  })

  test('Init-Data without a KBS URL is ERR_INITDATA_INVALID', async () => {
    const file = join(work, 'no-url.toml')
    await writeFile(file, 'version = "0.1.0"\nalgorithm = "sha256"\n[data]\n')
    const r = await runCli(['kbs', 'get-resource', 'kbs:///a/b/c', '--initdata', file], {})
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/ERR_INITDATA_INVALID: .*no KBS URL/)])
  })
})

describe.skipIf(!requireTool('openssl'))('ocipull kbs serve', () => {
  test('serves HTTPS with an admin token file; get-resource --kbs-cert fetches what the admin uploaded', async () => {
    const ca = await makeTestCa(await makeTempDir())
    const dir = await makeTempDir()
    await writeFile(join(dir, 'tls.crt'), ca.cert)
    await writeFile(join(dir, 'tls.key'), ca.key)
    const tokenFile = join(dir, 'admin-token')
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'src/cli/main.ts'),
        'kbs',
        'serve',
        '--repository',
        join(dir, 'repo'),
      ].concat([
        '--tls-cert',
        join(dir, 'tls.crt'),
        '--tls-key',
        join(dir, 'tls.key'),
        '--admin-token-file',
        tokenFile,
      ]),
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    try {
      const [url] = (await once(createInterface({ input: child.stdout }), 'line')) as [string]
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
      const token = (await readFile(tokenFile, 'utf8')).trim()
      expect(token.length).toBeGreaterThanOrEqual(32)
      const up = await request(`${url}/kbs/v0/resource/team/key/one`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: KEK,
        dispatcher: new (await import('undici')).Agent({ connect: { ca: ca.caPem } }),
      })
      expect(up.statusCode).toBe(200)
      await up.body.dump()
      const caFile = join(dir, 'ca.pem')
      await writeFile(caFile, ca.caPem)
      const r = await runCli(
        ['kbs', 'get-resource', 'kbs:///team/key/one', '--kbs', url, '--kbs-cert', caFile],
        {},
      )
      expect([r.code, r.stderr]).toEqual([0, ''])
      const c = createKbsClient({ url, cert: ca.caPem, env: {} })
      try {
        expect(Buffer.from(await c.getResource('kbs:///team/key/one'))).toEqual(KEK)
      } finally {
        await c.close()
      }
    } finally {
      child.kill('SIGTERM')
      const [code] = await once(child, 'exit')
      expect(code).toBe(0)
    }
  })
})
