import { createHash, type KeyObject, verify } from 'node:crypto'
import { OcipullError } from '../errors.js'
import { isJsonObject, JsonNumber, type JsonObject, type JsonValue, parseStrictJson } from './strict-json.js'

export interface RekorSetInput {
  /** The `dev.sigstore.cosign/bundle` annotation. */
  bundle: string
  /** Trusted Rekor public keys (ECDSA). */
  rekorKeys: readonly KeyObject[]
  /** The signed payload, the raw signature bytes and the DER of the key or certificate that signed. */
  payload: Uint8Array
  signature: Uint8Array
  signerDer: Uint8Array
  what: string
}

/**
 * Verifies a Rekor SignedEntryTimestamp offline, as containers/image does: the SET is an
 * ECDSA-SHA256 signature by a trusted Rekor key over the canonical JSON (RFC 8785) of
 * `{body, integratedTime, logID, logIndex}`; the body must be a hashedrekord 0.0.1 entry whose
 * hash is SHA-256 of the payload, whose signature is the annotation's, and whose public key
 * (PEM key or certificate) is the one that verified. Returns integratedTime (Unix seconds).
 * No inclusion proof is checked. Throws ERR_SIGNATURE_INVALID.
 */
export function verifyRekorSet(input: RekorSetInput): number {
  const fail = (problem: string): never => {
    throw new OcipullError('ERR_SIGNATURE_INVALID', `${input.what}: Rekor SET: ${problem}`)
  }
  const what = `${input.what}: Rekor SET`
  const doc = exact(parseStrictJson(input.bundle, { code: 'ERR_SIGNATURE_INVALID', what, maxDepth: 8 }), [
    'SignedEntryTimestamp',
    'Payload',
  ])
  const payload = exact(doc['Payload'], ['body', 'integratedTime', 'logIndex', 'logID'])
  const set = base64(doc['SignedEntryTimestamp'], 'SignedEntryTimestamp')
  const body = payload['body']
  const logID = payload['logID']
  if (typeof body !== 'string') return fail('Payload.body: want a string')
  if (typeof logID !== 'string') return fail('Payload.logID: want a string')
  const integratedTime = integer(payload['integratedTime'], 'Payload.integratedTime')
  const logIndex = integer(payload['logIndex'], 'Payload.logIndex')
  // RFC 8785 for these four members: sorted keys, no whitespace, integers in decimal.
  const canonical = `{"body":${JSON.stringify(body)},"integratedTime":${integratedTime},"logID":${JSON.stringify(logID)},"logIndex":${logIndex}}`
  if (!input.rekorKeys.some((k) => safeVerify(k, Buffer.from(canonical), set))) {
    fail('not signed by a trusted Rekor key')
  }
  const entry = parseStrictJson(base64(body, 'Payload.body'), {
    code: 'ERR_SIGNATURE_INVALID',
    what: `${what}: body`,
    maxDepth: 16,
  })
  const e = object(entry, 'body')
  if (e['apiVersion'] !== '0.0.1') fail('body.apiVersion: want "0.0.1"')
  if (e['kind'] !== 'hashedrekord') fail('body.kind: want "hashedrekord"')
  const spec = object(e['spec'], 'body.spec')
  const hash = object(object(spec['data'], 'body.spec.data')['hash'], 'body.spec.data.hash')
  const sig = object(spec['signature'], 'body.spec.signature')
  if (hash['algorithm'] !== 'sha256') fail('body.spec.data.hash.algorithm: want "sha256"')
  if (hash['value'] !== createHash('sha256').update(input.payload).digest('hex')) {
    fail('body.spec.data.hash.value does not match the payload')
  }
  if (
    !Buffer.from(base64(sig['content'], 'body.spec.signature.content')).equals(Buffer.from(input.signature))
  ) {
    fail('body.spec.signature.content is not the signature being verified')
  }
  const keyPem = Buffer.from(
    base64(
      object(sig['publicKey'], 'body.spec.signature.publicKey')['content'],
      'body.spec.signature.publicKey.content',
    ),
  ).toString('latin1')
  if (!pemBodies(keyPem).some((der) => der.equals(Buffer.from(input.signerDer)))) {
    fail('body.spec.signature.publicKey is not the key or certificate that signed')
  }
  return integratedTime

  function exact(v: JsonValue | undefined, keys: readonly string[]): JsonObject {
    if (!isJsonObject(v)) return fail('want an object')
    for (const k of Object.keys(v)) if (!keys.includes(k)) fail(`unknown key ${JSON.stringify(k)}`)
    for (const k of keys) if (v[k] === undefined) fail(`missing ${k}`)
    return v
  }
  function object(v: JsonValue | undefined, path: string): JsonObject {
    if (!isJsonObject(v)) return fail(`${path}: want an object`)
    return v
  }
  function integer(v: JsonValue | undefined, path: string): number {
    const n = v instanceof JsonNumber ? v.integer() : undefined
    if (n === undefined) return fail(`${path}: want an integer`)
    return n
  }
  function base64(v: JsonValue | undefined, path: string): Uint8Array {
    if (typeof v !== 'string' || v.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) {
      return fail(`${path}: want standard base64`)
    }
    return new Uint8Array(Buffer.from(v, 'base64'))
  }
}

function safeVerify(key: KeyObject, data: Buffer, signature: Uint8Array): boolean {
  try {
    return verify('sha256', data, key, signature)
  } catch {
    return false
  }
}

/** The DER of each PEM block in `text`. */
export function pemBodies(text: string): Buffer[] {
  const out: Buffer[] = []
  for (const m of text.matchAll(/-----BEGIN [A-Z0-9 ]+-----([\s\S]*?)-----END [A-Z0-9 ]+-----/g)) {
    out.push(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'))
  }
  return out
}
