/**
 * The other engine the decryption benchmark measures: AES-256-CTR on libuv's thread pool with
 * @ronomon/crypto-async, instead of node:crypto on the main thread (src/decrypt/aes-ctr-hmac.ts).
 * Input is gathered into blocks of `blockSize` bytes (a multiple of 16, so each block starts on a
 * counter boundary: counter = nonce + offset / 16, big-endian over the whole 128 bits, as Go's
 * cipher.NewCTR), up to two blocks are in flight, and the plaintext is hashed on the main thread
 * for the private options' digest. The HMAC stays on the main thread in both engines:
 * crypto-async has no incremental HMAC.
 */
import { createHash, type Hash } from 'node:crypto'
import { createRequire } from 'node:module'
import { Transform, type TransformCallback } from 'node:stream'
import type { CipherKey } from '../src/decrypt/aes-ctr-hmac.js'
import { OcipullError } from '../src/errors.js'

interface CryptoAsync {
  cipher(
    algorithm: string,
    encrypt: 0 | 1,
    key: Buffer,
    keyOffset: number,
    keySize: number,
    iv: Buffer,
    ivOffset: number,
    ivSize: number,
    source: Buffer,
    sourceOffset: number,
    sourceSize: number,
    target: Buffer,
    targetOffset: number,
    end: (error: Error | undefined, targetSize: number) => void,
  ): void
}

const cryptoAsync = createRequire(import.meta.url)('@ronomon/crypto-async') as CryptoAsync

export class ThreadpoolDecipherStream extends Transform {
  private readonly key: Buffer
  private readonly nonce: bigint
  private readonly hash: Hash
  private readonly expected: string
  private readonly what: string
  private readonly blockSize: number
  private readonly maxInFlight: number
  private pending: Buffer[] = []
  private pendingLength = 0
  private offset = 0
  private inFlight = 0
  /** Plaintext is pushed in order: each block's push is chained after the previous one's. */
  private queue: Promise<void> = Promise.resolve()

  constructor(options: Omit<CipherKey, 'hmac'> & { what: string; blockSize?: number; maxInFlight?: number }) {
    const blockSize = options.blockSize ?? 512 * 1024
    super({ writableHighWaterMark: 2 * blockSize, readableHighWaterMark: 2 * blockSize })
    if (blockSize % 16 !== 0) throw new TypeError('blockSize must be a multiple of 16')
    this.key = options.symkey
    this.nonce = BigInt(`0x${options.nonce.toString('hex')}`)
    this.expected = options.digest
    this.what = options.what
    this.blockSize = blockSize
    this.maxInFlight = options.maxInFlight ?? 2
    this.hash = createHash(options.digest.slice(0, options.digest.indexOf(':')))
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending.push(chunk)
    this.pendingLength += chunk.length
    if (this.pendingLength < this.blockSize) {
      callback()
      return
    }
    const all = Buffer.concat(this.pending, this.pendingLength)
    const usable = all.length - (all.length % 16)
    const rest = all.subarray(usable)
    this.pending = rest.length > 0 ? [rest] : []
    this.pendingLength = rest.length
    this.dispatch(all.subarray(0, usable))
    if (this.inFlight < this.maxInFlight) callback()
    else this.queue.then(() => callback(), callback)
  }

  override _flush(callback: TransformCallback): void {
    if (this.pendingLength > 0) this.dispatch(Buffer.concat(this.pending, this.pendingLength))
    this.queue.then(() => {
      const algorithm = this.expected.slice(0, this.expected.indexOf(':'))
      const got = `${algorithm}:${this.hash.digest('hex')}`
      if (got !== this.expected) {
        callback(new OcipullError('ERR_DECRYPTION_FAILED', `${this.what}: decrypted blob digest mismatch`))
      } else callback()
    }, callback)
  }

  private dispatch(block: Buffer): void {
    const counter = (this.nonce + BigInt(this.offset / 16)) & ((1n << 128n) - 1n)
    const iv = Buffer.from(counter.toString(16).padStart(32, '0'), 'hex')
    this.offset += block.length
    this.inFlight++
    const target = Buffer.allocUnsafe(block.length)
    const done = new Promise<Buffer>((resolve, reject) =>
      cryptoAsync.cipher(
        'aes-256-ctr',
        0,
        this.key,
        0,
        32,
        iv,
        0,
        16,
        block,
        0,
        block.length,
        target,
        0,
        (err) => (err ? reject(err) : resolve(target)),
      ),
    )
    this.queue = this.queue
      .then(() => done)
      .then((plain) => {
        this.inFlight--
        this.hash.update(plain)
        this.push(plain)
      })
    this.queue.catch(() => {}) // reported by _transform or _flush when they wait on it
  }
}
