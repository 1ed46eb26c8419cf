import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { type Digest, parseDigest } from './digest.js'
import { OcipullError } from './errors.js'

export interface VerifyStreamOptions {
  /** The digest the bytes must have. */
  digest: Digest
  /** The exact byte count, when known (a descriptor's `size`). Reading past it fails at once. */
  size?: number
  /** Names the content in error messages, e.g. `blob sha256:ab12… of docker://host/repo`. */
  what?: string
}

/**
 * A pass-through stream that hashes and counts what flows through it. It fails with
 * ERR_SIZE_MISMATCH as soon as more than `size` bytes arrive (so a hostile server cannot make
 * us read forever), and at the end with ERR_SIZE_MISMATCH or ERR_DIGEST_MISMATCH.
 * Data is passed on before the end is reached: consumers must treat it as unverified until
 * the stream ends without error.
 */
export class VerifyStream extends Transform {
  readonly expected: Digest
  readonly expectedSize: number | undefined
  private readonly hash: Hash
  private readonly what: string
  private count = 0

  constructor(options: VerifyStreamOptions) {
    super()
    const { algorithm } = parseDigest(options.digest)
    this.expected = options.digest
    this.expectedSize = options.size
    this.what = options.what ?? `blob ${options.digest}`
    this.hash = createHash(algorithm)
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.count
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.count += chunk.length
    if (this.expectedSize !== undefined && this.count > this.expectedSize) {
      callback(
        new OcipullError(
          'ERR_SIZE_MISMATCH',
          `${this.what}: size mismatch: more than the expected ${this.expectedSize} bytes`,
        ),
      )
      return
    }
    this.hash.update(chunk)
    callback(null, chunk)
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedSize !== undefined && this.count !== this.expectedSize) {
      callback(
        new OcipullError(
          'ERR_SIZE_MISMATCH',
          `${this.what}: size mismatch: want ${this.expectedSize} bytes, got ${this.count}`,
          { retryable: true },
        ),
      )
      return
    }
    const algorithm = this.expected.slice(0, this.expected.indexOf(':'))
    const got = `${algorithm}:${this.hash.digest('hex')}`
    if (got !== this.expected) {
      callback(
        new OcipullError(
          'ERR_DIGEST_MISMATCH',
          `${this.what}: digest mismatch: want ${this.expected}, got ${got}`,
        ),
      )
      return
    }
    callback()
  }
}
