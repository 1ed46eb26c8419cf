import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, test } from 'vitest'
import type { CipherKey } from '../../src/decrypt/aes-ctr-hmac.js'
import { threadDecryption } from '../../src/decrypt/decrypt-thread.js'
import { type Digest, digestOf } from '../../src/digest.js'
import { VerifyStream } from '../../src/verify-stream.js'

/**
 * The decryption thread's own promises: bounded read-ahead, the drain after a later stage failed,
 * and close() in the middle. Its results (plaintext, HMAC, digests, errors) are checked against
 * the shared vector and skopeo's images in vectors.test.ts, skopeo-encrypted.test.ts and
 * hostile-layers.test.ts, with both engines.
 */

const MiB = 1 << 20

/** An encrypted blob made here with node:crypto: ciphertext, its key, and the plaintext. */
function encrypt(size: number): { blob: Buffer; plain: Buffer; key: CipherKey; blobDigest: Digest } {
  const plain = randomBytes(size)
  const symkey = randomBytes(32)
  const nonce = randomBytes(16)
  const c = createCipheriv('aes-256-ctr', symkey, nonce)
  const blob = Buffer.concat([c.update(plain), c.final()])
  const hmac = createHmac('sha256', symkey).update(blob).digest()
  const digest = `sha256:${createHash('sha256').update(plain).digest('hex')}` as Digest
  return { blob, plain, key: { symkey, nonce, hmac, digest }, blobDigest: digestOf(blob) }
}

/** A source of `blob` in `chunk`-byte pieces that counts what it has handed out. */
function countingSource(blob: Buffer, chunk: number): { stream: Readable; read: () => number } {
  let offset = 0
  const stream = new Readable({
    read() {
      if (offset >= blob.length) {
        this.push(null)
        return
      }
      const piece = blob.subarray(offset, offset + chunk)
      offset += piece.length
      this.push(piece)
    },
  })
  return { stream, read: () => offset }
}

describe('decryption thread', () => {
  test('read-ahead is bounded while the consumer is slow; the plaintext arrives whole and in order', async () => {
    const { blob, plain, key, blobDigest } = encrypt(40 * MiB + 12345)
    const d = threadDecryption(key, { blobAlgorithm: 'sha256', what: 'slow' })
    const source = countingSource(blob, 256 * 1024)
    const verified = source.stream.pipe(
      new VerifyStream({ digest: blobDigest, size: blob.length, hash: d.blobHash }),
    )
    const out: Buffer[] = []
    let consumed = 0
    let maxAhead = 0
    try {
      await pipeline(
        Readable.from(d.authenticate(verified)),
        d.decipher,
        async (s: AsyncIterable<Buffer>) => {
          for await (const c of s) {
            out.push(c)
            consumed += c.length
            maxAhead = Math.max(maxAhead, source.read() - consumed)
            await sleep(3)
          }
        },
      )
    } finally {
      d.close()
    }
    expect(Buffer.concat(out).equals(plain)).toBe(true)
    // 4 batches with the thread or waiting, one being filled, and the streams' own buffers: far
    // below the 40 MiB an unbounded feed would read ahead.
    expect(maxAhead).toBeLessThan(10 * MiB)
    expect(maxAhead).toBeGreaterThan(MiB)
  })

  test('after a later stage fails, the blob is still hashed and HMAC-checked to its end', async () => {
    const { blob, key, blobDigest } = encrypt(6 * MiB + 7)
    const d = threadDecryption(key, { blobAlgorithm: 'sha256', what: 'drain' })
    const verified = countingSource(blob, 64 * 1024).stream.pipe(
      new VerifyStream({ digest: blobDigest, size: blob.length, hash: d.blobHash }),
    )
    d.decipher.on('error', () => {})
    let seen = 0
    try {
      for await (const chunk of d.authenticate(verified)) {
        seen += chunk.length
        // The pipeline below failed (a gzip or tar error): the decryption stage is torn down,
        // the blob is only drained, as applyLayer does.
        if (seen > MiB && !d.decipher.destroyed) d.decipher.destroy(new Error('tar failed'))
      }
    } finally {
      d.close()
    }
    expect(seen).toBe(blob.length)
  })

  test('after a later stage fails, a tampered blob is still reported as an HMAC mismatch', async () => {
    const { blob, key } = encrypt(3 * MiB)
    blob[2 * MiB] = (blob[2 * MiB] as number) ^ 1
    const d = threadDecryption(key, { blobAlgorithm: 'sha256', what: 'drain' })
    const verified = Readable.from([blob.subarray(0, MiB), blob.subarray(MiB)]).pipe(
      new VerifyStream({ digest: digestOf(blob), size: blob.length, hash: d.blobHash }),
    )
    d.decipher.on('error', () => {})
    d.decipher.destroy(new Error('gzip failed'))
    const drain = async () => {
      for await (const _ of d.authenticate(verified));
    }
    await expect(drain().finally(() => d.close())).rejects.toMatchObject({
      code: 'ERR_DECRYPTION_FAILED',
      message: 'drain: HMAC mismatch: the ciphertext was altered or the options belong to another layer',
    })
  })

  test('close() in the middle: what waits on the thread fails with ERR_ABORTED instead of hanging', async () => {
    const { blob, key, blobDigest } = encrypt(16 * MiB)
    const d = threadDecryption(key, { blobAlgorithm: 'sha256', what: 'closed' })
    const verified = countingSource(blob, MiB).stream.pipe(
      new VerifyStream({ digest: blobDigest, size: blob.length, hash: d.blobHash }),
    )
    // Nobody reads the plaintext: the feed stops after a few batches, waiting for a slot.
    d.decipher.on('error', () => {})
    const reading = (async () => {
      for await (const chunk of d.authenticate(verified)) d.decipher.write(chunk)
    })()
    await sleep(200)
    d.close()
    await expect(reading).rejects.toMatchObject({ code: 'ERR_ABORTED' })
  })
})
