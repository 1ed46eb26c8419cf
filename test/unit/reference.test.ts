import { describe, expect, test } from 'vitest'
import { formatReference, parseReference } from '../../src/reference.js'

const D = `sha256:${'a'.repeat(64)}`
const D512 = `sha512:${'b'.repeat(128)}`

describe('parseReference', () => {
  const cases = [
    { input: 'busybox', want: { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' } },
    { input: 'busybox:1.36', want: { registry: 'docker.io', repository: 'library/busybox', tag: '1.36' } },
    {
      input: 'library/busybox',
      want: { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' },
    },
    {
      input: 'docker.io/busybox',
      want: { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' },
    },
    {
      input: 'index.docker.io/user/app',
      want: { registry: 'docker.io', repository: 'user/app', tag: 'latest' },
    },
    { input: 'user/app:v1', want: { registry: 'docker.io', repository: 'user/app', tag: 'v1' } },
    { input: 'quay.io/org/app', want: { registry: 'quay.io', repository: 'org/app', tag: 'latest' } },
    { input: 'localhost/app', want: { registry: 'localhost', repository: 'app', tag: 'latest' } },
    { input: 'localhost:5000/app:t', want: { registry: 'localhost:5000', repository: 'app', tag: 't' } },
    {
      input: '127.0.0.1:5101/a/b/c:x_y.z-1',
      want: { registry: '127.0.0.1:5101', repository: 'a/b/c', tag: 'x_y.z-1' },
    },
    { input: '[::1]:5000/app', want: { registry: '[::1]:5000', repository: 'app', tag: 'latest' } },
    { input: `app@${D}`, want: { registry: 'docker.io', repository: 'library/app', digest: D } },
    { input: `localhost:5000/app@${D}`, want: { registry: 'localhost:5000', repository: 'app', digest: D } },
    {
      input: `quay.io/a/b:tag@${D}`,
      want: { registry: 'quay.io', repository: 'a/b', tag: 'tag', digest: D },
    },
    { input: `r.io/a@${D512}`, want: { registry: 'r.io', repository: 'a', digest: D512 } },
    { input: 'Registry/app', want: { registry: 'Registry', repository: 'app', tag: 'latest' } },
    {
      input: 'a__b/c-d---e/f.g',
      want: { registry: 'docker.io', repository: 'a__b/c-d---e/f.g', tag: 'latest' },
    },
  ]
  for (const c of cases) {
    test(c.input, () => expect(parseReference(c.input)).toEqual(c.want))
  }

  const bad = [
    '',
    'UPPER',
    'docker.io/Library/busybox',
    'app:',
    'app:-tag',
    `app:${'t'.repeat(129)}`,
    'app@sha256:xyz',
    `app@sha256:${'A'.repeat(64)}`,
    `app@md5:${'a'.repeat(32)}`,
    `app@sha256:${'a'.repeat(63)}`,
    'a//b',
    '/app',
    'app/',
    'host:99999/app',
    'host:port/app',
    '-host.io/app',
    'a..b',
    'a b',
    `docker.io/${'a'.repeat(250)}`,
    '[zz]:5000/app',
  ]
  for (const input of bad) {
    test(`rejects ${JSON.stringify(input.slice(0, 40))}`, () => {
      expect(() => parseReference(input)).toThrow(expect.objectContaining({ code: 'ERR_REFERENCE_INVALID' }))
    })
  }

  test('formats the canonical form', () => {
    expect(formatReference(parseReference('busybox'))).toBe('docker.io/library/busybox:latest')
    expect(formatReference(parseReference(`h:1/a:t@${D}`))).toBe(`h:1/a:t@${D}`)
  })

  test('names the reference in the message', () => {
    expect(() => parseReference('Bad/Name')).toThrow(
      /reference "Bad\/Name": repository name must be lowercase/,
    )
  })
})
