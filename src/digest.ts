import { createHash } from 'node:crypto'
import { OcipullError } from './errors.js'

/** A validated content digest such as `sha256:<64 lowercase hex>`. */
export type Digest = string

export type DigestAlgorithm = 'sha256' | 'sha512'

const hexLength: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 }

export interface ParsedDigest {
  algorithm: DigestAlgorithm
  hex: string
}

/**
 * Parses and validates a digest: `sha256` or `sha512`, lowercase hex of the exact length.
 * Throws ERR_DIGEST_INVALID naming `what` (the field or reference it came from).
 */
export function parseDigest(value: unknown, what = 'digest'): ParsedDigest {
  if (typeof value !== 'string') throw new OcipullError('ERR_DIGEST_INVALID', `${what}: not a string`)
  const colon = value.indexOf(':')
  const algorithm = value.slice(0, colon)
  const hex = value.slice(colon + 1)
  if (colon < 0 || !(algorithm === 'sha256' || algorithm === 'sha512')) {
    throw new OcipullError(
      'ERR_DIGEST_INVALID',
      `${what}: unsupported digest algorithm in ${JSON.stringify(clip(value))} (want sha256 or sha512)`,
    )
  }
  if (hex.length !== hexLength[algorithm] || !/^[0-9a-f]+$/.test(hex)) {
    throw new OcipullError(
      'ERR_DIGEST_INVALID',
      `${what}: ${JSON.stringify(clip(value))} is not ${hexLength[algorithm]} lowercase hex digits`,
    )
  }
  return { algorithm, hex }
}

/** Returns `value` if it is a valid digest, else throws ERR_DIGEST_INVALID. */
export function checkDigest(value: unknown, what = 'digest'): Digest {
  parseDigest(value, what)
  return value as Digest
}

export function isDigest(value: unknown): value is Digest {
  try {
    parseDigest(value)
    return true
  } catch {
    return false
  }
}

/** The digest of `bytes` with the given algorithm (sha256 by default). */
export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`
}

/** A short form for messages: `sha256:0123456789ab`. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':')
  return colon < 0 ? clip(digest) : digest.slice(0, colon + 13)
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}
