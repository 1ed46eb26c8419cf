import { describe, expect, test } from 'vitest'
import { parseRegistriesConf, type RegistriesConfig } from '../../src/config/registries-conf.js'
import { thrown } from './thrown.js'

/** registries.conf v2 parsing: the containers-registries.conf(5) shapes, and what must be refused. */

const parse = (text: string, options: { strict?: boolean } = {}) => {
  const warnings: string[] = []
  const config = parseRegistriesConf(text, {
    what: 'registries.conf',
    onWarning: (m) => warnings.push(m),
    ...options,
  })
  return { config, warnings }
}

const rule = (fields: Partial<RegistriesConfig['registries'][number]> & { prefix: string }) => ({
  location: fields.prefix,
  insecure: false,
  blocked: false,
  mirrorByDigestOnly: false,
  mirrors: [],
  ...fields,
})

describe('parseRegistriesConf: good documents', () => {
  const cases: [string, string, Partial<RegistriesConfig>][] = [
    ['empty file', '', { registries: [] }],
    [
      'the man page example',
      `unqualified-search-registries = ["example.com"]
[[registry]]
prefix = "example.com/foo"
insecure = false
blocked = false
location = "internal-registry-for-example.com/bar"
[[registry.mirror]]
location = "example-mirror-0.local/mirror-for-foo"
[[registry.mirror]]
location = "example-mirror-1.local/mirrors/foo"
insecure = true`,
      {
        unqualifiedSearchRegistries: ['example.com'],
        registries: [
          rule({
            prefix: 'example.com/foo',
            location: 'internal-registry-for-example.com/bar',
            mirrors: [
              { location: 'example-mirror-0.local/mirror-for-foo', insecure: false },
              { location: 'example-mirror-1.local/mirrors/foo', insecure: true },
            ],
          }),
        ],
      },
    ],
    [
      'prefix defaults to location; trailing slashes trimmed',
      '[[registry]]\nlocation = "registry.example.com:5000/ns/"\ninsecure = true',
      { registries: [rule({ prefix: 'registry.example.com:5000/ns', insecure: true })] },
    ],
    [
      'prefix without location keeps references as they are (image-rs)',
      '[[registry]]\nprefix = "blocked.example.com"\nblocked = true',
      { registries: [rule({ prefix: 'blocked.example.com', blocked: true })] },
    ],
    [
      'wildcard prefix without location',
      '[[registry]]\nprefix = "*.example.com"\ninsecure = true',
      { registries: [rule({ prefix: '*.example.com', location: '', insecure: true })] },
    ],
    [
      'pull-from-mirror per mirror',
      `[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "a.example.com"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "b.example.com"
pull-from-mirror = "tag-only"
[[registry.mirror]]
location = "c.example.com"
pull-from-mirror = "all"`,
      {
        registries: [
          rule({
            prefix: 'docker.io',
            mirrors: [
              { location: 'a.example.com', insecure: false, pullFromMirror: 'digest-only' },
              { location: 'b.example.com', insecure: false, pullFromMirror: 'tag-only' },
              { location: 'c.example.com', insecure: false, pullFromMirror: 'all' },
            ],
          }),
        ],
      },
    ],
    [
      'mirror-by-digest-only',
      '[[registry]]\nlocation = "quay.io"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m.local:5000"',
      {
        registries: [
          rule({
            prefix: 'quay.io',
            mirrorByDigestOnly: true,
            mirrors: [{ location: 'm.local:5000', insecure: false }],
          }),
        ],
      },
    ],
    [
      'prefix and location with a tag',
      '[[registry]]\nprefix = "example.com/app:1.0"\nlocation = "mirror.example.com/app:1.0-fixed"',
      { registries: [rule({ prefix: 'example.com/app:1.0', location: 'mirror.example.com/app:1.0-fixed' })] },
    ],
    [
      'IPv6 and localhost hosts',
      '[[registry]]\nlocation = "[::1]:5000"\n[[registry]]\nlocation = "localhost/ns"',
      { registries: [rule({ prefix: '[::1]:5000' }), rule({ prefix: 'localhost/ns' })] },
    ],
    [
      'aliases and short-name-mode',
      'short-name-mode = "enforcing"\n[aliases]\n"busybox" = "docker.io/library/busybox"\n"ns/app" = "quay.io/ns/app"\n"gone" = ""',
      {
        shortNameMode: 'enforcing',
        aliases: { busybox: 'docker.io/library/busybox', 'ns/app': 'quay.io/ns/app' },
      },
    ],
  ]
  for (const [name, text, want] of cases) {
    test(name, () => {
      const { config, warnings } = parse(text)
      expect(warnings).toEqual([])
      expect({ ...config, aliases: { ...config.aliases } }).toMatchObject({
        aliases: {},
        registries: [],
        ...want,
      })
    })
  }

  test('a repeated prefix: the first table wins, with a warning', () => {
    const { config, warnings } = parse(
      '[[registry]]\nprefix = "a.example.com"\nlocation = "one.example.com"\n[[registry]]\nprefix = "a.example.com"\nlocation = "two.example.com"',
    )
    expect(config.registries.map((r) => r.location)).toEqual(['one.example.com'])
    expect(warnings).toEqual([
      'registries.conf: registry[1]: prefix "a.example.com" is repeated; the first table wins',
    ])
  })
})

describe('parseRegistriesConf: unknown keys, as containers/image does (ignored), with warnings', () => {
  const text = `unknown-top = 1
credential-helpers = ["pass"]
[[registry]]
location = "a.example.com"
block = true
[[registry.mirror]]
location = "m.example.com"
mirror-by-digest-only = true`
  test('lenient: ignored, each reported', () => {
    const { config, warnings } = parse(text)
    // `block` is a typo for `blocked`: not acted on, and said so.
    expect(config.registries[0]?.blocked).toBe(false)
    expect(warnings).toEqual([
      'registries.conf: unknown-top: unknown key, ignored',
      'registries.conf: credential-helpers: not supported (auth files and their credHelpers are used); ignored',
      'registries.conf: registry[0].block: unknown key, ignored',
      'registries.conf: registry[0].mirror[0].mirror-by-digest-only: unknown key, ignored',
    ])
  })
  test('strict: the first one is an error', () => {
    expect(thrown(() => parse(text, { strict: true }))).toMatchObject({
      code: 'ERR_CONFIG_FILE_INVALID',
      message: 'registries.conf: unknown-top: unknown key',
    })
  })
})

describe('parseRegistriesConf: hostile and wrong documents', () => {
  const bad: [string, string, RegExp][] = [
    ['bad TOML', '[[registry]\nlocation = "x"', /^registries\.conf: line 1, column \d+: /],
    ['unterminated string', 'unqualified-search-registries = ["a.com', /^registries\.conf: line 1/],
    ['__proto__ key', '[[registry]]\n__proto__ = { blocked = true }', /unsafe property/],
    ['constructor key', '[constructor]\nx = 1', /unsafe property/],
    ['deep nesting', `x = ${'['.repeat(40)}${']'.repeat(40)}`, /nested/],
    ['duplicate key', '[[registry]]\nlocation = "a.com"\nlocation = "b.com"', /line 3/],
    ['v1 format', '[registries.search]\nregistries = ["a.com"]', /registries: the version 1 format/],
    [
      'registry as a table',
      '[registry]\nlocation = "a.com"',
      /registry: want an array of tables, got a table/,
    ],
    [
      'insecure as a string',
      '[[registry]]\nlocation = "a.com"\ninsecure = "true"',
      /registry\[0\]\.insecure: want true or false, got a string/,
    ],
    [
      'location as a number',
      '[[registry]]\nlocation = 5000',
      /registry\[0\]\.location: want a string, got an integer/,
    ],
    [
      'no prefix, no location',
      '[[registry]]\ninsecure = true',
      /registry\[0\]: needs a prefix or a location/,
    ],
    ['URI scheme in location', '[[registry]]\nlocation = "https://a.com"', /URI schemes are not supported/],
    [
      'URI scheme in prefix',
      '[[registry]]\nprefix = "http://a.com"\nlocation = "b.com"',
      /registry\[0\]\.prefix: URI schemes/,
    ],
    ['uppercase path', '[[registry]]\nlocation = "a.com/Foo"', /lowercase components/],
    ['dot-dot path', '[[registry]]\nlocation = "a.com/../b"', /lowercase components/],
    [
      'host without a dot',
      '[[registry]]\nprefix = "a.com"\nlocation = "myregistry/ns"',
      /is not a registry host/,
    ],
    ['index.docker.io', '[[registry]]\nlocation = "index.docker.io"', /write docker\.io/],
    ['bad port', '[[registry]]\nlocation = "a.com:99999"', /not a valid host/],
    ['white space', '[[registry]]\nlocation = "a.com /x"', /white space/],
    ['wildcard with a port', '[[registry]]\nprefix = "*.a.com:5000"', /without port, path, tag or digest/],
    ['wildcard with a path', '[[registry]]\nprefix = "*.a.com/ns"', /without port, path/],
    ['wildcard in the middle', '[[registry]]\nprefix = "a.*.com"\nlocation = "b.com"', /only as a leading/],
    ['wildcard location', '[[registry]]\nprefix = "a.com"\nlocation = "*.b.com"', /cannot be a wildcard/],
    ['bare star', '[[registry]]\nprefix = "*."', /not a valid \*\.domain/],
    ['digest on a host', '[[registry]]\nlocation = "a.com@sha256:abc"', /needs a repository/],
    ['bad digest', '[[registry]]\nprefix = "a.com/x@sha256:zz"\nlocation = "b.com/x"', /not a valid digest/],
    ['bad tag', '[[registry]]\nprefix = "a.com/x:-bad"\nlocation = "b.com/x"', /not a valid tag/],
    [
      'location names a tag, prefix does not',
      '[[registry]]\nprefix = "a.com/x"\nlocation = "b.com/x:1"',
      /registry\[0\]\.location: may name a tag or digest only when the prefix names one/,
    ],
    [
      'mirror names a tag, prefix does not',
      '[[registry]]\nprefix = "a.com/x"\n[[registry.mirror]]\nlocation = "m.com/x:1"',
      /mirror\[0\]\.location: may name a tag/,
    ],
    [
      'mirror without location',
      '[[registry]]\nlocation = "a.com"\n[[registry.mirror]]\ninsecure = true',
      /mirror\[0\]\.location: missing/,
    ],
    [
      'pull-from-mirror on the registry',
      '[[registry]]\nlocation = "a.com"\npull-from-mirror = "all"',
      /registry\[0\]\.pull-from-mirror: allowed on \[\[registry\.mirror\]\] tables only/,
    ],
    [
      'pull-from-mirror with mirror-by-digest-only',
      '[[registry]]\nlocation = "a.com"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m.com"\npull-from-mirror = "tag-only"',
      /cannot be set when the registry sets mirror-by-digest-only/,
    ],
    [
      'unknown pull-from-mirror',
      '[[registry]]\nlocation = "a.com"\n[[registry.mirror]]\nlocation = "m.com"\npull-from-mirror = "sometimes"',
      /want all, digest-only or tag-only/,
    ],
    [
      'conflicting insecure for one location',
      '[[registry]]\nprefix = "a.com/x"\nlocation = "b.com"\n[[registry]]\nprefix = "a.com/y"\nlocation = "b.com"\ninsecure = true',
      /location "b\.com" is defined more than once with conflicting insecure/,
    ],
    [
      'conflicting blocked for one location',
      '[[registry]]\nprefix = "a.com/x"\nlocation = "b.com"\nblocked = true\n[[registry]]\nprefix = "a.com/y"\nlocation = "b.com"',
      /conflicting blocked/,
    ],
    [
      'search entry with a path',
      'unqualified-search-registries = ["a.com/ns"]',
      /unqualified-search-registries\[0\]: want host\[:port\]/,
    ],
    [
      'search entry not a host',
      'unqualified-search-registries = ["not a host"]',
      /unqualified-search-registries\[0\]/,
    ],
    [
      'search list not an array',
      'unqualified-search-registries = "a.com"',
      /want an array of strings, got a string/,
    ],
    ['short-name-mode', 'short-name-mode = "prompt"', /want enforcing, permissive or disabled/],
    [
      'alias with a registry',
      '[aliases]\n"a.com/x" = "b.com/x"',
      /aliases\."a\.com\/x": the alias name must not name a registry/,
    ],
    ['alias with a tag', '[aliases]\n"x:1" = "b.com/x"', /must not name a tag or digest/],
    ['alias target with a tag', '[aliases]\n"x" = "b.com/x:1"', /fully qualified name without tag or digest/],
    ['alias target without a path', '[aliases]\n"x" = "b.com"', /fully qualified name/],
    ['alias target short', '[aliases]\n"x" = "library/x"', /not a registry host/],
    ['alias target not a string', '[aliases]\nx = 1', /want a string/],
  ]
  for (const [name, text, want] of bad) {
    test(name, () => {
      const err = thrown(() => parse(text))
      expect(err).toMatchObject({ code: 'ERR_CONFIG_FILE_INVALID' })
      expect(err.message).toMatch(/^registries\.conf: /)
      expect(err.message).toMatch(want)
    })
  }

  test('larger than 1 MiB is refused before parsing', () => {
    const text = `# ${'x'.repeat(1024 * 1024)}\n`
    expect(thrown(() => parse(text))).toMatchObject({
      code: 'ERR_CONFIG_FILE_INVALID',
      message: 'registries.conf: larger than 1048576 bytes',
    })
  })

  test('invalid UTF-8 is refused', () => {
    const bytes = Buffer.from('[[registry]]\nlocation = "a.com\xff"', 'latin1')
    expect(thrown(() => parseRegistriesConf(bytes, { what: 'registries.conf' }))).toMatchObject({
      code: 'ERR_CONFIG_FILE_INVALID',
      message: 'registries.conf: not valid UTF-8',
    })
  })

  test('a syntax error does not quote the document (it may hold secrets)', () => {
    expect(thrown(() => parse('password = "hunter2" trailing')).message).not.toContain('hunter2')
  })
})
