import { type Digest, parseDigest } from '../digest.js'
import { type ErrorCode, OcipullError } from '../errors.js'
import { describe, FieldReader, parseJson } from '../json-fields.js'
import { decodeBase64 } from './strict-base64.js'

/** The only block cipher ocicrypt defines. */
export const AES_256_CTR_HMAC_SHA256 = 'AES_256_CTR_HMAC_SHA256'

/**
 * ocicrypt's public options (`org.opencontainers.image.enc.pubopts`): the cipher and the
 * HMAC-SHA256 of the whole ciphertext. Readable by anyone who has the manifest.
 */
export interface PublicLayerOptions {
  cipher: string
  hmac: Buffer
  cipherOptions: Record<string, Buffer>
}

/**
 * ocicrypt's private options, the "optsdata" every key wrapper wraps: the layer's symmetric key,
 * the digest of the decrypted (still compressed) blob and the cipher options (the CTR nonce).
 */
export interface PrivateLayerOptions {
  symkey: Buffer
  digest: Digest
  cipherOptions: Record<string, Buffer>
}

/** Parses the decoded JSON of the public options. ERR_MANIFEST_INVALID names the annotation. */
export function parsePublicOptions(json: Uint8Array, what: string): PublicLayerOptions {
  const code = 'ERR_MANIFEST_INVALID'
  const r = new FieldReader(code, what)
  const o = r.object(parseJson(json, code, what), '')
  const cipher = r.string(o, 'cipher', '')
  const hmac = bytesField(r, o, 'hmac', code, what)
  if (hmac.length !== 32) r.fail('hmac', `want 32 bytes, got ${hmac.length}`)
  return { cipher, hmac, cipherOptions: cipherOptions(r, o, code, what) }
}

/**
 * Parses unwrapped private options. They come out of an authenticated unwrap, so a malformed one
 * means a broken encrypter: ERR_DECRYPTION_FAILED.
 */
export function parsePrivateOptions(json: Uint8Array, what: string): PrivateLayerOptions {
  const code = 'ERR_DECRYPTION_FAILED'
  const r = new FieldReader(code, what)
  const o = r.object(parseJson(json, code, what), '')
  const symkey = bytesField(r, o, 'symkey', code, what)
  if (symkey.length !== 32) r.fail('symkey', `want 32 bytes, got ${symkey.length}`)
  const digest = r.string(o, 'digest', '')
  try {
    parseDigest(digest, 'digest')
  } catch (err) {
    throw new OcipullError(code, `${what}: ${(err as Error).message}`, { cause: err })
  }
  return { symkey, digest, cipherOptions: cipherOptions(r, o, code, what) }
}

function bytesField(
  r: FieldReader,
  o: Record<string, unknown>,
  key: string,
  code: ErrorCode,
  what: string,
): Buffer {
  return decodeBase64(r.string(o, key, ''), code, `${what}: ${key}`)
}

/** Go's `map[string][]byte`; `null` and a missing member are an empty map. */
function cipherOptions(
  r: FieldReader,
  o: Record<string, unknown>,
  code: ErrorCode,
  what: string,
): Record<string, Buffer> {
  const value = o['cipheroptions']
  if (value === undefined || value === null) return {}
  const m = r.object(value, 'cipheroptions')
  const out: Record<string, Buffer> = Object.create(null)
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== 'string') r.fail(`cipheroptions.${k}`, `want a base64 string, got ${describe(v)}`)
    out[k] = decodeBase64(v, code, `${what}: cipheroptions.${k}`)
  }
  return out
}

/**
 * The CTR nonce: as in Go ocicrypt, a cipher option is looked up in the public options first,
 * then in the private ones. A nonce swapped in the (unauthenticated) public options decrypts to
 * garbage, which the private options' digest then refuses.
 */
export function layerNonce(pub: PublicLayerOptions, priv: PrivateLayerOptions, what: string): Buffer {
  const nonce = pub.cipherOptions['nonce'] ?? priv.cipherOptions['nonce']
  if (nonce === undefined) throw new OcipullError('ERR_DECRYPTION_FAILED', `${what}: no nonce in the options`)
  if (nonce.length !== 16) {
    throw new OcipullError('ERR_DECRYPTION_FAILED', `${what}: nonce is ${nonce.length} bytes, want 16`)
  }
  return nonce
}
