import { createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import type { FieldReader } from '../json-fields.js'
import { base64urlBytes } from './base64.js'

const generateKeyPairAsync = promisify(generateKeyPair)

/** The TEE key algorithms of aa.toml's `tee_key_algorithm` (the default is P-256). */
export const TeeKeyAlgorithms = ['ECDH-ES+A256KW-P256', 'ECDH-ES+A256KW-P521', 'RSA-OAEP-256'] as const
export type TeeKeyAlgorithm = (typeof TeeKeyAlgorithms)[number]

/**
 * The `tee-pubkey` JWK of the attestation request, with exactly the members Trustee parses, in the
 * order Trustee's clients send them. The KBS re-serializes the parsed key when it recomputes the
 * runtime-data hash, so any other member (`use`, `kid`, `ext`) would break the binding.
 */
export type TeePubkey =
  | { kty: 'EC'; crv: 'P-256' | 'P-521'; alg: 'ECDH-ES+A256KW'; x: string; y: string }
  | { kty: 'RSA'; alg: 'RSA-OAEP-256'; n: string; e: string }

/** The key pair the KBS encrypts resources to. Lives in memory only, for one client. */
export interface TeeKey {
  algorithm: TeeKeyAlgorithm
  privateKey: KeyObject
  pubkey: TeePubkey
}

const COORDINATE_BYTES = { 'P-256': 32, 'P-521': 66 } as const

/** Generates a fresh TEE key pair (P-256: about 1 ms; RSA 2048: up to a few hundred ms). */
export async function generateTeeKey(algorithm: TeeKeyAlgorithm = 'ECDH-ES+A256KW-P256'): Promise<TeeKey> {
  const { privateKey } =
    algorithm === 'RSA-OAEP-256'
      ? await generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 })
      : await generateKeyPairAsync('ec', { namedCurve: algorithm.endsWith('P521') ? 'P-521' : 'P-256' })
  return teeKeyFromPrivateKey(privateKey)
}

/** Wraps an existing private key (EC P-256/P-521 or RSA) as a TEE key, e.g. a fixed test key. */
export function teeKeyFromPrivateKey(privateKey: KeyObject): TeeKey {
  if (privateKey.type !== 'private') throw new TypeError('teeKeyFromPrivateKey: want a private key')
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' })
  if (jwk.kty === 'EC' && (jwk.crv === 'P-256' || jwk.crv === 'P-521')) {
    const crv = jwk.crv
    return {
      algorithm: crv === 'P-256' ? 'ECDH-ES+A256KW-P256' : 'ECDH-ES+A256KW-P521',
      privateKey,
      pubkey: { kty: 'EC', crv, alg: 'ECDH-ES+A256KW', x: String(jwk.x), y: String(jwk.y) },
    }
  }
  if (jwk.kty === 'RSA') {
    return {
      algorithm: 'RSA-OAEP-256',
      privateKey,
      pubkey: { kty: 'RSA', alg: 'RSA-OAEP-256', n: String(jwk.n), e: String(jwk.e) },
    }
  }
  throw new TypeError(`teeKeyFromPrivateKey: unsupported key (${jwk.kty} ${jwk.crv ?? ''})`)
}

/**
 * Reads a `tee-pubkey` from an untrusted attestation request, keeping only the members Trustee
 * keeps (so extra members change the hash and fail the binding, as they do with Trustee), and
 * checking lengths: EC coordinates of exactly 32 (P-256) or 66 (P-521) bytes, RSA moduli of
 * 2048 to 8192 bits. Fails through `r` (its error code) with the JSON path.
 */
export function parseTeePubkey(r: FieldReader, value: unknown, path: string): TeePubkey {
  const o = r.object(value, path)
  const kty = r.string(o, 'kty', path)
  const alg = r.string(o, 'alg', path)
  if (kty === 'EC') {
    const crv = r.string(o, 'crv', path)
    if (crv !== 'P-256' && crv !== 'P-521') r.fail(`${path}.crv`, `unsupported curve ${JSON.stringify(crv)}`)
    if (alg !== 'ECDH-ES+A256KW') r.fail(`${path}.alg`, `want ECDH-ES+A256KW, got ${JSON.stringify(alg)}`)
    const x = r.string(o, 'x', path)
    const y = r.string(o, 'y', path)
    for (const [name, v] of [
      ['x', x],
      ['y', y],
    ] as const) {
      const bytes = base64urlBytes(v)
      if (bytes === undefined || bytes.length !== COORDINATE_BYTES[crv]) {
        r.fail(`${path}.${name}`, `want ${COORDINATE_BYTES[crv]} bytes of unpadded base64url`)
      }
    }
    return { kty, crv, alg, x, y }
  }
  if (kty === 'RSA') {
    if (alg !== 'RSA-OAEP-256') r.fail(`${path}.alg`, `want RSA-OAEP-256, got ${JSON.stringify(alg)}`)
    const n = r.string(o, 'n', path)
    const e = r.string(o, 'e', path)
    const nBytes = base64urlBytes(n)
    if (nBytes === undefined || nBytes.length < 256 || nBytes.length > 1024 || nBytes[0] === 0) {
      r.fail(`${path}.n`, 'want a 2048 to 8192-bit modulus in unpadded base64url')
    }
    const eBytes = base64urlBytes(e)
    if (eBytes === undefined || eBytes.length === 0 || eBytes.length > 4 || eBytes[0] === 0) {
      r.fail(`${path}.e`, 'want a public exponent of at most 4 bytes in unpadded base64url')
    }
    return { kty, alg, n, e }
  }
  return r.fail(`${path}.kty`, `want EC or RSA, got ${JSON.stringify(kty)}`)
}
