import { createHash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { type Digest, parseDigest } from './digest.js'
import { OcipullError } from './errors.js'

/**
 * What a VerifyStream hashes with. By default node:crypto on this thread; the decryption of a big
 * encrypted layer supplies one that hashes on its own thread (src/decrypt/decrypt-thread.ts), so
 * that the blob's bytes are hashed where they are decrypted. Used by one stream only.
 */
export interface StreamHash {
  /** Hashes `chunk` (or copies it away to be hashed: it may be reused after the call). A promise asks the stream to wait before it takes more bytes. */
  update(chunk: Buffer): Promise<void> | undefined
  /** The digest, lowercase hex, once every byte was given to `update`. */
  digest(): Promise<string> | string
}

/** A StreamHash with node:crypto on this thread. */
export function localHash(algorithm: string): StreamHash {
  const hash = createHash(algorithm)
  return {
    update(chunk) {
      hash.update(chunk)
      return undefined
    },
    digest: () => hash.digest('hex'),
  }
}

export interface VerifyStreamOptions {
  /** The digest the bytes must have. */
  digest: Digest
  /** The exact byte count, when known (a descriptor's `size`). Reading past it fails at once. */
  size?: number
  /** Names the content in error messages, e.g. `blob sha256:ab12… of docker://host/repo`. */
  what?: string
  /** Hashes with this instead of node:crypto on this thread; its algorithm must be the digest's. */
  hash?: StreamHash
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
  private readonly hash: StreamHash
  private readonly what: string
  private count = 0

  constructor(options: VerifyStreamOptions) {
    super()
    const { algorithm } = parseDigest(options.digest)
    this.expected = options.digest
    this.expectedSize = options.size
    this.what = options.what ?? `blob ${options.digest}`
    this.hash = options.hash ?? localHash(algorithm)
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
    const wait = this.hash.update(chunk)
    if (wait === undefined) callback(null, chunk)
    else wait.then(() => callback(null, chunk), callback)
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
    const hex = this.hash.digest()
    if (typeof hex === 'string') callback(this.verdict(hex))
    else hex.then((h) => callback(this.verdict(h)), callback)
  }

  private verdict(hex: string): OcipullError | null {
    const algorithm = this.expected.slice(0, this.expected.indexOf(':'))
    const got = `${algorithm}:${hex}`
    if (got === this.expected) return null
    return new OcipullError(
      'ERR_DIGEST_MISMATCH',
      `${this.what}: digest mismatch: want ${this.expected}, got ${got}`,
    )
  }
}
