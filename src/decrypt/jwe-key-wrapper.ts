import type { KeyObject } from 'node:crypto'
import { compactDecrypt, type FlattenedJWE, flattenedDecrypt } from 'jose'
import { OcipullError } from '../errors.js'
import type { DecryptionKey } from './private-keys.js'
import type { UnwrapAttempt } from './unwrap-attempts.js'

/** What ocicrypt's JWE wrapper may use (go-jose's set); PBES2 and `dir` are refused. */
const KEY_MANAGEMENT = ['RSA-OAEP', 'RSA-OAEP-256', 'ECDH-ES+A128KW', 'ECDH-ES+A192KW', 'ECDH-ES+A256KW']
const CONTENT_ENCRYPTION = [
  'A128GCM',
  'A192GCM',
  'A256GCM',
  'A128CBC-HS256',
  'A192CBC-HS384',
  'A256CBC-HS512',
]
const MAX_RECIPIENTS = 32
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/**
 * Unwraps one `enc.keys.jwe` entry with the given private keys: go-jose's flattened or general
 * JSON serialization (or compact), RSA-OAEP (SHA-1, what Go ocicrypt writes for RSA keys),
 * RSA-OAEP-256 and ECDH-ES+A128KW/A192KW/A256KW. Every recipient is tried with every key of a
 * matching type. Returns the plaintext (the private options) or records what was tried.
 */
export async function unwrapJwe(
  entry: Buffer,
  keys: readonly DecryptionKey[],
  names: { what: string; label: string },
  attempts: UnwrapAttempt[],
): Promise<Uint8Array | undefined> {
  const { what, label } = names
  const options = { keyManagementAlgorithms: KEY_MANAGEMENT, contentEncryptionAlgorithms: CONTENT_ENCRYPTION }
  const text = entry.toString('utf8').trim()
  let recipients: { jwe: FlattenedJWE | string; alg: string | undefined }[]
  try {
    if (!text.startsWith('{') && !COMPACT.test(text))
      throw new Error('neither JSON nor compact serialization')
    recipients = text.startsWith('{')
      ? splitRecipients(JSON.parse(text))
      : [{ jwe: text, alg: compactAlg(text) }]
  } catch (err) {
    throw new OcipullError(
      'ERR_MANIFEST_INVALID',
      `${what}: ${label}: malformed JWE: ${(err as Error).message}`,
      {
        cause: err,
      },
    )
  }
  for (const [i, r] of recipients.entries()) {
    const where = recipients.length > 1 ? `${label} recipient ${i + 1} (${r.alg})` : `${label} (${r.alg})`
    const usable = keys.filter((k) => fits(r.alg, k.key))
    if (usable.length === 0) {
      attempts.push({
        what: where,
        problem: keys.length === 0 ? 'no private keys given' : 'no key of its type',
        code: 'ERR_KEY_UNAVAILABLE',
      })
      continue
    }
    for (const k of usable) {
      try {
        const result =
          typeof r.jwe === 'string'
            ? await compactDecrypt(r.jwe, k.key, options)
            : await flattenedDecrypt(r.jwe, k.key, options)
        return result.plaintext
      } catch (err) {
        attempts.push({
          what: `${where} with ${k.name}`,
          problem: (err as { code?: string }).code ?? (err as Error).message,
          code: 'ERR_KEY_INVALID',
          cause: err,
        })
      }
    }
  }
  return undefined
}

/** A general JWE becomes one flattened JWE per recipient (go-jose's top-level `encrypted_key` copy is ignored). */
function splitRecipients(doc: unknown): { jwe: FlattenedJWE; alg: string | undefined }[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not a JSON object')
  const jwe = doc as FlattenedJWE & { recipients?: unknown }
  const protectedAlg = headerAlg(jwe)
  if (jwe.recipients === undefined) return [{ jwe, alg: jwe.header?.alg ?? protectedAlg }]
  if (!Array.isArray(jwe.recipients) || jwe.recipients.length === 0)
    throw new Error('recipients: want a non-empty array')
  if (jwe.recipients.length > MAX_RECIPIENTS) throw new Error(`more than ${MAX_RECIPIENTS} recipients`)
  const {
    recipients,
    encrypted_key: _ignored,
    header: _none,
    ...shared
  } = jwe as FlattenedJWE & { recipients: unknown[] }
  return recipients.map((recipient) => {
    if (typeof recipient !== 'object' || recipient === null) throw new Error('recipients: want objects')
    const rec = recipient as { header?: FlattenedJWE['header']; encrypted_key?: string }
    const flat: FlattenedJWE = { ...shared }
    if (rec.header !== undefined) flat.header = rec.header
    if (rec.encrypted_key !== undefined) flat.encrypted_key = rec.encrypted_key
    return { jwe: flat, alg: rec.header?.alg ?? protectedAlg }
  })
}

function headerAlg(jwe: { protected?: unknown; unprotected?: { alg?: string } }): string | undefined {
  if (typeof jwe.protected === 'string') {
    try {
      const header = JSON.parse(Buffer.from(jwe.protected, 'base64url').toString('utf8')) as { alg?: unknown }
      if (typeof header.alg === 'string') return header.alg
    } catch {
      // jose reports the broken header when it is tried
    }
  }
  return jwe.unprotected?.alg
}

function compactAlg(text: string): string | undefined {
  return headerAlg({ protected: text.slice(0, text.indexOf('.')) })
}

/** Whether `key` can serve `alg`, so that a mismatch is "not tried", not "wrong key". */
function fits(alg: string | undefined, key: KeyObject): boolean {
  if (alg === undefined) return true
  if (alg.startsWith('RSA-OAEP')) return key.asymmetricKeyType === 'rsa'
  if (alg.startsWith('ECDH-ES')) return ['ec', 'x25519', 'x448'].includes(key.asymmetricKeyType ?? '')
  return true
}
