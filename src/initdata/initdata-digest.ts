import { createHash } from 'node:crypto'
import type { InitDataAlgorithm } from './parse-initdata.js'

/** `algorithm` over the raw Init-Data bytes exactly as delivered (no canonicalization). */
export function initDataDigest(bytes: Uint8Array, algorithm: InitDataAlgorithm): Buffer {
  return createHash(algorithm).update(bytes).digest()
}

/**
 * The digest fitted to a TEE's field: zero-padded or truncated at the end. SNP HOSTDATA takes
 * 32 bytes, TDX MRCONFIGID 48, SGX CONFIGID and the CCA personalization value 64.
 */
export function fitDigest(digest: Uint8Array, length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 1 || length > 4096) {
    throw new TypeError(`fitDigest: bad length ${length}`)
  }
  const out = Buffer.alloc(length)
  Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).copy(
    out,
    0,
    0,
    Math.min(length, digest.length),
  )
  return out
}
