import { type ErrorCode, OcipullError } from '../errors.js'

/** One way of unwrapping a layer key that was tried, or could not be tried, and why it failed. */
export interface UnwrapAttempt {
  /** e.g. `enc.keys.jwe recipient 2 (ECDH-ES+A256KW) with keys/ec.pem` */
  what: string
  problem: string
  /**
   * ERR_KEY_INVALID: a key was tried and did not fit. ERR_KEY_UNAVAILABLE: there was no key to
   * try. Or the code a key source failed with (ERR_KBS_DENIED, …).
   */
  code: ErrorCode
  cause?: unknown
}

/**
 * The one error for a layer whose key nothing could unwrap, naming everything that was tried.
 * ERR_KEY_INVALID when some key was tried and did not fit; otherwise the key sources' own code
 * when they all agree (ERR_KBS_DENIED, ERR_KEY_UNAVAILABLE, …); otherwise ERR_KEY_UNAVAILABLE.
 */
export function unwrapFailure(what: string, attempts: readonly UnwrapAttempt[]): OcipullError {
  const codes = new Set(attempts.map((a) => a.code))
  const code: ErrorCode = codes.has('ERR_KEY_INVALID')
    ? 'ERR_KEY_INVALID'
    : codes.size === 1
      ? (attempts[0]?.code ?? 'ERR_KEY_UNAVAILABLE')
      : 'ERR_KEY_UNAVAILABLE'
  const tried = attempts.map((a) => `${a.what}: ${a.problem}`).join('; ')
  const causes = attempts.flatMap((a) => (a.cause === undefined ? [] : [a.cause]))
  return new OcipullError(
    code,
    `${what}: no key unwraps the layer key; tried ${tried === '' ? 'nothing' : tried}`,
    causes.length > 0 ? { cause: causes.length === 1 ? causes[0] : new AggregateError(causes) } : undefined,
  )
}
