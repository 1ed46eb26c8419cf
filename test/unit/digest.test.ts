import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, test } from 'vitest'
import { digestOf, parseDigest } from '../../src/digest.js'
import { VerifyStream } from '../../src/verify-stream.js'

describe('parseDigest', () => {
  test.each([
    [`sha256:${'0'.repeat(64)}`, 'sha256'],
    [`sha512:${'f'.repeat(128)}`, 'sha512'],
  ])('accepts %s', (d, alg) => expect(parseDigest(d).algorithm).toBe(alg))

  test.each([
    '',
    'sha256',
    `sha256:${'0'.repeat(63)}`,
    `sha256:${'0'.repeat(65)}`,
    `sha256:${'A'.repeat(64)}`,
    `sha512:${'0'.repeat(64)}`,
    `sha384:${'0'.repeat(96)}`,
    `SHA256:${'0'.repeat(64)}`,
    `sha256:${'g'.repeat(64)}`,
    ` sha256:${'0'.repeat(64)}`,
  ])('rejects %j', (d) =>
    expect(() => parseDigest(d)).toThrow(expect.objectContaining({ code: 'ERR_DIGEST_INVALID' })),
  )

  test('rejects non-strings', () => {
    expect(() => parseDigest(42)).toThrow(expect.objectContaining({ code: 'ERR_DIGEST_INVALID' }))
  })
})

describe('VerifyStream', () => {
  const data = Buffer.from('hello, layer')
  const digest = digestOf(data)
  const run = (chunks: Buffer[], options: { digest: string; size?: number }) =>
    pipeline(Readable.from(chunks), new VerifyStream({ ...options, what: 'blob x' }), async (source) => {
      for await (const _ of source) {
      }
    })

  test('passes matching bytes', async () => {
    await expect(
      run([data.subarray(0, 3), data.subarray(3)], { digest, size: data.length }),
    ).resolves.toBeUndefined()
  })
  test('passes with sha512', async () => {
    await expect(run([data], { digest: digestOf(data, 'sha512') })).resolves.toBeUndefined()
  })
  test.each([
    ['one byte flipped', [Buffer.from('hello, lAyer')], data.length, 'ERR_DIGEST_MISMATCH'],
    ['short', [data.subarray(0, 5)], data.length, 'ERR_SIZE_MISMATCH'],
    ['long', [data, Buffer.from('x')], data.length, 'ERR_SIZE_MISMATCH'],
  ] as const)('%s fails', async (_name, chunks, size, code) => {
    await expect(run([...chunks], { digest, size })).rejects.toMatchObject({
      code,
      message: expect.stringMatching(/^blob x: /),
    })
  })
  test('stops at the first byte past the size', async () => {
    let pulled = 0
    const endless = new Readable({
      read() {
        pulled++
        this.push(Buffer.alloc(1024))
      },
    })
    await expect(
      pipeline(endless, new VerifyStream({ digest, size: 4096 }), async (s) => {
        for await (const _ of s) {
        }
      }),
    ).rejects.toMatchObject({ code: 'ERR_SIZE_MISMATCH' })
    expect(pulled).toBeLessThan(64)
  })
})
