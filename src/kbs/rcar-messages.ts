import { OcipullError } from '../errors.js'
import { FieldReader, parseJson } from '../json-fields.js'
import { base64urlBytes } from './base64.js'
import type { TeePubkey } from './tee-key.js'

/** The KBS protocol version this client speaks; Trustee requires it exactly (semver `=0.4.0`). */
export const KBS_PROTOCOL_VERSION = '0.4.0'

/** The prefix of Trustee's error `type` URIs; the variant name follows it. */
export const KBS_ERROR_TYPE_PREFIX = 'https://github.com/confidential-containers/kbs/errors/'

/** The body of `POST /kbs/v0/auth`. */
export function authRequest(tee: string): unknown {
  return {
    version: KBS_PROTOCOL_VERSION,
    tee,
    'extra-params': { 'supported-hash-algorithms': ['sha256', 'sha384', 'sha512'] },
  }
}

export interface Challenge {
  /** Opaque; echoed verbatim (Trustee sends base64 of 32 random bytes). */
  nonce: string
  /** `""` from Trustee for every TEE but SE, which sends `{"selected-hash-algorithm": …}`. */
  extraParams: unknown
}

/** Parses the challenge of `POST /kbs/v0/auth`. Fails with ERR_KBS_PROTOCOL. */
export function parseChallenge(bytes: Uint8Array, what: string): Challenge {
  const r = new FieldReader('ERR_KBS_PROTOCOL', what)
  const o = r.object(parseJson(bytes, 'ERR_KBS_PROTOCOL', what), '')
  const nonce = r.string(o, 'nonce', '')
  if (nonce.length === 0 || nonce.length > 1024) r.fail('nonce', 'want 1 to 1024 characters')
  return { nonce, extraParams: o['extra-params'] ?? '' }
}

export interface AttestationInput {
  /** Raw Init-Data TOML, sent as `{"format":"toml","body":…}`; `null` when there is none. */
  initDataToml: string | undefined
  nonce: string
  teePubkey: TeePubkey
  /** The attester's primary evidence (JSON). */
  evidence: unknown
  additionalEvidence: string
}

/** The body of `POST /kbs/v0/attest`, member for member (and in the order) Trustee's clients send. */
export function attestationRequest(a: AttestationInput): unknown {
  return {
    'init-data': a.initDataToml === undefined ? null : { format: 'toml', body: a.initDataToml },
    'runtime-data': { nonce: a.nonce, 'tee-pubkey': a.teePubkey },
    'tee-evidence': { primary_evidence: a.evidence, additional_evidence: a.additionalEvidence },
  }
}

export interface AttestationToken {
  token: string
  /** The token's `exp` (milliseconds since the epoch), when it has one. */
  expiresAt: number | undefined
}

const MAX_TOKEN_LENGTH = 64 * 1024

/**
 * Parses `{"token": "<JWT>"}` from `POST /kbs/v0/attest`. The token stays opaque except for its
 * `exp`, read (unverified, as Trustee's client does) to re-attest before it runs out.
 */
export function parseAttestationResponse(bytes: Uint8Array, what: string): AttestationToken {
  const r = new FieldReader('ERR_KBS_PROTOCOL', what)
  const o = r.object(parseJson(bytes, 'ERR_KBS_PROTOCOL', what), '')
  const token = r.string(o, 'token', '')
  if (token.length > MAX_TOKEN_LENGTH) r.fail('token', `longer than ${MAX_TOKEN_LENGTH} characters`)
  const parts = token.split('.')
  const payloadBytes = parts.length === 3 ? base64urlBytes(parts[1] as string) : undefined
  if (payloadBytes === undefined) return r.fail('token', 'want a JWT (three unpadded base64url parts)')
  const payload = r.object(parseJson(payloadBytes, 'ERR_KBS_PROTOCOL', `${what}: token payload`), 'token')
  const exp = payload['exp']
  if (exp === undefined) return { token, expiresAt: undefined }
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return r.fail('token.exp', 'want a number of seconds')
  return { token, expiresAt: exp * 1000 }
}

/** Trustee's `ErrorInformation`: `{"type": "<prefix><Variant>", "detail": "…"}`. */
export interface KbsErrorInformation {
  type: string
  detail: string
}

/** Parses an error body; undefined when it is not `{type, detail}` JSON. */
export function parseErrorInformation(bytes: Uint8Array): KbsErrorInformation | undefined {
  try {
    const o = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>
    if (typeof o?.['type'] === 'string' && typeof o['detail'] === 'string') {
      return { type: o['type'].slice(0, 300), detail: o['detail'].slice(0, 1000) }
    }
  } catch {}
  return undefined
}

/** The variant of an error type (`PolicyDeny` for `…/errors/PolicyDeny`), or the whole type. */
export function errorVariant(info: KbsErrorInformation): string {
  return info.type.startsWith(KBS_ERROR_TYPE_PREFIX)
    ? info.type.slice(KBS_ERROR_TYPE_PREFIX.length)
    : info.type
}

/** `Variant: detail`, with control characters removed, for messages. */
export function describeErrorInformation(info: KbsErrorInformation): string {
  return `${errorVariant(info)}: ${info.detail}`.replace(/[\u0000-\u001f\u007f]/g, ' ')
}

/** An ERR_KBS_PROTOCOL error. */
export function protocolError(message: string, cause?: unknown): OcipullError {
  return new OcipullError('ERR_KBS_PROTOCOL', message, cause === undefined ? undefined : { cause })
}
