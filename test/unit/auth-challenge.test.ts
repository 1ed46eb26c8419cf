import { describe, expect, it } from 'vitest'
import {
  type AuthChallenge,
  bearerChallenge,
  parseAuthChallenges,
} from '../../src/registry/auth-challenge.js'

type Expected = { scheme: string; params?: Record<string, string>; token68?: string }

function plain(challenges: AuthChallenge[]): Expected[] {
  return challenges.map((c) => ({
    scheme: c.scheme,
    params: { ...c.params },
    ...(c.token68 === undefined ? {} : { token68: c.token68 }),
  }))
}

const ok = (scheme: string, params: Record<string, string> = {}, token68?: string): Expected => ({
  scheme,
  params,
  ...(token68 === undefined ? {} : { token68 }),
})

describe('parseAuthChallenges', () => {
  const good: [string, string | string[] | undefined, Expected[]][] = [
    [
      'docker hub bearer',
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      [
        ok('bearer', {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/busybox:pull',
        }),
      ],
    ],
    ['basic with realm', 'Basic realm="Registry Realm"', [ok('basic', { realm: 'Registry Realm' })]],
    ['scheme alone', 'Basic', [ok('basic')]],
    ['case folding', 'BEARER Realm="x", SERVICE=y', [ok('bearer', { realm: 'x', service: 'y' })]],
    [
      'comma inside a quoted scope',
      'Bearer realm="https://a/t",scope="repository:a/b:pull,push"',
      [ok('bearer', { realm: 'https://a/t', scope: 'repository:a/b:pull,push' })],
    ],
    [
      'two challenges in one value',
      'Basic realm="r", Bearer realm="https://a/t", service="s"',
      [ok('basic', { realm: 'r' }), ok('bearer', { realm: 'https://a/t', service: 's' })],
    ],
    [
      'several header values',
      ['Negotiate', 'Bearer realm="https://a/t"'],
      [ok('negotiate'), ok('bearer', { realm: 'https://a/t' })],
    ],
    ['token68', 'Negotiate YII=, Basic realm=x', [ok('negotiate', {}, 'YII='), ok('basic', { realm: 'x' })]],
    ['token68 without padding', 'NTLM TlRMTVNTUAAB/+', [ok('ntlm', {}, 'TlRMTVNTUAAB/+')]],
    [
      'token values',
      'Bearer realm=https, error=invalid_token',
      [ok('bearer', { realm: 'https', error: 'invalid_token' })],
    ],
    [
      'whitespace around = and commas',
      '  Bearer   realm = "x" ,\t service\t=\t"y"  ,  ',
      [ok('bearer', { realm: 'x', service: 'y' })],
    ],
    [
      'empty list elements',
      ',, Basic realm="x" ,, , Bearer realm="y",',
      [ok('basic', { realm: 'x' }), ok('bearer', { realm: 'y' })],
    ],
    ['escapes in quoted strings', 'Basic realm="a\\"b\\\\c\\d"', [ok('basic', { realm: 'a"b\\cd' })]],
    ['empty quoted value', 'Bearer realm="", service=""', [ok('bearer', { realm: '', service: '' })]],
    ['first duplicate wins', 'Bearer realm="a", realm="b"', [ok('bearer', { realm: 'a' })]],
    ['scheme after a scheme', 'Basic, Bearer realm="x"', [ok('basic'), ok('bearer', { realm: 'x' })]],
    ['__proto__ is a plain param', 'Bearer __proto__="x"', [ok('bearer', { ['__proto__']: 'x' })]],
    ['latin-1 obs-text in quotes', 'Basic realm="caf\u00e9"', [ok('basic', { realm: 'caf\u00e9' })]],
  ]
  it.each(good)('%s', (_name, header, want) => {
    expect(plain(parseAuthChallenges(header))).toEqual(want)
  })

  const bad: [string, string | string[] | undefined, Expected[]][] = [
    ['undefined', undefined, []],
    ['params without a comma between them', 'Bearer realm="x" service=y', []],
    ['empty', '', []],
    ['only commas and spaces', ' , ,\t,', []],
    ['not a token', '"Bearer" realm="x"', []],
    ['unterminated quote', 'Bearer realm="https://a/t', []],
    [
      'unterminated quote keeps earlier challenges',
      'Basic realm="r", Bearer realm="x',
      [ok('basic', { realm: 'r' })],
    ],
    ['control character in quotes', 'Bearer realm="a\nb"', []],
    ['control character as a value', 'Bearer realm=\u0001', []],
    // `realm=` is a token68 by the grammar, so no realm param
    ['missing value', 'Bearer realm=, Basic', [ok('bearer', {}, 'realm='), ok('basic')]],
    ['missing value after a param', 'Bearer service=x, realm=, Basic', [ok('basic')]],
    ['param without = after a param', 'Bearer realm="a" junk', []],
    ['scheme glued to a quote', 'Bearer"x", Basic', [ok('basic')]],
    ['garbage then a good challenge', '=== , Basic realm="r"', [ok('basic', { realm: 'r' })]],
    ['trailing backslash in quotes', 'Bearer realm="abc\\', []],
    ['non-string array members', [42 as unknown as string, 'Basic'], [ok('basic')]],
    ['non-string value', 7 as unknown as string, []],
  ]
  it.each(bad)('bad: %s', (_name, header, want) => {
    expect(plain(parseAuthChallenges(header))).toEqual(want)
  })

  const hostile: [string, string][] = [
    ['many quotes', '"'.repeat(200_000)],
    ['many backslashes in quotes', `Bearer realm="${'\\'.repeat(200_000)}`],
    ['many equals', `Bearer ${'='.repeat(200_000)}`],
    ['many commas and tokens', 'a, '.repeat(70_000)],
    ['many params', `Bearer ${'a=b, '.repeat(50_000)}`],
    ['long token then junk', `${'a'.repeat(200_000)} "`],
    ['spaces between tokens', `a${' '.repeat(200_000)}b`],
    ['params that never end', `Bearer ${'a '.repeat(100_000)}`],
    ['nested-looking quotes', `Bearer realm="${'\\"'.repeat(100_000)}`],
  ]
  it.each(hostile)('hostile input runs in linear time: %s', (_name, header) => {
    const start = performance.now()
    expect(() => parseAuthChallenges(header)).not.toThrow()
    expect(performance.now() - start).toBeLessThan(1000)
  })

  it('random bytes never throw', () => {
    const alphabet = 'aB=,"\\ \t\r\n;/:-+~x\u0000\u00ff'
    let seed = 42
    for (let round = 0; round < 2000; round++) {
      let s = ''
      for (let i = 0; i < 40; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff
        s += alphabet[seed % alphabet.length]
      }
      expect(Array.isArray(parseAuthChallenges(s))).toBe(true)
    }
  })
})

describe('bearerChallenge', () => {
  const parse = (header: string) => bearerChallenge(parseAuthChallenges(header))

  const good: [string, string, { realm: string; service?: string; scope?: string }][] = [
    [
      'full',
      'Bearer realm="https://auth.example.com/token?x=1",service="reg",scope="repository:a:pull"',
      { realm: 'https://auth.example.com/token?x=1', service: 'reg', scope: 'repository:a:pull' },
    ],
    [
      'http realm is allowed here',
      'Bearer realm="http://127.0.0.1:5000/token"',
      { realm: 'http://127.0.0.1:5000/token' },
    ],
    ['empty service left out', 'Bearer realm="https://a/t",service=""', { realm: 'https://a/t' }],
    ['after a basic challenge', 'Basic realm="x", Bearer realm="https://a/t"', { realm: 'https://a/t' }],
    ['uppercase scheme', 'BEARER realm="HTTPS://A.example/t"', { realm: 'https://a.example/t' }],
  ]
  it.each(good)('%s', (_name, header, want) => {
    const got = parse(header)
    expect(got).toBeDefined()
    expect({ ...got, realm: got?.realm.href }).toEqual(want)
  })

  const bad: [string, string][] = [
    ['no bearer', 'Basic realm="https://a/t"'],
    ['no realm', 'Bearer service="x"'],
    ['relative realm', 'Bearer realm="/token"'],
    ['scheme-relative realm', 'Bearer realm="//a/t"'],
    ['ftp realm', 'Bearer realm="ftp://a/t"'],
    ['file realm', 'Bearer realm="file:///etc/passwd"'],
    ['javascript realm', 'Bearer realm="javascript:alert(1)"'],
    ['https without slashes', 'Bearer realm="https:a.example/t"'],
    ['user info', 'Bearer realm="https://user:pw@a.example/t"'],
    ['leading space', 'Bearer realm=" https://a/t"'],
    ['tab inside', 'Bearer realm="https://a\t.example/t"'],
    ['backslash', 'Bearer realm="https:\\\\a.example/t"'],
    ['not a url', 'Bearer realm="https://[::1/t"'],
    ['first bearer is bad', 'Bearer realm="/t", Bearer realm="https://a/t"'],
    ['token68 bearer', 'Bearer abc=='],
  ]
  it.each(bad)('bad: %s', (_name, header) => {
    expect(parse(header)).toBeUndefined()
  })
})
