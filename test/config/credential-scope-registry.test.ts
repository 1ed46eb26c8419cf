import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { type RigRegistry, requireRegistry } from '../rig/index.js'
import { cleanEnv, configDir, logMark, requestsIn, startRegistryPair } from './rig-pair.js'

/**
 * Credentials for registry A are never sent to registry B, whatever registries.conf says (image-rs
 * sends its `user:pass` to every mirror). Checked at the registry side: both are real
 * htpasswd-protected registries that know the same user, so credentials that leaked to B would be
 * accepted there and B would log `authorized request` (or `error authenticating user` for a
 * wrong password); a request without credentials is logged as `invalid authorization credential`.
 * The control case shows that B does log `authorized request` when given its own credentials.
 */

const files = configDir()
afterAll(() => files.remove())

const authFileFor = (...hosts: string[]) =>
  JSON.stringify({
    auths: Object.fromEntries(
      hosts.map((h) => [h, { auth: Buffer.from('testuser:testpass').toString('base64') }]),
    ),
  })

/** Lines where the registry authenticated a user, or tried to: it was sent credentials. */
const authenticatedIn = (log: string) =>
  log
    .split('\n')
    .filter((l) => /msg="authorized request"|auth\.user\.name=|error authenticating user/.test(l))
/** Lines where the registry got a request without credentials. */
const anonymousIn = (log: string) =>
  log.split('\n').filter((l) => l.includes('invalid authorization credential'))

describe.skipIf(!requireRegistry('tls-basic'))('credentials stay with their own host', () => {
  let a: RigRegistry
  let b: RigRegistry
  let conf: string
  let cacerts: string[]
  beforeAll(async () => {
    ;({ a, b } = await startRegistryPair('tls-basic'))
    conf = files.write(
      'mirror.conf',
      `[[registry]]\nlocation = "${a.host}"\n[[registry.mirror]]\nlocation = "${b.host}"\n`,
    )
    cacerts = ['--cacert', a.caFile!, '--cacert', b.caFile!]
  }, 300_000)
  afterAll(async () => {
    await a?.stop()
    await b?.stop()
  })

  const inspect = (args: string[]) =>
    runCli(
      ['inspect', '--json', '--registries-conf', conf, ...cacerts, ...args, a.ref('busybox:oci')],
      cleanEnv(),
    )

  const forA: [string, () => { args: string[]; env?: NodeJS.ProcessEnv }][] = [
    [
      'an auth file entry for A',
      () => ({ args: ['--authfile', files.write('auth-a.json', authFileFor(a.host))] }),
    ],
    ['--creds for A', () => ({ args: ['--creds', 'testuser:testpass'] })],
    [
      'REGISTRY_AUTH_FILE with an entry for A',
      () => ({ args: [], env: { REGISTRY_AUTH_FILE: files.write('auth-env.json', authFileFor(a.host)) } }),
    ],
  ]
  test.each(forA)('%s: the mirror B is asked anonymously, refuses, and A serves', async (_name, setup) => {
    const { args, env } = setup()
    const logA = logMark(a)
    const logB = logMark(b)
    const r = await runCli(
      ['inspect', '--json', '--registries-conf', conf, ...cacerts, ...args, a.ref('busybox:oci')],
      cleanEnv(env),
    )
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const fromB = await logB.since()
    expect(requestsIn(fromB)).toContain('GET /v2/busybox/manifests/oci 401') // B was tried...
    expect(anonymousIn(fromB)).toHaveLength(1) // ...without credentials,
    expect(authenticatedIn(fromB)).toEqual([]) // ...and never saw one
    expect(authenticatedIn(await logA.since()).length).toBeGreaterThan(0)
  })

  test('control: with its own entry, B authenticates the user and serves', async () => {
    const logA = logMark(a)
    const logB = logMark(b)
    const r = await inspect(['--authfile', files.write('auth-both.json', authFileFor(a.host, b.host))])
    expect(r.code).toBe(0)
    expect(authenticatedIn(await logB.since()).length).toBeGreaterThan(0)
    expect(requestsIn(await logA.since())).toEqual([])
  })

  test('a remapped location gets no credentials of the registry the user named', async () => {
    const remap = files.write(
      'remap.conf',
      `[[registry]]\nprefix = "private.example.test"\nlocation = "${b.host}"\n`,
    )
    const logB = logMark(b)
    const r = await runCli(
      [
        'inspect',
        '--registries-conf',
        remap,
        '--cacert',
        b.caFile!,
        '--creds',
        'testuser:testpass',
        '--authfile',
        files.write('auth-named.json', authFileFor('private.example.test')),
        'private.example.test/busybox:oci',
      ],
      cleanEnv(),
    )
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(
      /^ocipull: ERR_UNAUTHORIZED: docker:\/\/127\.0\.0\.1:\d+\/busybox:oci: unauthorized: no credentials/,
    )
    const fromB = await logB.since()
    expect(requestsIn(fromB)).toContain('GET /v2/busybox/manifests/oci 401')
    expect(anonymousIn(fromB)).toHaveLength(1)
    expect(authenticatedIn(fromB)).toEqual([])
  })

  test('a mirror whose certificate is not trusted gets no request at all, let alone credentials', async () => {
    const logB = logMark(b)
    const r = await runCli(
      [
        'inspect',
        '--registries-conf',
        conf,
        '--cacert',
        a.caFile!,
        '--authfile',
        files.write('auth-both-2.json', authFileFor(a.host, b.host)),
        a.ref('busybox:oci'),
      ],
      cleanEnv(),
    )
    expect(r.code).toBe(0) // B fails with ERR_TLS, A serves
    const fromB = await logB.since()
    expect(fromB).toMatch(/TLS handshake error/)
    expect(requestsIn(fromB)).toEqual([])
  })
})
