import { describe, expect, test } from 'vitest'
import { formatImageName, parseImageName } from '../../src/image-name.js'

const D = `sha256:${'c'.repeat(64)}`

describe('parseImageName', () => {
  test.each([
    [
      'busybox',
      {
        transport: 'docker',
        reference: { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' },
      },
    ],
    [
      'docker://localhost:5000/a:b',
      { transport: 'docker', reference: { registry: 'localhost:5000', repository: 'a', tag: 'b' } },
    ],
    [
      'localhost:5000/a',
      { transport: 'docker', reference: { registry: 'localhost:5000', repository: 'a', tag: 'latest' } },
    ],
    ['oci:fixtures/layouts/busybox', { transport: 'oci', path: 'fixtures/layouts/busybox' }],
    ['oci:/abs/dir:latest', { transport: 'oci', path: '/abs/dir', tag: 'latest' }],
    [`oci:dir@${D}`, { transport: 'oci', path: 'dir', digest: D }],
    ['oci-archive:img.tar', { transport: 'oci-archive', path: 'img.tar' }],
    ['oci-archive:img.tar:v1', { transport: 'oci-archive', path: 'img.tar', tag: 'v1' }],
    ['docker-archive:img.tar', { transport: 'docker-archive', path: 'img.tar' }],
    [
      'docker-archive:img.tar:busybox:latest',
      { transport: 'docker-archive', path: 'img.tar', tag: 'busybox:latest' },
    ],
  ])('%s', (input, want) => {
    expect(parseImageName(input)).toEqual(want)
  })

  test.each([
    'oci:',
    'oci::tag',
    'oci:dir:',
    'oci:dir@sha256:zz',
    'dir:/tmp/x',
    'containers-storage:x',
    'docker://',
  ])('rejects %j', (input) =>
    expect(() => parseImageName(input)).toThrow(expect.objectContaining({ code: 'ERR_REFERENCE_INVALID' })),
  )

  test.each([
    'oci:dir:tag',
    `oci-archive:f.tar@${D}`,
    'docker-archive:f.tar:a:b',
    'docker://docker.io/library/a:latest',
  ])('round-trips %s', (input) => expect(formatImageName(parseImageName(input))).toBe(input))
})
