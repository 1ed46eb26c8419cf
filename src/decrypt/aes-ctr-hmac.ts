import {
  createDecipheriv,
  createHash,
  createHmac,
  type Decipher,
  type Hash,
  type Hmac,
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
  const mac = new CiphertextMac(key, what)
  for await (const chunk of blob) {
    mac.update(chunk)
    yield chunk
  }
  mac.check()
}

/** HMAC-SHA256 over the ciphertext on this thread; `check()` throws unless it is the public options'. */
export class CiphertextMac {
  private readonly mac: Hmac
  private readonly key: CipherKey
  private readonly what: string

  constructor(key: CipherKey, what: string) {
    this.mac = createHmac('sha256', key.symkey)
    this.key = key
    this.what = what
  }

  update(chunk: Buffer): void {
    this.mac.update(chunk)
  }

  check(): void {
    const got = this.mac.digest()
    if (got.length !== this.key.hmac.length || !timingSafeEqual(got, this.key.hmac))
      throw hmacMismatch(this.what)
  }
}

/** AES-256-CTR and the plaintext digest on this thread; `verdict()` at the end. */
export class PlaintextDecrypter {
  private readonly decipher: Decipher
  private readonly hash: Hash
  private readonly expected: Digest
  private readonly what: string

  constructor(key: CipherKey, what: string) {
    this.decipher = createDecipheriv('aes-256-ctr', key.symkey, key.nonce)
    this.expected = key.digest
    this.what = what
    this.hash = createHash(key.digest.slice(0, key.digest.indexOf(':')))
  }

  update(chunk: Buffer): Buffer {
    const plain = this.decipher.update(chunk)
    this.hash.update(plain)
    return plain
  }

  /** ERR_DECRYPTION_FAILED unless the plaintext had the private options' digest. */
  verdict(): OcipullError | null {
    const got = `${this.expected.slice(0, this.expected.indexOf(':'))}:${this.hash.digest('hex')}`
    return got === this.expected ? null : plaintextMismatch(this.what, this.expected, got)
  }
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
  private readonly decrypter: PlaintextDecrypter

  constructor(key: CipherKey, what: string) {
    super()
    this.decrypter = new PlaintextDecrypter(key, what)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    callback(null, this.decrypter.update(chunk))
  }

  override _flush(callback: TransformCallback): void {
    callback(this.decrypter.verdict())
  }
}
