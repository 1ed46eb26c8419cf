import { abortError, isOcipullError, OcipullError } from '../errors.js'
import type { HttpResponse } from '../registry/http-client.js'
import type { Attester } from './attester.js'
import type { KbsHttp } from './kbs-http.js'
import {
  attestationRequest,
  authRequest,
  describeErrorInformation,
  parseAttestationResponse,
  parseChallenge,
  protocolError,
} from './rcar-messages.js'
import { runtimeDataDigest, selectedRuntimeDataHash } from './runtime-data.js'
import type { TeeKey } from './tee-key.js'

/** An attested RCAR session: the cookie that names it and when it runs out. */
export interface RcarSession {
  /** The `kbs-session-id` cookie value. */
  cookie: string
  /** Milliseconds since the epoch, from the cookie's Expires and the token's exp (whichever is first). */
  expiresAt: number | undefined
}

export interface RcarOptions {
  http: KbsHttp
  attester: Attester
  teeKey: TeeKey
  /** Raw Init-Data TOML to send, if any. */
  initDataToml?: string | undefined
  signal?: AbortSignal | undefined
}

const MAX_RCAR_BODY = 256 * 1024

/**
 * Runs one RCAR round: `POST /kbs/v0/auth` (challenge + `kbs-session-id` cookie), the attester's
 * evidence over the runtime-data digest, `POST /kbs/v0/attest` (token). Two requests and one
 * attester call. Fails with ERR_ATTESTATION_FAILED when the KBS or the attester refuses,
 * ERR_KBS_PROTOCOL on a malformed exchange, ERR_KEY_UNAVAILABLE when the KBS is unreachable.
 */
export async function rcarHandshake(o: RcarOptions): Promise<RcarSession> {
  const { http, signal } = o
  const authWhat = `kbs ${http.name}: POST /kbs/v0/auth`
  const auth = await http.send({
    method: 'POST',
    path: '/kbs/v0/auth',
    json: authRequest(o.attester.tee),
    signal,
  })
  if (auth.status !== 200) throw await rcarFailure(http, auth, authWhat, signal)
  const cookie = sessionCookie(auth.headers['set-cookie'], authWhat)
  if (cookie === undefined) {
    await auth.body.dump().catch(() => {})
    throw protocolError(`${authWhat}: no kbs-session-id cookie in the response`)
  }
  const challenge = parseChallenge(
    await http.read(auth, authWhat, MAX_RCAR_BODY, signal),
    `${authWhat}: challenge`,
  )
  const hash = selectedRuntimeDataHash(challenge.extraParams)
  if (hash === undefined) {
    throw protocolError(`${authWhat}: challenge selects a hash algorithm this client cannot compute`)
  }
  const binding = { teePubkey: o.teeKey.pubkey, nonce: challenge.nonce, additionalEvidence: '' }
  const reportData = runtimeDataDigest(binding, hash)
  let evidence: unknown
  try {
    evidence = await o.attester.evidence(reportData, { signal })
  } catch (err) {
    if (signal?.aborted) throw abortError(signal, `${o.attester.tee} attester`)
    if (isOcipullError(err, 'ERR_ATTESTATION_FAILED')) throw err
    throw new OcipullError(
      'ERR_ATTESTATION_FAILED',
      `${o.attester.tee} attester: ${(err as Error).message}`,
      {
        cause: err,
      },
    )
  }
  const attestWhat = `kbs ${http.name}: POST /kbs/v0/attest`
  const attest = await http.send({
    method: 'POST',
    path: '/kbs/v0/attest',
    cookie: cookie.value,
    json: attestationRequest({
      initDataToml: o.initDataToml,
      nonce: challenge.nonce,
      teePubkey: o.teeKey.pubkey,
      evidence,
      additionalEvidence: binding.additionalEvidence,
    }),
    signal,
  })
  if (attest.status !== 200) throw await rcarFailure(http, attest, attestWhat, signal)
  // A KBS may renew the cookie here (Trustee sends the same one again); the latest one counts.
  const renewed = sessionCookie(attest.headers['set-cookie'], attestWhat) ?? cookie
  const token = parseAttestationResponse(
    await http.read(attest, attestWhat, MAX_RCAR_BODY, signal),
    attestWhat,
  )
  return { cookie: renewed.value, expiresAt: earliest(renewed.expiresAt, token.expiresAt) }
}

async function rcarFailure(http: KbsHttp, res: HttpResponse, what: string, signal?: AbortSignal) {
  if (res.status === 401 || res.status === 403) {
    const info = await http.errorInformation(res, what, signal)
    return new OcipullError('ERR_ATTESTATION_FAILED', `${what}: refused: ${describeErrorInformation(info)}`)
  }
  await res.body.dump().catch(() => {})
  if (res.status >= 500) {
    return new OcipullError('ERR_KEY_UNAVAILABLE', `${what}: HTTP ${res.status} from the KBS`, {
      retryable: true,
    })
  }
  return protocolError(`${what}: unexpected HTTP ${res.status}`)
}

// cookie-octet of RFC 6265, bounded.
const COOKIE_VALUE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]{1,256}$/

/** The `kbs-session-id` cookie of a response, if it sets one; a malformed one is ERR_KBS_PROTOCOL. */
export function sessionCookie(
  header: string | string[] | undefined,
  what: string,
): { value: string; expiresAt: number | undefined } | undefined {
  const lines = header === undefined ? [] : Array.isArray(header) ? header : [header]
  let found: { value: string; expiresAt: number | undefined } | undefined
  for (const line of lines) {
    const [pair = '', ...attributes] = line.split(';')
    const eq = pair.indexOf('=')
    if (eq < 0 || pair.slice(0, eq).trim() !== 'kbs-session-id') continue
    const value = pair.slice(eq + 1).trim()
    if (!COOKIE_VALUE.test(value)) throw protocolError(`${what}: malformed kbs-session-id cookie`)
    let expiresAt: number | undefined
    for (const a of attributes) {
      const [k = '', v = ''] = a.split('=', 2)
      if (k.trim().toLowerCase() === 'expires') {
        const t = Date.parse(v.trim())
        if (Number.isFinite(t)) expiresAt = t
      }
      if (k.trim().toLowerCase() === 'max-age' && /^\d{1,9}$/.test(v.trim())) {
        expiresAt = Date.now() + Number(v.trim()) * 1000
      }
    }
    found = { value, expiresAt }
  }
  return found
}

function earliest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return Math.min(a, b)
}
