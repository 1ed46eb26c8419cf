import { describe, expect, test } from 'vitest'
import { findRegistryRule, pullSources } from '../../src/config/pull-sources.js'
import { parseRegistriesConf } from '../../src/config/registries-conf.js'
import { matchPrefix, parsePrefix } from '../../src/config/registry-prefix.js'
import { isShortName } from '../../src/config/short-names.js'
import { formatReference, parseReference } from '../../src/reference.js'
import { thrown } from './thrown.js'

const D = `sha256:${'a'.repeat(64)}`
const conf = (text: string) => parseRegistriesConf(text, { what: 'registries.conf' })

describe('matchPrefix: anchored at the start, ending at a separator', () => {
  const cases: [string, string, number][] = [
    // prefix, reference (as formatReference writes it), matched length (-1: no match)
    ['example.com/foo', 'example.com/foo/bar:1', 15],
    ['example.com/foo', 'example.com/foo:1', 15],
    ['example.com/foo', `example.com/foo@${D}`, 15],
    ['example.com/foo', 'example.com/foobar:1', -1],
    ['example.com/foo', 'evil.com/example.com/foo:1', -1], // image-rs matches this (substring search)
    ['example.com/foo', 'notexample.com/foo:1', -1],
    ['example.com', 'example.com/x:1', 11],
    ['example.com', 'example.com:5000/x:1', -1], // containers/image matches this ("unintended")
    ['example.com:5000', 'example.com:5000/x:1', 16],
    ['example.com:5000', 'example.com:50001/x:1', -1],
    ['EXAMPLE.com/foo', 'example.COM/foo/x:1', 15], // host names fold case
    ['example.com/app:1.0', 'example.com/app:1.0', 19],
    ['example.com/app:1.0', `example.com/app:1.0@${D}`, 19],
    ['example.com/app:1.0', 'example.com/app:1.01', -1],
    ['example.com/app:1.0', 'example.com/app/x:1.0', -1],
    [`example.com/app@${D}`, `example.com/app@${D}`, 16 + D.length],
    ['*.example.com', 'a.example.com/x:1', 13],
    ['*.example.com', 'a.b.example.com:5000/x:1', 15],
    ['*.example.com', 'A.Example.Com/x:1', 13],
    ['*.example.com', 'x.example.com.example.com/y:1', 25], // containers/image misses this one
    ['*.example.com', 'example.com/x:1', -1], // subdomains only
    ['*.example.com', 'aexample.com/x:1', -1],
    ['*.example.com', 'evil.com/a.example.com/x:1', -1],
    ['*.example.com', 'a.example.com.evil.com/x:1', -1],
    ['[::1]:5000', '[::1]:5000/x:1', 10],
  ]
  for (const [prefix, ref, want] of cases) {
    test(`${prefix} ~ ${ref.replace(D, 'D')} → ${want}`, () => {
      const parsed = parsePrefix(prefix, 'prefix')
      if (typeof parsed === 'string') throw new Error(parsed)
      expect(matchPrefix(ref, parsed)).toBe(want)
    })
  }
})

describe('findRegistryRule: the longest prefix wins', () => {
  const config = conf(`
[[registry]]
prefix = "*.example.com"
location = "wild.local"
[[registry]]
prefix = "a.example.com"
location = "exact.local"
[[registry]]
prefix = "a.example.com/ns"
location = "ns.local"
[[registry]]
prefix = "a.example.com/ns/app:v1"
location = "tag.local/app:v1"
`)
  const cases: [string, string | undefined][] = [
    ['a.example.com/x:1', 'exact.local'], // same length as the wildcard: exact wins
    ['b.example.com/x:1', 'wild.local'],
    ['a.example.com/ns/x:1', 'ns.local'],
    ['a.example.com/ns/app:v1', 'tag.local/app:v1'],
    ['a.example.com/ns/app:v2', 'ns.local'],
    ['a.example.com/nsx/app:1', 'exact.local'],
    ['other.com/x:1', undefined],
  ]
  for (const [ref, location] of cases) {
    test(`${ref} → ${location}`, () => {
      expect(findRegistryRule(config, ref)?.rule.location).toBe(location)
    })
  }
})

describe('pullSources', () => {
  const config = conf(`
unqualified-search-registries = ["docker.io", "quay.io"]
[[registry]]
prefix = "example.com/banned"
blocked = true
[[registry]]
prefix = "example.com/foo"
location = "internal.example.com/bar"
insecure = true
[[registry.mirror]]
location = "mirror-0.local/mirror-for-foo"
[[registry.mirror]]
location = "mirror-1.local:5000/foo"
insecure = true
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "hub-mirror.local"
[[registry]]
prefix = "digests.example.com"
mirror-by-digest-only = true
[[registry.mirror]]
location = "dm.local"
[[registry]]
prefix = "modes.example.com"
[[registry.mirror]]
location = "d.local"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "t.local"
pull-from-mirror = "tag-only"
[[registry.mirror]]
location = "a.local"
[[registry]]
prefix = "to-blocked.example.com"
[[registry.mirror]]
location = "example.com/banned/mirror"
[[registry]]
prefix = "*.wild.example"
insecure = true
[[registry]]
location = "plain.local:5000"
insecure = true
[[registry]]
prefix = "uses-plain.example.com"
[[registry.mirror]]
location = "plain.local:5000/m"
`)
  const show = (ref: string, shortName = false) =>
    pullSources(parseReference(ref), config, { shortName }).map(
      (s) =>
        `${s.kind} ${formatReference(s.location)}${s.insecure ? ' insecure' : ''}${s.blocked ? ' blocked' : ''} (${formatReference(s.named)})`,
    )

  const cases: [string, string, boolean, string[]][] = [
    [
      'mirrors in order, then the remapped location; insecure per endpoint',
      'example.com/foo/image:latest',
      false,
      [
        'mirror mirror-0.local/mirror-for-foo/image:latest (example.com/foo/image:latest)',
        'mirror mirror-1.local:5000/foo/image:latest insecure (example.com/foo/image:latest)',
        'primary internal.example.com/bar/image:latest insecure (example.com/foo/image:latest)',
      ],
    ],
    ['no rule: the reference itself', 'other.com/x:1', false, ['primary other.com/x:1 (other.com/x:1)']],
    [
      'docker.io with library/',
      'docker.io/library/busybox:1',
      false,
      [
        'mirror hub-mirror.local/library/busybox:1 (docker.io/library/busybox:1)',
        'primary docker.io/library/busybox:1 (docker.io/library/busybox:1)',
      ],
    ],
    [
      'mirror-by-digest-only, tag: no mirror',
      'digests.example.com/x:1',
      false,
      ['primary digests.example.com/x:1 (digests.example.com/x:1)'],
    ],
    [
      'mirror-by-digest-only, digest: mirror first',
      `digests.example.com/x@${D}`,
      false,
      [
        `mirror dm.local/x@${D} (digests.example.com/x@${D})`,
        `primary digests.example.com/x@${D} (digests.example.com/x@${D})`,
      ],
    ],
    [
      'pull-from-mirror, tag',
      'modes.example.com/x:1',
      false,
      [
        'mirror t.local/x:1 (modes.example.com/x:1)',
        'mirror a.local/x:1 (modes.example.com/x:1)',
        'primary modes.example.com/x:1 (modes.example.com/x:1)',
      ],
    ],
    [
      'pull-from-mirror, tag and digest counts as digest',
      `modes.example.com/x:1@${D}`,
      false,
      [
        `mirror d.local/x:1@${D} (modes.example.com/x:1@${D})`,
        `mirror a.local/x:1@${D} (modes.example.com/x:1@${D})`,
        `primary modes.example.com/x:1@${D} (modes.example.com/x:1@${D})`,
      ],
    ],
    [
      'a mirror inside a blocked namespace is listed as blocked, never contacted',
      'to-blocked.example.com/x:1',
      false,
      [
        'mirror example.com/banned/mirror/x:1 blocked (to-blocked.example.com/x:1)',
        'primary to-blocked.example.com/x:1 (to-blocked.example.com/x:1)',
      ],
    ],
    [
      'a wildcard without location keeps the reference',
      'a.wild.example:8443/x:1',
      false,
      ['primary a.wild.example:8443/x:1 insecure (a.wild.example:8443/x:1)'],
    ],
    [
      'a mirror on a host marked insecure by its own rule',
      'uses-plain.example.com/x:1',
      false,
      [
        'mirror plain.local:5000/m/x:1 insecure (uses-plain.example.com/x:1)',
        'primary uses-plain.example.com/x:1 (uses-plain.example.com/x:1)',
      ],
    ],
    [
      'a short name: each search registry, each with its own rules; the candidate is the logical name',
      'busybox:1',
      true,
      [
        'mirror hub-mirror.local/library/busybox:1 (docker.io/library/busybox:1)',
        'primary docker.io/library/busybox:1 (docker.io/library/busybox:1)',
        'primary quay.io/busybox:1 (quay.io/busybox:1)',
      ],
    ],
    [
      'not a short name: Docker Hub only',
      'busybox:1',
      false,
      [
        'mirror hub-mirror.local/library/busybox:1 (docker.io/library/busybox:1)',
        'primary docker.io/library/busybox:1 (docker.io/library/busybox:1)',
      ],
    ],
  ]
  for (const [name, ref, shortName, want] of cases) {
    test(name, () => expect(show(ref, shortName)).toEqual(want))
  }

  test('blocked namespace: ERR_REGISTRY_BLOCKED naming the rule', () => {
    expect(thrown(() => show('example.com/banned/app:1'))).toMatchObject({
      code: 'ERR_REGISTRY_BLOCKED',
      message:
        'docker://example.com/banned/app:1: blocked by the registry configuration: example.com/banned/app:1 (prefix "example.com/banned")',
    })
  })
  test('the blocked prefix is anchored: example.com/banned-not is not blocked', () => {
    expect(show('example.com/banned-not/app:1')).toEqual([
      'primary example.com/banned-not/app:1 (example.com/banned-not/app:1)',
    ])
  })
  test('without a configuration: the reference itself', () => {
    expect(pullSources(parseReference('busybox'), undefined, { shortName: true })).toEqual([
      expect.objectContaining({ kind: 'primary', insecure: false, blocked: false }),
    ])
  })
})

describe('short names', () => {
  test.each([
    ['busybox', true],
    ['busybox:1', true],
    [`busybox@${D}`, true],
    ['ns/app', true],
    ['library/busybox', true],
    ['docker.io/busybox', false],
    ['localhost/app', false],
    ['localhost:5000/app', false],
    ['example.com/app', false],
    ['Upper/app', false],
    ['docker://busybox', false],
    ['oci:dir:tag', false],
    ['oci-archive:/x.tar', false],
  ])('isShortName(%s) = %s', (text, want) => expect(isShortName(text)).toBe(want))

  const resolve = (text: string, ref: string) =>
    pullSources(parseReference(ref), conf(text), { shortName: true }).map((s) => formatReference(s.location))
  test('an alias wins over the search list, with the tag kept', () => {
    expect(
      resolve(
        'unqualified-search-registries = ["quay.io"]\n[aliases]\n"app" = "registry.example.com/team/app"',
        'app:2',
      ),
    ).toEqual(['registry.example.com/team/app:2'])
  })
  test('an alias keeps a digest', () => {
    expect(resolve('[aliases]\n"app" = "registry.example.com/team/app"', `app@${D}`)).toEqual([
      `registry.example.com/team/app@${D}`,
    ])
  })
  test('no search list set: Docker Hub', () => {
    expect(resolve('', 'ns/app:1')).toEqual(['docker.io/ns/app:1'])
  })
  test('enforcing with one registry: no ambiguity', () => {
    expect(
      resolve('short-name-mode = "enforcing"\nunqualified-search-registries = ["quay.io"]', 'app'),
    ).toEqual(['quay.io/app:latest'])
  })
  test('enforcing with two registries: refused, ocipull cannot prompt', () => {
    const err = thrown(() =>
      resolve(
        'short-name-mode = "enforcing"\nunqualified-search-registries = ["quay.io", "docker.io"]',
        'app',
      ),
    )
    expect(err).toMatchObject({ code: 'ERR_REFERENCE_INVALID' })
    expect(err.message).toMatch(/short name "app" is ambiguous/)
  })
  test('an empty search list: refused', () => {
    expect(thrown(() => resolve('unqualified-search-registries = []', 'app'))).toMatchObject({
      code: 'ERR_REFERENCE_INVALID',
    })
  })
  test('every candidate blocked: ERR_REGISTRY_BLOCKED', () => {
    const text =
      'unqualified-search-registries = ["a.example.com", "b.example.com"]\n[[registry]]\nprefix = "a.example.com"\nblocked = true\n[[registry]]\nprefix = "b.example.com"\nblocked = true'
    expect(thrown(() => resolve(text, 'app'))).toMatchObject({ code: 'ERR_REGISTRY_BLOCKED' })
  })
  test('one candidate blocked: the others are still tried', () => {
    const text =
      'unqualified-search-registries = ["a.example.com", "b.example.com"]\n[[registry]]\nprefix = "a.example.com"\nblocked = true'
    expect(pullSources(parseReference('app'), conf(text), { shortName: true }).map((s) => s.blocked)).toEqual(
      [true, false],
    )
  })
})
