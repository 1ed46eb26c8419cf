import { describe, expect, test } from 'vitest'
import { parseImageName } from '../../src/image-name.js'
import { matchSignedIdentity } from '../../src/policy/match-identity.js'
import { policyImage } from '../../src/policy/policy-scopes.js'
import type { SignedIdentity } from '../../src/policy/policy-types.js'

const D = `sha256:${'12'.repeat(32)}`
const E = `sha256:${'34'.repeat(32)}`
const exact: SignedIdentity = { type: 'matchExact' }
const repoDigest: SignedIdentity = { type: 'matchRepoDigestOrExact' }
const repo: SignedIdentity = { type: 'matchRepository' }
const exactRef = (dockerReference: string): SignedIdentity => ({ type: 'exactReference', dockerReference })
const exactRepo = (dockerRepository: string): SignedIdentity => ({
  type: 'exactRepository',
  dockerRepository,
})
const remap = (prefix: string, signedPrefix: string): SignedIdentity => ({
  type: 'remapIdentity',
  prefix,
  signedPrefix,
})

// [rule, image pulled as, identity in the signature, accepted?]
const table: [SignedIdentity, string, string, boolean][] = [
  [exact, 'quay.io/ns/app:v1', 'quay.io/ns/app:v1', true],
  [exact, 'quay.io/ns/app:v1', 'quay.io/ns/app:v2', false],
  [exact, `quay.io/ns/app@${D}`, 'quay.io/ns/app:v1', false],
  [exact, `quay.io/ns/app@${D}`, `quay.io/ns/app@${D}`, true],
  [exact, 'quay.io/ns/app:v1', 'quay.io/ns/app', false],
  [exact, 'busybox', 'busybox:latest', true],
  [exact, 'docker.io/library/busybox:latest', 'index.docker.io/library/busybox:latest', true],
  [repoDigest, 'quay.io/ns/app:v1', 'quay.io/ns/app:v1', true],
  [repoDigest, 'quay.io/ns/app:v1', 'quay.io/ns/app:v2', false],
  [repoDigest, 'quay.io/ns/app:v1', 'quay.io/ns/app', false],
  [repoDigest, `quay.io/ns/app@${D}`, 'quay.io/ns/app:v1', true],
  [repoDigest, `quay.io/ns/app@${D}`, `quay.io/ns/app@${E}`, true],
  [repoDigest, `quay.io/ns/app@${D}`, 'quay.io/ns/other:v1', false],
  [repoDigest, 'busybox:1', 'docker.io/library/busybox:1', true],
  [repo, 'quay.io/ns/app:v1', 'quay.io/ns/app', true],
  [repo, 'quay.io/ns/app:v1', 'quay.io/ns/app:other', true],
  [repo, 'quay.io/ns/app:v1', 'quay.io/ns/app2', false],
  [repo, 'quay.io/ns/app:v1', 'quay.io/ns', false],
  [exactRef('quay.io/ns/app:v1'), 'mirror.example/x/y:z', 'quay.io/ns/app:v1', true],
  [exactRef('quay.io/ns/app:v1'), 'mirror.example/x/y:z', 'quay.io/ns/app:v2', false],
  [exactRef('quay.io/ns/app:v1'), 'mirror.example/x/y:z', 'quay.io/ns/app', false],
  [exactRef('busybox:latest'), `other.example/b@${D}`, 'docker.io/library/busybox:latest', true],
  [exactRepo('quay.io/ns/app'), 'mirror.example/x/y:z', 'quay.io/ns/app', true],
  [exactRepo('quay.io/ns/app'), 'mirror.example/x/y:z', 'quay.io/ns/app:any', true],
  [exactRepo('quay.io/ns/app'), 'mirror.example/x/y:z', 'quay.io/ns/app2', false],
  [
    remap('127.0.0.1:5000/mirror', '127.0.0.1:5000/ns'),
    '127.0.0.1:5000/mirror/app:v1',
    '127.0.0.1:5000/ns/app:v1',
    true,
  ],
  [
    remap('127.0.0.1:5000/mirror', '127.0.0.1:5000/ns'),
    '127.0.0.1:5000/mirror/app:v1',
    '127.0.0.1:5000/mirror/app:v1',
    false,
  ],
  [
    remap('127.0.0.1:5000/mirror', '127.0.0.1:5000/ns'),
    '127.0.0.1:5000/mirrorx/app:v1',
    '127.0.0.1:5000/ns/app:v1',
    false,
  ],
  [
    remap('127.0.0.1:5000/mirror', '127.0.0.1:5000/ns'),
    '127.0.0.1:5000/mirrorx/app:v1',
    '127.0.0.1:5000/mirrorx/app:v1',
    true,
  ],
  [remap('mirror.example', 'quay.io'), `mirror.example/ns/app@${D}`, 'quay.io/ns/app:v1', true],
  [remap('mirror.example', 'docker.io'), 'mirror.example/busybox:1', 'docker.io/library/busybox:1', false],
  [remap('mirror.example', 'docker.io'), 'mirror.example/library/busybox:1', 'busybox:1', true],
  [repoDigest, 'quay.io/ns/app:v1', 'NOT A REFERENCE', false],
  [repo, 'quay.io/ns/app:v1', '', false],
]

describe('matchSignedIdentity truth table (containers/image semantics)', () => {
  test.each(table)('%j: image %s, signed %s → %s', (rule, image, signed, want) => {
    const docker = policyImage(parseImageName(image)).docker
    expect(matchSignedIdentity(rule, docker, signed)).toBe(want)
  })

  test('transports without a Docker reference match only exactReference and exactRepository', () => {
    for (const rule of [exact, repoDigest, repo, remap('quay.io', 'quay.io')]) {
      expect(matchSignedIdentity(rule, undefined, 'quay.io/ns/app:v1')).toBe(false)
    }
    expect(matchSignedIdentity(exactRef('quay.io/ns/app:v1'), undefined, 'quay.io/ns/app:v1')).toBe(true)
    expect(matchSignedIdentity(exactRepo('quay.io/ns/app'), undefined, 'quay.io/ns/app:v1')).toBe(true)
  })
})
