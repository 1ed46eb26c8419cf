import { errors, flattenedDecrypt } from 'jose'
import { FieldReader, parseJson } from '../json-fields.js'
import { base64urlBytes } from './base64.js'
import { protocolError } from './rcar-messages.js'
import type { TeeKey } from './tee-key.js'

/** The flattened JWE a KBS answers a resource GET with (Trustee sends neither `aad` nor `header`). */
export interface FlattenedJwe {
  protected: string
  encrypted_key: string
  iv: string
  ciphertext: string
  tag: string
}

const MEMBERS = ['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag'] as const

/**
 * Decrypts a KBS resource response with the TEE private key: the JWE must be flattened, with
 * exactly the five members Trustee sends, `alg` matching the TEE key (ECDH-ES+A256KW or
 * RSA-OAEP-256) and `enc` A256GCM. The AAD is the received `protected` string (RFC 7516), as jose
 * computes it. Any other shape, or a failed tag check, is ERR_KBS_PROTOCOL naming `what`.
 */
export async function decryptResourceResponse(bytes: Uint8Array, key: TeeKey, what: string): Promise<Buffer> {
  const r = new FieldReader('ERR_KBS_PROTOCOL', what)
  const o = r.object(parseJson(bytes, 'ERR_KBS_PROTOCOL', what), '')
  for (const k of Object.keys(o)) {
    if (!(MEMBERS as readonly string[]).includes(k)) r.fail(k, 'unexpected member of a flattened JWE')
  }
  const jwe = {} as FlattenedJwe
  for (const k of MEMBERS) {
    const v = r.string(o, k, '')
    if (base64urlBytes(v) === undefined) r.fail(k, 'want unpadded base64url')
    jwe[k] = v
  }
  const header = r.object(
    parseJson(base64urlBytes(jwe.protected)!, 'ERR_KBS_PROTOCOL', `${what}: protected`),
    'protected',
  )
  const alg = key.pubkey.alg
  if (header['alg'] !== alg)
    r.fail('protected.alg', `want ${alg} for this TEE key, got ${JSON.stringify(header['alg'])}`)
  if (header['enc'] !== 'A256GCM')
    r.fail('protected.enc', `want A256GCM, got ${JSON.stringify(header['enc'])}`)
  try {
    const { plaintext } = await flattenedDecrypt(jwe, key.privateKey, {
      keyManagementAlgorithms: [alg],
      contentEncryptionAlgorithms: ['A256GCM'],
    })
    return Buffer.from(plaintext)
  } catch (err) {
    const reason = err instanceof errors.JOSEError ? `${err.code}: ${err.message}` : String(err)
    throw protocolError(`${what}: cannot decrypt the JWE: ${reason}`, err)
  }
}
