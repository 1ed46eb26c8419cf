import { describe, expect, test } from 'vitest'
import type { Descriptor } from '../../src/manifest.js'
import { formatPlatform, matchPlatform, normalizePlatform, parsePlatform } from '../../src/platform.js'
import { chooseFromIndex } from '../../src/resolve-image.js'

const entry = (platform: string, n: number): Descriptor => {
  const [os, architecture, variant] = platform.split('/') as [string, string, string | undefined]
  return {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
    size: 1,
    platform: variant ? { os, architecture, variant } : { os, architecture },
  }
}

describe('normalizePlatform', () => {
  test.each([
    ['linux/x86_64', 'linux/amd64'],
    ['linux/aarch64', 'linux/arm64/v8'],
    ['linux/arm64', 'linux/arm64/v8'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/armel', 'linux/arm/v6'],
    ['linux/arm/7', 'linux/arm/v7'],
    ['Linux/AMD64', 'linux/amd64'],
    ['linux/i386', 'linux/386'],
  ])('%s → %s', (input, want) => expect(formatPlatform(parsePlatform(input))).toBe(want))

  test.each(['linux', 'linux/', 'a/b/c/d', 'linux/amd 64', ''])('rejects %j', (input) => {
    expect(() => parsePlatform(input)).toThrow(expect.objectContaining({ code: 'ERR_PLATFORM_INVALID' }))
  })

  test('amd64 v1 is plain amd64', () => {
    expect(normalizePlatform({ os: 'linux', architecture: 'amd64', variant: 'v1' })).toEqual({
      os: 'linux',
      architecture: 'amd64',
    })
  })
})

describe('matchPlatform', () => {
  const multi = [
    entry('linux/amd64', 1),
    entry('linux/arm64/v8', 2),
    entry('linux/arm/v7', 3),
    entry('linux/arm/v6', 4),
  ]
  const cases: [string, Descriptor[], string, number | undefined][] = [
    ['exact amd64', multi, 'linux/amd64', 1],
    ['arm64 defaults to v8', multi, 'linux/arm64', 2],
    ['aarch64 alias', multi, 'linux/aarch64', 2],
    ['arm/v7 exact', multi, 'linux/arm/v7', 3],
    ['arm defaults to v7', multi, 'linux/arm', 3],
    ['arm/v6 exact', multi, 'linux/arm/v6', 4],
    ['arm/v7 falls back to v6', [entry('linux/arm/v6', 4), entry('linux/arm/v5', 5)], 'linux/arm/v7', 4],
    ['arm/v7 falls back to v5', [entry('linux/arm/v5', 5)], 'linux/arm/v7', 5],
    ['arm/v6 never takes v7', [entry('linux/arm/v7', 3)], 'linux/arm/v6', undefined],
    ['arm64 entry without variant', [entry('linux/arm64', 2)], 'linux/arm64/v8', 2],
    ['arm entry without variant is v7', [entry('linux/arm', 3)], 'linux/arm/v7', 3],
    [
      'prefers exact variant over ladder',
      [entry('linux/arm/v5', 5), entry('linux/arm/v7', 3)],
      'linux/arm/v7',
      3,
    ],
    ['os must match', [entry('windows/amd64', 1)], 'linux/amd64', undefined],
    ['first of equals wins', [entry('linux/amd64', 1), entry('linux/amd64', 6)], 'linux/amd64', 1],
    ['amd64 accepts a variant entry', [entry('linux/amd64/v3', 7)], 'linux/amd64', 7],
    ['amd64 prefers no variant', [entry('linux/amd64/v3', 7), entry('linux/amd64', 1)], 'linux/amd64', 1],
    [
      'unknown/unknown attestation skipped',
      [entry('unknown/unknown', 8), entry('linux/amd64', 1)],
      'linux/amd64',
      1,
    ],
  ]
  test.each(cases)('%s', (_name, manifests, wanted, want) => {
    const got = matchPlatform(manifests, parsePlatform(wanted))
    expect(got?.digest).toBe(
      want === undefined ? undefined : manifests.find((m) => m.digest.startsWith(`sha256:${want}`))?.digest,
    )
  })
})

describe('chooseFromIndex', () => {
  test('lists what is available when nothing matches', () => {
    const manifests = [entry('linux/amd64', 1), entry('linux/arm/v7', 3)]
    expect(() => chooseFromIndex(manifests, parsePlatform('linux/s390x'), 'oci:x')).toThrow(
      expect.objectContaining({
        code: 'ERR_PLATFORM_NOT_FOUND',
        message: 'oci:x: no manifest for platform linux/s390x; available: linux/amd64, linux/arm/v7',
      }),
    )
  })
  test('takes a lone entry without a platform', () => {
    const lone = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${'9'.repeat(64)}`,
      size: 1,
    }
    expect(chooseFromIndex([lone], parsePlatform('linux/arm64'), 'x')).toBe(lone)
  })
})
