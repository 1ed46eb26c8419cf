import {
  constants,
  createCipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  publicEncrypt,
  randomBytes,
} from 'node:crypto'
import type { FlattenedJwe } from '../resource-response.js'
import type { TeePubkey } from '../tee-key.js'

/**
 * Fixed inputs for reproducing a response byte for byte (test vectors); random when absent.
 * Never set them outside tests: a reused CEK/IV pair breaks AES-GCM.
 */
export interface JweTestInputs {
  /** The ECDH-ES ephemeral private key (on the TEE key's curve). */
  ephemeralPrivateKey?: KeyObject
  /** The 32-byte content encryption key. */
  cek?: Uint8Array
  /** The 12-byte GCM IV. */
  iv?: Uint8Array
}

/**
 * Encrypts a resource to the TEE public key exactly as Trustee does: a flattened JWE whose
 * members come in the order `protected, encrypted_key, iv, ciphertext, tag`, unpadded base64url,
 * a protected header in serde's compact form and order (`alg`, `enc`, then `epk` with its members
 * alphabetical), A256GCM with the protected string as AAD. ECDH-ES+A256KW (P-256/P-521) or
 * RSA-OAEP-256 by the key.
 */
export function encryptResource(
  plaintext: Uint8Array,
  tee: TeePubkey,
  inputs: JweTestInputs = {},
): FlattenedJwe {
  const cek = Buffer.from(inputs.cek ?? randomBytes(32))
  const iv = Buffer.from(inputs.iv ?? randomBytes(12))
  if (cek.length !== 32 || iv.length !== 12)
    throw new TypeError('encryptResource: want a 32-byte CEK and a 12-byte IV')
  const recipient = createPublicKey({ key: tee, format: 'jwk' })
  let header: string
  let encryptedKey: Buffer
  if (tee.kty === 'EC') {
    const ephemeral =
      inputs.ephemeralPrivateKey ?? generateKeyPairSync('ec', { namedCurve: tee.crv }).privateKey
    const epk = createPublicKey(ephemeral).export({ format: 'jwk' })
    if (epk.crv !== tee.crv)
      throw new TypeError('encryptResource: the ephemeral key is not on the TEE key curve')
    const z = diffieHellman({ privateKey: ephemeral, publicKey: recipient })
    const kek = concatKdf(z, 'ECDH-ES+A256KW', 256)
    encryptedKey = aesKeyWrap(kek, cek)
    header = JSON.stringify({
      alg: 'ECDH-ES+A256KW',
      enc: 'A256GCM',
      epk: { crv: epk.crv, kty: 'EC', x: epk.x, y: epk.y },
    })
  } else {
    encryptedKey = publicEncrypt(
      { key: recipient, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      cek,
    )
    header = JSON.stringify({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
  }
  const protectedB64 = Buffer.from(header, 'utf8').toString('base64url')
  const gcm = createCipheriv('aes-256-gcm', cek, iv)
  gcm.setAAD(Buffer.from(protectedB64, 'ascii'))
  const ciphertext = Buffer.concat([gcm.update(plaintext), gcm.final()])
  return {
    protected: protectedB64,
    encrypted_key: encryptedKey.toString('base64url'),
    iv: iv.toString('base64url'),
    ciphertext: ciphertext.toString('base64url'),
    tag: gcm.getAuthTag().toString('base64url'),
  }
}

/**
 * Concat KDF of RFC 7518 §4.6.2 with SHA-256, one round (keys up to 256 bits), empty apu/apv:
 * `SHA-256(u32be(1) ‖ Z ‖ u32be(len(alg)) ‖ alg ‖ u32be(0) ‖ u32be(0) ‖ u32be(bits))`.
 */
export function concatKdf(z: Uint8Array, algorithm: string, bits: number): Buffer {
  if (bits > 256) throw new TypeError('concatKdf: one SHA-256 round gives at most 256 bits')
  return createHash('sha256')
    .update(u32be(1))
    .update(z)
    .update(concatKdfOtherInfo(algorithm, bits))
    .digest()
    .subarray(0, bits / 8)
}

/** The OtherInfo of the Concat KDF with empty PartyUInfo and PartyVInfo. */
export function concatKdfOtherInfo(algorithm: string, bits: number): Buffer {
  const alg = Buffer.from(algorithm, 'ascii')
  return Buffer.concat([u32be(alg.length), alg, u32be(0), u32be(0), u32be(bits)])
}

/** AES Key Wrap (RFC 3394) with a 256-bit key and the default IV. */
function aesKeyWrap(kek: Buffer, key: Buffer): Buffer {
  const c = createCipheriv('id-aes256-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'))
  return Buffer.concat([c.update(key), c.final()])
}

function u32be(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}
