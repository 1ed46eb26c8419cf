import {
  createDecipheriv,
  createHash,
  createHmac,
  type Decipher,
  type Hash,
  timingSafeEqual,
} from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import type { Digest } from '../digest.js'
import { OcipullError } from '../errors.js'

/**
 * ocicrypt's AES_256_CTR_HMAC_SHA256, split in the two halves the layer pipeline needs:
 *
 * - `authenticateBlob` runs HMAC-SHA256 over every ciphertext byte as the blob is read, and at
 *   the end of the blob (after the blob's own digest verdict) compares it with the public
 *   options' `hmac`, in constant time. It sits on the blob loop rather than in the stream
 *   pipeline so that it still sees every byte when a later stage has failed and the rest of the
 *   blob is only drained: tampering is then reported as ERR_DECRYPTION_FAILED, not as the gzip
 *   or tar error it caused.
 * - `DecipherStream` decrypts (AES-256-CTR, the 16-byte nonce as the whole initial counter block,
 *   as Go's `cipher.NewCTR`) and hashes the plaintext, which must have the private options'
 *   `digest` at the end.
 *
 * Plaintext flows on before the HMAC verdict, as everything in the pipeline flows before the
 * blob's digest verdict: the caller extracts into a staging directory and commits nothing
 * unless the whole pipeline resolved.
 */
export async function* authenticateBlob(
  blob: AsyncIterable<Buffer>,
  options: { symkey: Buffer; hmac: Buffer; what: string },
): AsyncGenerator<Buffer> {
  const mac = createHmac('sha256', options.symkey)
  for await (const chunk of blob) {
    mac.update(chunk)
    yield chunk
  }
  const got = mac.digest()
  if (got.length !== options.hmac.length || !timingSafeEqual(got, options.hmac)) {
    throw new OcipullError(
      'ERR_DECRYPTION_FAILED',
      `${options.what}: HMAC mismatch: the ciphertext was altered or the options belong to another layer`,
    )
  }
}

export interface DecipherStreamOptions {
  symkey: Buffer
  nonce: Buffer
  /** The private options' digest of the plaintext blob. */
  digest: Digest
  what: string
}

/** AES-256-CTR decryption with a digest check of the plaintext; see `authenticateBlob`. */
export class DecipherStream extends Transform {
  private readonly decipher: Decipher
  private readonly hash: Hash
  private readonly expected: Digest
  private readonly what: string

  constructor(options: DecipherStreamOptions) {
    super()
    this.decipher = createDecipheriv('aes-256-ctr', options.symkey, options.nonce)
    this.expected = options.digest
    this.what = options.what
    this.hash = createHash(options.digest.slice(0, options.digest.indexOf(':')))
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const plain = this.decipher.update(chunk)
    this.hash.update(plain)
    callback(null, plain)
  }

  override _flush(callback: TransformCallback): void {
    const algorithm = this.expected.slice(0, this.expected.indexOf(':'))
    const got = `${algorithm}:${this.hash.digest('hex')}`
    if (got !== this.expected) {
      callback(
        new OcipullError(
          'ERR_DECRYPTION_FAILED',
          `${this.what}: decrypted blob digest mismatch: want ${this.expected}, got ${got}`,
        ),
      )
      return
    }
    callback()
  }
}
