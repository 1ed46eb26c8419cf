import { createHash } from 'node:crypto'
import { OcipullError } from '../errors.js'
import {
  isJsonObject,
  JsonNumber,
  type JsonObject,
  type JsonValue,
  jsonType,
  parseStrictJson,
} from './strict-json.js'

export const SIMPLE_SIGNING_TYPE = 'atomic container signature'
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature'

/** What a verified signature says: the image identity and the manifest digest it covers. */
export interface SignaturePayload {
  dockerReference: string
  manifestDigest: string
  creator?: string
  timestamp?: number
}

export interface ParsePayloadOptions {
  type: typeof SIMPLE_SIGNING_TYPE | typeof COSIGN_SIGNATURE_TYPE
  /** Names the signature in errors. */
  what: string
}

/**
 * Parses the JSON a signature covers, only after the signature itself verified, exactly as
 * containers/image does: top level `critical` and `optional` only; `critical` exactly `type`,
 * `image` {`docker-manifest-digest`} and `identity` {`docker-reference`}; `optional` may hold
 * anything, but `creator` must be a string and `timestamp` an integer. `optional: null` is
 * accepted only for cosign payloads. Duplicate keys and trailing data are errors.
 */
export function parseSignaturePayload(bytes: Uint8Array, options: ParsePayloadOptions): SignaturePayload {
  const what = `${options.what}: payload`
  const fail = (path: string, problem: string): never => {
    throw new OcipullError('ERR_SIGNATURE_INVALID', `${what}: ${path}: ${problem}`)
  }
  const exact = (v: JsonValue | undefined, path: string, keys: readonly string[]): JsonObject => {
    if (!isJsonObject(v)) return fail(path, `want an object, got ${jsonType(v)}`)
    for (const k of Object.keys(v)) if (!keys.includes(k)) fail(path, `unknown key ${JSON.stringify(k)}`)
    for (const k of keys) if (v[k] === undefined) fail(path, `missing ${JSON.stringify(k)}`)
    return v
  }
  const str = (o: JsonObject, key: string, path: string): string => {
    const v = o[key]
    if (typeof v !== 'string') return fail(`${path}.${key}`, `want a string, got ${jsonType(v)}`)
    return v
  }
  const doc = exact(
    parseStrictJson(bytes, { code: 'ERR_SIGNATURE_INVALID', what, maxDepth: 32 }),
    '(document)',
    ['critical', 'optional'],
  )
  const critical = exact(doc['critical'], 'critical', ['type', 'image', 'identity'])
  const type = str(critical, 'type', 'critical')
  if (type !== options.type) fail('critical.type', `unexpected type ${JSON.stringify(type.slice(0, 80))}`)
  const image = exact(critical['image'], 'critical.image', ['docker-manifest-digest'])
  const manifestDigest = str(image, 'docker-manifest-digest', 'critical.image')
  if (!digestPattern.test(manifestDigest)) fail('critical.image.docker-manifest-digest', 'not a valid digest')
  const identity = exact(critical['identity'], 'critical.identity', ['docker-reference'])
  const dockerReference = str(identity, 'docker-reference', 'critical.identity')
  const out: SignaturePayload = { dockerReference, manifestDigest }
  const optional = doc['optional']
  if (optional === null && options.type === COSIGN_SIGNATURE_TYPE) return out
  if (!isJsonObject(optional)) return fail('optional', `want an object, got ${jsonType(optional)}`)
  if (optional['creator'] !== undefined) out.creator = str(optional, 'creator', 'optional')
  const ts = optional['timestamp']
  if (ts !== undefined) {
    const n = ts instanceof JsonNumber ? ts.integer() : undefined
    if (n === undefined) fail('optional.timestamp', 'want an integer')
    else out.timestamp = n
  }
  return out
}

const digestPattern = /^(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/

/** True when `digest` (any of sha256, sha384, sha512) is the digest of `manifest`. */
export function manifestMatchesDigest(manifest: Uint8Array, digest: string): boolean {
  if (!digestPattern.test(digest)) return false
  const colon = digest.indexOf(':')
  return createHash(digest.slice(0, colon)).update(manifest).digest('hex') === digest.slice(colon + 1)
}
