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
import type { LayerDecryption } from './layer-decryptor.js'

/** What AES_256_CTR_HMAC_SHA256 needs of an unwrapped layer key. Holds secrets: never log it. */
export interface CipherKey {
  symkey: Buffer
  /** The 16-byte CTR nonce, the whole initial counter block (as Go's `cipher.NewCTR`). */
  nonce: Buffer
  /** The public options' HMAC-SHA256 of the ciphertext. */
  hmac: Buffer
  /** The private options' digest of the plaintext blob. */
  digest: Digest
}

/**
 * ocicrypt's AES_256_CTR_HMAC_SHA256 on this thread, in the two halves the layer pipeline needs
 * (decrypt-thread.ts does the same on a thread of its own, for big layers):
 *
 * - `authenticate` runs HMAC-SHA256 over every ciphertext byte as the blob is read, and at the end
 *   of the blob (after the blob's own digest verdict) compares it with the public options'
 *   `hmac`, in constant time. It sits on the blob loop rather than in the stream pipeline so that
 *   it still sees every byte when a later stage has failed and the rest of the blob is only
 *   drained: tampering is then reported as ERR_DECRYPTION_FAILED, not as the gzip or tar error it
 *   caused.
 * - `decipher` decrypts (AES-256-CTR) and hashes the plaintext, which must have the private
 *   options' `digest` at the end.
 *
 * Plaintext flows on before the HMAC verdict, as everything in the pipeline flows before the
 * blob's digest verdict: the caller extracts into a staging directory and commits nothing
 * unless the whole pipeline resolved.
 */
export function localDecryption(key: CipherKey, what: string): LayerDecryption {
  return {
    authenticate: (blob) => authenticateBlob(blob, key, what),
    decipher: new DecipherStream(key, what),
    close() {},
  }
}

async function* authenticateBlob(
  blob: AsyncIterable<Buffer>,
  key: CipherKey,
  what: string,
): AsyncGenerator<Buffer> {
  const mac = createHmac('sha256', key.symkey)
  for await (const chunk of blob) {
    mac.update(chunk)
    yield chunk
  }
  const got = mac.digest()
  if (got.length !== key.hmac.length || !timingSafeEqual(got, key.hmac)) throw hmacMismatch(what)
}

export function hmacMismatch(what: string): OcipullError {
  return new OcipullError(
    'ERR_DECRYPTION_FAILED',
    `${what}: HMAC mismatch: the ciphertext was altered or the options belong to another layer`,
  )
}

export function plaintextMismatch(what: string, want: string, got: string): OcipullError {
  return new OcipullError(
    'ERR_DECRYPTION_FAILED',
    `${what}: decrypted blob digest mismatch: want ${want}, got ${got}`,
  )
}

/** AES-256-CTR decryption with a digest check of the plaintext. */
class DecipherStream extends Transform {
  private readonly decipher: Decipher
  private readonly hash: Hash
  private readonly expected: Digest
  private readonly what: string

  constructor(key: CipherKey, what: string) {
    super()
    this.decipher = createDecipheriv('aes-256-ctr', key.symkey, key.nonce)
    this.expected = key.digest
    this.what = what
    this.hash = createHash(key.digest.slice(0, key.digest.indexOf(':')))
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const plain = this.decipher.update(chunk)
    this.hash.update(plain)
    callback(null, plain)
  }

  override _flush(callback: TransformCallback): void {
    const algorithm = this.expected.slice(0, this.expected.indexOf(':'))
    const got = `${algorithm}:${this.hash.digest('hex')}`
    callback(got === this.expected ? null : plaintextMismatch(this.what, this.expected, got))
  }
}
