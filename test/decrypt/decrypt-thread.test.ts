import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, test } from 'vitest'
import { adaptiveDecryption } from '../../src/decrypt/adaptive-decryption.js'
import type { CipherKey } from '../../src/decrypt/aes-ctr-hmac.js'
import { threadDecryption } from '../../src/decrypt/decrypt-thread.js'
import type { LayerDecryption } from '../../src/decrypt/layer-decryptor.js'
import { type Digest, digestOf } from '../../src/digest.js'
import { type StreamHash, VerifyStream } from '../../src/verify-stream.js'

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

/** Runs `blob` in `chunk`-byte pieces through a VerifyStream with the decryption's hash, then authenticate → decipher. */
async function runThrough(
  d: LayerDecryption & { blobHash: StreamHash },
  blob: Buffer,
  chunk: number,
  digest: Digest,
): Promise<Buffer> {
  const verified = countingSource(blob, chunk).stream.pipe(
    new VerifyStream({ digest, size: blob.length, hash: d.blobHash }),
  )
  const out: Buffer[] = []
  try {
    await pipeline(Readable.from(d.authenticate(verified)), d.decipher, async (s: AsyncIterable<Buffer>) => {
      for await (const c of s) out.push(c)
    })
  } finally {
    d.close()
  }
  return Buffer.concat(out)
}

describe('adaptive decryption: the calling thread first, a thread once the layer does not inflate', () => {
  const { blob, plain, key, blobDigest } = encrypt(5 * MiB + 999)
  const cases: { probe: number; chunk: number }[] = [
    { probe: 1, chunk: 64 * 1024 },
    { probe: 100_000, chunk: 64 * 1024 },
    { probe: MiB + 3, chunk: 300_001 },
    { probe: 3 * MiB, chunk: MiB },
    { probe: 5 * MiB + 999, chunk: 7 * 1024 },
  ]
  for (const { probe, chunk } of cases) {
    test(`moves after ${probe} bytes (chunks of ${chunk}): same plaintext, digests and HMAC`, async () => {
      let moved = false
      const d = adaptiveDecryption(key, {
        blobAlgorithm: 'sha256',
        what: 'adaptive',
        probeBytes: probe,
        inflateRatio: () => {
          moved = true
          return 0
        },
      })
      expect((await runThrough(d, blob, chunk, blobDigest)).equals(plain)).toBe(true)
      expect(moved).toBe(true)
    })
  }

  test('stays on the calling thread when the layer inflates well', async () => {
    const d = adaptiveDecryption(key, {
      blobAlgorithm: 'sha256',
      what: 'stay',
      probeBytes: MiB,
      inflateRatio: () => 3,
    })
    expect((await runThrough(d, blob, 64 * 1024, blobDigest)).equals(plain)).toBe(true)
  })

  const hostile: {
    name: string
    edit: (b: Buffer) => Buffer
    key?: Partial<CipherKey>
    code: string
    message: RegExp
  }[] = [
    {
      name: 'a flipped byte after the move: HMAC mismatch',
      edit: (b) => {
        const c = Buffer.from(b)
        c[4 * MiB] = (c[4 * MiB] as number) ^ 1
        return c
      },
      code: 'ERR_DECRYPTION_FAILED',
      message: /adaptive: (HMAC mismatch|decrypted blob digest mismatch)/,
    },
    {
      name: 'a flipped byte before the move (in the kept copy): HMAC mismatch',
      edit: (b) => {
        const c = Buffer.from(b)
        c[10] = (c[10] as number) ^ 1
        return c
      },
      code: 'ERR_DECRYPTION_FAILED',
      message: /adaptive: (HMAC mismatch|decrypted blob digest mismatch)/,
    },
    {
      name: 'a wrong private digest: the plaintext check fails on the thread',
      edit: (b) => b,
      key: { digest: digestOf(Buffer.from('not the plaintext')) },
      code: 'ERR_DECRYPTION_FAILED',
      message: /adaptive: decrypted blob digest mismatch/,
    },
  ]
  for (const h of hostile) {
    test(h.name, async () => {
      const tampered = h.edit(blob)
      const d = adaptiveDecryption(
        { ...key, ...h.key },
        { blobAlgorithm: 'sha256', what: 'adaptive', probeBytes: 2 * MiB, inflateRatio: () => 0 },
      )
      await expect(runThrough(d, tampered, 64 * 1024, digestOf(tampered))).rejects.toMatchObject({
        code: h.code,
        message: expect.stringMatching(h.message),
      })
    })
  }

  test('the blob digest is checked on the thread after the move', async () => {
    const d = adaptiveDecryption(key, {
      blobAlgorithm: 'sha256',
      what: 'digest',
      probeBytes: MiB,
      inflateRatio: () => 0,
    })
    await expect(runThrough(d, blob, 64 * 1024, digestOf(Buffer.from('other')))).rejects.toMatchObject({
      code: 'ERR_DIGEST_MISMATCH',
    })
  })
})
