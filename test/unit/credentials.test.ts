import { execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isOcipullError, OcipullError } from '../../src/errors.js'
import {
  authFileCredentials,
  type Credential,
  chainCredentials,
  defaultAuthFiles,
  parseCredsOption,
  staticCredentials,
} from '../../src/registry/credentials.js'
import { rejection } from '../helpers/failure.js'

const b64 = (text: string) => Buffer.from(text).toString('base64')
const basic = (username: string, password: string): Credential => ({ kind: 'basic', username, password })

let dir = ''
const path = (name: string) => join(dir, name)

// Two files that overlap, in docker and containers styles.
const dockerConfig = {
  auths: {
    'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass:word') },
    'registry.example.com': { auth: b64('alice:secret') },
    'registry.example.com:5000': { username: 'bob', password: 'pw5000' },
    'http://insecure.local/v2/': { auth: b64('ins:pw') },
    'evil.com': { auth: b64('evil:pw') },
    'good.com.attacker.net': { auth: b64('attacker:pw') },
    'token.example.com': { identitytoken: 'refresh-1' },
    'token-user.example.com': { auth: b64('tu:x'), identitytoken: 'refresh-2' },
    'rt.example.com': { registrytoken: 'bearer-1', auth: b64('ignored:x') },
    'placeholder.example.com': {},
    'empty-auth.example.com': { auth: '', email: 'x@example.com' },
    'MiXeD.Example.COM': { auth: b64('mixed:pw') },
  },
  HttpHeaders: { 'User-Agent': 'x' },
  psFormat: 'table',
}
const containersAuth = {
  auths: {
    'quay.io': { auth: b64('q-host:pw') },
    'quay.io/ns': { auth: b64('q-ns:pw') },
    'quay.io/ns/repo': { auth: b64('q-repo:pw') },
    'docker.io/library': { auth: b64('lib:pw') },
    'index.docker.io/org/': { auth: b64('org:pw') },
    'registry.example.com': { auth: b64('alice-from-b:pw') },
    'placeholder.example.com': { auth: b64('from-b:pw') },
  },
}

const helperScript = `#!/bin/sh
[ "$1" = get ] || exit 2
read -r url
printf '%s\\n' "$url" >> "$HELPER_LOG"
case "$url" in
  ok.example.com) printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret"}' "$url" ;;
  token.example.com) printf '{"ServerURL":"%s","Username":"<token>","Secret":"helper-refresh"}' "$url" ;;
  https://store-key.example.com) printf '{"Username":"store-user","Secret":"store-pw"}' ;;
  https://index.docker.io/v1/) printf '{"Username":"hub-helper","Secret":"hub-pw"}' ;;
  fail.example.com) echo "boom: keyring locked" >&2; echo "second line" >&2; exit 3 ;;
  stdout-fail.example.com) echo "error getting credentials - err: exit status 1"; exit 1 ;;
  leak.example.com) printf '{"Username":"u","Secret":"LEAKED-SECRET"}'; exit 4 ;;
  bad-json.example.com) echo 'not json LEAKED-SECRET' ;;
  wrong-type.example.com) printf '{"Username":"u","Secret":5}' ;;
  empty-secret.example.com) printf '{"Username":"u","Secret":""}' ;;
  big.example.com) head -c 200000 /dev/zero | tr '\\0' a ;;
  hang.example.com) echo $$ > "$HELPER_PID"; exec sleep 30 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`

const helperConfig = {
  auths: {
    'https://store-key.example.com': {},
    'inline.example.com': { auth: b64('inline:pw') },
    'https://index.docker.io/v1/': {},
  },
  credHelpers: Object.fromEntries(
    [
      'ok.example.com',
      'token.example.com',
      'missing.example.com',
      'fail.example.com',
      'stdout-fail.example.com',
      'leak.example.com',
      'bad-json.example.com',
      'wrong-type.example.com',
      'empty-secret.example.com',
      'big.example.com',
      'hang.example.com',
      'inline.example.com:1',
    ].map((host) => [host, 'test']),
  ),
  credsStore: 'test',
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ocipull-creds-'))
  await writeFile(path('docker.json'), JSON.stringify(dockerConfig))
  await writeFile(path('containers.json'), JSON.stringify(containersAuth))
  await writeFile(path('helpers.json'), JSON.stringify(helperConfig))
  await writeFile(
    path('fallback.json'),
    JSON.stringify({
      auths: { 'missing.example.com': { auth: b64('fallback:pw') } },
      credHelpers: { 'absent.example.com': 'nope' },
    }),
  )
  await mkdir(path('bin'))
  await writeFile(path('bin/docker-credential-test'), helperScript)
  await chmod(path('bin/docker-credential-test'), 0o755)
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('authFileCredentials lookups', () => {
  const table: [string, string[], string, string | undefined, Credential | undefined][] = [
    ['plain host', ['docker.json'], 'registry.example.com', 'a/b', basic('alice', 'secret')],
    [
      'host is case-insensitive',
      ['docker.json'],
      'REGISTRY.example.com',
      undefined,
      basic('alice', 'secret'),
    ],
    ['mixed-case key', ['docker.json'], 'mixed.example.com', undefined, basic('mixed', 'pw')],
    ['port is part of the host', ['docker.json'], 'registry.example.com:5000', 'a', basic('bob', 'pw5000')],
    ['other port does not match', ['docker.json'], 'registry.example.com:5001', 'a', undefined],
    ['scheme and path are dropped from keys', ['docker.json'], 'insecure.local', 'x', basic('ins', 'pw')],
    [
      'password may hold colons',
      ['docker.json'],
      'docker.io',
      'library/busybox',
      basic('hubuser', 'hub:pass:word'),
    ],
    [
      'hub alias index.docker.io',
      ['docker.json'],
      'index.docker.io',
      'x/y',
      basic('hubuser', 'hub:pass:word'),
    ],
    [
      'hub alias registry-1',
      ['docker.json'],
      'registry-1.docker.io',
      'x/y',
      basic('hubuser', 'hub:pass:word'),
    ],
    ['exact host only', ['docker.json'], 'evil.com', 'x', basic('evil', 'pw')],
    ['no match on a longer host', ['docker.json'], 'evil.com.attacker.net', 'x', undefined],
    ['no match on a subdomain', ['docker.json'], 'www.evil.com', 'x', undefined],
    ['no match on a shorter host', ['docker.json'], 'good.com', 'x', undefined],
    ['no match on a prefix of the host', ['docker.json'], 'evil.co', 'x', undefined],
    [
      'identity token',
      ['docker.json'],
      'token.example.com',
      'x',
      { kind: 'identity-token', token: 'refresh-1' },
    ],
    [
      'identity token with user',
      ['docker.json'],
      'token-user.example.com',
      'x',
      { kind: 'identity-token', username: 'tu', token: 'refresh-2' },
    ],
    [
      'registry token wins',
      ['docker.json'],
      'rt.example.com',
      'x',
      { kind: 'registry-token', token: 'bearer-1' },
    ],
    ['placeholder has no credential', ['docker.json'], 'placeholder.example.com', 'x', undefined],
    ['empty auth has no credential', ['docker.json'], 'empty-auth.example.com', 'x', undefined],
    [
      'placeholder falls through to a later file',
      ['docker.json', 'containers.json'],
      'placeholder.example.com',
      'x',
      basic('from-b', 'pw'),
    ],
    ['unknown host', ['docker.json'], 'nowhere.example.com', 'x', undefined],
    ['per-repository entry', ['containers.json'], 'quay.io', 'ns/repo', basic('q-repo', 'pw')],
    [
      'deeper repository uses the repository entry',
      ['containers.json'],
      'quay.io',
      'ns/repo/sub',
      basic('q-repo', 'pw'),
    ],
    ['per-namespace entry', ['containers.json'], 'quay.io', 'ns/other', basic('q-ns', 'pw')],
    [
      'namespace is a whole path component',
      ['containers.json'],
      'quay.io',
      'nsx/repo',
      basic('q-host', 'pw'),
    ],
    [
      'host entry when no namespace matches',
      ['containers.json'],
      'quay.io',
      'other/x',
      basic('q-host', 'pw'),
    ],
    ['host entry without a repository', ['containers.json'], 'quay.io', undefined, basic('q-host', 'pw')],
    ['namespace entry on a hub alias key', ['containers.json'], 'docker.io', 'org/app', basic('org', 'pw')],
    ['hub namespace entry', ['containers.json'], 'index.docker.io', 'library/busybox', basic('lib', 'pw')],
    ['hub without namespace entry', ['containers.json'], 'docker.io', 'other/x', undefined],
    [
      'earlier file wins',
      ['docker.json', 'containers.json'],
      'registry.example.com',
      'x',
      basic('alice', 'secret'),
    ],
    [
      'earlier file wins, reversed',
      ['containers.json', 'docker.json'],
      'registry.example.com',
      'x',
      basic('alice-from-b', 'pw'),
    ],
    [
      'first file with a match wins over specificity',
      ['docker.json', 'containers.json'],
      'docker.io',
      'library/x',
      basic('hubuser', 'hub:pass:word'),
    ],
    [
      'later file used when earlier has no match',
      ['containers.json', 'docker.json'],
      'evil.com',
      'x',
      basic('evil', 'pw'),
    ],
    [
      'missing files are skipped',
      ['nope.json', 'nodir/x/auth.json', 'docker.json'],
      'evil.com',
      'x',
      basic('evil', 'pw'),
    ],
    ['no files', [], 'evil.com', 'x', undefined],
  ]
  it.each(table)('%s', async (_name, files, registry, repository, want) => {
    const store = authFileCredentials({ files: files.map(path) })
    expect(await store({ registry, repository })).toEqual(want)
  })

  it('reads each file once', async () => {
    await writeFile(
      path('once.json'),
      JSON.stringify({ auths: { 'once.example.com': { auth: b64('first:pw') } } }),
    )
    const store = authFileCredentials({ files: [path('once.json')] })
    expect(await store({ registry: 'once.example.com' })).toEqual(basic('first', 'pw'))
    await writeFile(
      path('once.json'),
      JSON.stringify({ auths: { 'once.example.com': { auth: b64('second:pw') } } }),
    )
    expect(await store({ registry: 'once.example.com' })).toEqual(basic('first', 'pw'))
    expect(
      await authFileCredentials({ files: [path('once.json')] })({ registry: 'once.example.com' }),
    ).toEqual(basic('second', 'pw'))
  })

  it('does not read later files when an earlier one matches', async () => {
    await writeFile(path('broken.json'), '{')
    const store = authFileCredentials({ files: [path('docker.json'), path('broken.json')] })
    expect(await store({ registry: 'evil.com' })).toEqual(basic('evil', 'pw'))
    await expect(store({ registry: 'nowhere.example.com' })).rejects.toMatchObject({
      code: 'ERR_CREDENTIALS',
    })
  })

  const badRequests: [string, string, string | undefined][] = [
    ['empty registry', '', undefined],
    ['registry with a path', 'evil.com/x', undefined],
    ['registry with a scheme', 'https://evil.com', undefined],
    ['registry with user info', 'u@evil.com', undefined],
    ['repository with an empty component', 'evil.com', 'a//b'],
    ['repository with a leading slash', 'evil.com', '/a'],
  ]
  it.each(badRequests)('bad request: %s', async (_name, registry, repository) => {
    const store = authFileCredentials({ files: [path('docker.json')] })
    await expect(store({ registry, repository })).rejects.toMatchObject({ code: 'ERR_OPTIONS_INVALID' })
  })

  it('honours an aborted signal', async () => {
    const store = authFileCredentials({ files: [path('docker.json')] })
    await expect(store({ registry: 'evil.com', signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    })
  })
})

describe('authFileCredentials bad files', () => {
  // Every secret below contains SECRET; no message may repeat it.
  const table: [string, string | Buffer, string][] = [
    ['truncated JSON', '{"auths": {"x": {"auth": "U0VDUkVUOnB3"', 'not valid JSON'],
    ['JSON with a secret near the error', '{"auths": {"x": {"password": "SECRET" x}}}', 'not valid JSON'],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'not valid UTF-8'],
    ['top level is an array', '[]', 'want an object, got an array'],
    ['auths is a string', '{"auths": "SECRET"}', 'auths: want an object, got a string'],
    ['entry is a number', '{"auths": {"x": 5}}', 'auths."x": want an object, got a number'],
    ['entry is null', '{"auths": {"x": null}}', 'auths."x": want an object, got null'],
    ['auth is not base64', '{"auths": {"x": {"auth": "SECRET!!"}}}', 'auths."x".auth: not valid base64'],
    [
      'auth has bad padding',
      `{"auths": {"x": {"auth": "${b64('u:SECRET').replace(/=+$/, '')}=="}}}`,
      'auths."x".auth: not valid base64',
    ],
    ['auth that needs no padding is fine', '{"auths": {"x": {"auth": "YTpi"}}, "y": 1}', ''],
    [
      'auth has no colon',
      `{"auths": {"x": {"auth": "${b64('SECRET')}"}}}`,
      `auths."x".auth: want base64 of user:password`,
    ],
    [
      'auth is not UTF-8',
      `{"auths": {"x": {"auth": "${Buffer.from([0x61, 0x3a, 0xff]).toString('base64')}"}}}`,
      'not valid UTF-8',
    ],
    [
      'auth has an empty user',
      `{"auths": {"x": {"auth": "${b64(':SECRET')}"}}}`,
      'auths."x": user name is empty',
    ],
    ['auth is a number', '{"auths": {"x": {"auth": 12345}}}', 'auths."x".auth: want a string, got a number'],
    [
      'username is an array',
      '{"auths": {"x": {"username": ["SECRET"]}}}',
      'auths."x".username: want a string, got an array',
    ],
    [
      'password is an object',
      '{"auths": {"x": {"username": "u", "password": {"a": "SECRET"}}}}',
      'auths."x".password: want a string',
    ],
    [
      'identity token with a newline',
      '{"auths": {"x": {"identitytoken": "SECRET\\nX"}}}',
      'auths."x".identitytoken: holds control characters',
    ],
    [
      'registry token is a boolean',
      '{"auths": {"x": {"registrytoken": true}}}',
      'auths."x".registrytoken: want a string, got a boolean',
    ],
    [
      'bad entry for another host',
      `{"auths": {"other": {"auth": "!"}, "x": {"auth": "${b64('u:SECRET')}"}}}`,
      'auths."other".auth: not valid base64',
    ],
    ['credHelpers is an array', '{"credHelpers": []}', 'credHelpers: want an object, got an array'],
    [
      'credHelpers value is a number',
      '{"credHelpers": {"x": 1}}',
      'credHelpers."x": want a string, got a number',
    ],
    [
      'credHelpers name is a path',
      '{"credHelpers": {"x": "../../bin/sh"}}',
      'credHelpers."x": not a valid helper name',
    ],
    [
      'credHelpers name is an option',
      '{"credHelpers": {"x": "-rf"}}',
      'credHelpers."x": not a valid helper name',
    ],
    ['credsStore is a number', '{"credsStore": 7}', 'credsStore: want a string, got a number'],
    ['credsStore has a slash', '{"credsStore": "a/b"}', 'credsStore: not a valid helper name'],
  ]
  it.each(table)('%s', async (name, content, message) => {
    const file = path(`bad-${name.replace(/\W+/g, '-')}.json`)
    await writeFile(file, content)
    const store = authFileCredentials({ files: [file] })
    const err = await store({ registry: 'x' }).then(
      () => undefined,
      (e: unknown) => e,
    )
    if (message === '') {
      expect(err).toBeUndefined()
      return
    }
    expect(isOcipullError(err, 'ERR_CREDENTIALS')).toBe(true)
    const text = (err as OcipullError).message
    expect(text).toContain(`auth file ${file}: `)
    expect(text).toContain(message)
    expect(text).not.toMatch(/SECRET|U0VDUkVU/)
  })

  it('empty file has no entries', async () => {
    await writeFile(path('empty.json'), ' \n')
    expect(await authFileCredentials({ files: [path('empty.json')] })({ registry: 'x' })).toBeUndefined()
  })

  it('file over the size cap', async () => {
    await writeFile(path('large.json'), JSON.stringify({ auths: {}, pad: 'x'.repeat(2000) }))
    const store = authFileCredentials({ files: [path('large.json')], maxFileBytes: 1000 })
    await expect(store({ registry: 'x' })).rejects.toThrow(/large\.json: larger than 1000 bytes/)
  })

  it('directory instead of a file', async () => {
    await mkdir(path('a-dir.json'))
    await expect(authFileCredentials({ files: [path('a-dir.json')] })({ registry: 'x' })).rejects.toThrow(
      /a-dir\.json: not a regular file/,
    )
  })

  it('FIFO instead of a file does not hang', async () => {
    execFileSync('mkfifo', [path('fifo.json')])
    await expect(authFileCredentials({ files: [path('fifo.json')] })({ registry: 'x' })).rejects.toThrow(
      /fifo\.json: not a regular file/,
    )
  })
})

describe('credential helpers', () => {
  const run = (
    files: string[],
    registry: string,
    extra: { timeoutMs?: number; signal?: AbortSignal; env?: object } = {},
  ) => {
    const env = {
      PATH: `${path('bin')}:/usr/bin:/bin`,
      HELPER_LOG: path('helper.log'),
      HELPER_PID: path('helper.pid'),
      ...extra.env,
    }
    const store = authFileCredentials({
      files: files.map(path),
      env,
      ...(extra.timeoutMs === undefined ? {} : { helperTimeoutMs: extra.timeoutMs }),
    })
    return store({
      registry,
      repository: 'a/b',
      ...(extra.signal === undefined ? {} : { signal: extra.signal }),
    })
  }

  const good: [string, string[], string, Credential | undefined, string | undefined][] = [
    [
      'credHelpers entry',
      ['helpers.json'],
      'ok.example.com',
      basic('helper-user', 'helper-secret'),
      'ok.example.com',
    ],
    [
      '<token> user gives an identity token',
      ['helpers.json'],
      'token.example.com',
      { kind: 'identity-token', token: 'helper-refresh' },
      'token.example.com',
    ],
    ['not found gives undefined', ['helpers.json'], 'missing.example.com', undefined, 'missing.example.com'],
    [
      'not found falls through to the next file',
      ['helpers.json', 'fallback.json'],
      'missing.example.com',
      basic('fallback', 'pw'),
      'missing.example.com',
    ],
    [
      'empty secret gives undefined',
      ['helpers.json'],
      'empty-secret.example.com',
      undefined,
      'empty-secret.example.com',
    ],
    [
      'auths entry before credsStore',
      ['helpers.json'],
      'inline.example.com',
      basic('inline', 'pw'),
      undefined,
    ],
    [
      'credsStore gets the key as stored',
      ['helpers.json'],
      'store-key.example.com',
      basic('store-user', 'store-pw'),
      'https://store-key.example.com',
    ],
    [
      'credsStore for docker hub',
      ['helpers.json'],
      'registry-1.docker.io',
      basic('hub-helper', 'hub-pw'),
      'https://index.docker.io/v1/',
    ],
    [
      'credsStore for an unknown host',
      ['helpers.json'],
      'unknown.example.com',
      undefined,
      'unknown.example.com',
    ],
    [
      'credHelpers port must match exactly',
      ['helpers.json'],
      'inline.example.com:1',
      undefined,
      'inline.example.com:1',
    ],
  ]
  it.each(good)('%s', async (_name, files, registry, want, serverUrl) => {
    await rm(path('helper.log'), { force: true })
    expect(await run(files, registry)).toEqual(want)
    const log = await readFile(path('helper.log'), 'utf8').catch(() => '')
    expect(log).toBe(serverUrl === undefined ? '' : `${serverUrl}\n`)
  })

  const bad: [string, string[], string, string][] = [
    [
      'failing helper quotes the first stderr line',
      ['helpers.json'],
      'fail.example.com',
      'exited with code 3: boom: keyring locked',
    ],
    [
      'failing helper with its error on stdout',
      ['helpers.json'],
      'stdout-fail.example.com',
      'exited with code 1: error getting credentials',
    ],
    ['failing helper never echoes JSON', ['helpers.json'], 'leak.example.com', 'exited with code 4'],
    ['output is not JSON', ['helpers.json'], 'bad-json.example.com', 'output is not valid JSON'],
    ['Secret is not a string', ['helpers.json'], 'wrong-type.example.com', 'output: Secret: want a string'],
    ['output too large', ['helpers.json'], 'big.example.com', 'output larger than 65536 bytes'],
    [
      'helper not on PATH',
      ['fallback.json'],
      'absent.example.com',
      'docker-credential-nope: not found on PATH',
    ],
  ]
  it.each(bad)('bad: %s', async (_name, files, registry, message) => {
    const err = await rejection(run(files, registry))
    expect(isOcipullError(err, 'ERR_CREDENTIALS')).toBe(true)
    const text = (err as Error).message
    expect(text).toContain('credential helper docker-credential-')
    expect(text).toContain(message)
    expect(text).not.toMatch(/LEAKED-SECRET|second line/)
  })

  it('relative PATH entries are ignored', async () => {
    const err = await rejection(run(['helpers.json'], 'ok.example.com', { env: { PATH: 'bin:.' } }))
    expect((err as Error).message).toContain('not found on PATH')
  })

  async function expectKilled(): Promise<void> {
    const pid = Number(await readFile(path('helper.pid'), 'utf8'))
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0)
      } catch {
        return
      }
      await sleep(20)
    }
    throw new Error(`helper ${pid} still running`)
  }

  it('a hanging helper hits the timeout and is killed', async () => {
    const start = Date.now()
    const err = await rejection(run(['helpers.json'], 'hang.example.com', { timeoutMs: 300 }))
    expect(Date.now() - start).toBeLessThan(5000)
    expect(isOcipullError(err, 'ERR_CREDENTIALS')).toBe(true)
    expect((err as Error).message).toBe('credential helper docker-credential-test: no answer within 300 ms')
    await expectKilled()
  })

  it('an aborted signal kills a hanging helper', async () => {
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 300)
    const start = Date.now()
    const err = await rejection(run(['helpers.json'], 'hang.example.com', { signal: controller.signal }))
    expect(Date.now() - start).toBeLessThan(5000)
    expect(isOcipullError(err, 'ERR_ABORTED')).toBe(true)
    await expectKilled()
  })
})

describe('staticCredentials and chainCredentials', () => {
  const creds = basic('u', 'p')
  const table: [string, string, string, Credential | undefined][] = [
    ['same registry', 'registry.example.com', 'registry.example.com', creds],
    ['case-insensitive', 'Registry.Example.com', 'registry.example.com', creds],
    ['hub aliases', 'docker.io', 'index.docker.io', creds],
    ['other registry', 'registry.example.com', 'registry.example.com.evil.net', undefined],
    ['other port', 'registry.example.com', 'registry.example.com:443', undefined],
    ['prefix', 'registry.example.com', 'registry.example.co', undefined],
  ]
  it.each(table)('%s', async (_name, configured, asked, want) => {
    expect(await staticCredentials(configured, creds)({ registry: asked })).toEqual(want)
  })

  it('chain returns the first defined', async () => {
    const calls: string[] = []
    const store =
      (name: string, credential: Credential | undefined) => async (): Promise<Credential | undefined> => {
        calls.push(name)
        return credential
      }
    const chain = chainCredentials(
      store('a', undefined),
      store('b', basic('b', 'p')),
      store('c', basic('c', 'p')),
    )
    expect(await chain({ registry: 'x' })).toEqual(basic('b', 'p'))
    expect(calls).toEqual(['a', 'b'])
    expect(await chainCredentials()({ registry: 'x' })).toBeUndefined()
    await expect(chain({ registry: 'x', signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    })
  })
})

describe('parseCredsOption', () => {
  const good: [string, Credential][] = [
    ['user:pass', basic('user', 'pass')],
    ['user:pa:ss:', basic('user', 'pa:ss:')],
    ['user:', basic('user', '')],
    ['us er:p w', basic('us er', 'p w')],
  ]
  it.each(good)('%s', (text, want) => {
    expect(parseCredsOption(text)).toEqual(want)
  })

  const bad: [string, string][] = [
    ['', 'creds: empty'],
    ['justauser', "creds: want user:password, found no ':'"],
    [':SECRET', 'creds: user name is empty'],
    ['u\nx:SECRET', 'creds: user name holds control characters'],
  ]
  it.each(bad)('bad: %j', (text, message) => {
    expect(() => parseCredsOption(text)).toThrow(new OcipullError('ERR_CREDENTIALS', message))
    try {
      parseCredsOption(text)
    } catch (err) {
      expect(isOcipullError(err, 'ERR_CREDENTIALS')).toBe(true)
    }
  })
})

describe('defaultAuthFiles', () => {
  const run = `/run/containers/${process.getuid?.()}/auth.json`
  const table: [string, NodeJS.ProcessEnv, string[]][] = [
    [
      'REGISTRY_AUTH_FILE replaces the runtime dir file',
      { REGISTRY_AUTH_FILE: '/a.json', XDG_RUNTIME_DIR: '/run/user/1', HOME: '/h' },
      ['/a.json', '/h/.config/containers/auth.json', '/h/.docker/config.json'],
    ],
    [
      'runtime dir and DOCKER_CONFIG',
      { XDG_RUNTIME_DIR: '/run/user/1', HOME: '/h', DOCKER_CONFIG: '/d' },
      ['/run/user/1/containers/auth.json', '/h/.config/containers/auth.json', '/d/config.json'],
    ],
    [
      'XDG_CONFIG_HOME',
      { HOME: '/h', XDG_CONFIG_HOME: '/cfg' },
      [run, '/cfg/containers/auth.json', '/h/.docker/config.json'],
    ],
    ['nothing set', {}, [run]],
    [
      'empty variables count as unset',
      { REGISTRY_AUTH_FILE: '', HOME: '', XDG_RUNTIME_DIR: '', DOCKER_CONFIG: '/d' },
      [run, '/d/config.json'],
    ],
    [
      'duplicates removed',
      { REGISTRY_AUTH_FILE: '/h/.docker/config.json', HOME: '/h' },
      ['/h/.docker/config.json', '/h/.config/containers/auth.json'],
    ],
  ]
  it.each(table)('%s', (_name, env, want) => {
    expect(defaultAuthFiles(env)).toEqual(want)
  })
})
