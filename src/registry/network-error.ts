import { OcipullError } from '../errors.js'

const tlsCodes = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
])

const connectionCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
])

const timeoutCodes = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/**
 * Maps an error from undici or the socket layer to an OcipullError with a stable code:
 * ERR_TLS (certificate or handshake problems; never retried), ERR_TIMEOUT, ERR_CONNECTION
 * (refused, reset, DNS; retryable) or ERR_ABORTED. `what` names the request, e.g.
 * `GET https://host/v2/repo/manifests/tag` (never with credentials in it).
 */
export function networkError(err: unknown, what: string, signal?: AbortSignal): OcipullError {
  if (err instanceof OcipullError) return err
  if (signal?.aborted) {
    const reason: unknown = signal.reason
    if (reason instanceof OcipullError) return reason
    return new OcipullError('ERR_ABORTED', `${what}: aborted`, { cause: reason ?? err })
  }
  const code = errorCode(err)
  const message = err instanceof Error ? err.message : String(err)
  if (
    code !== undefined &&
    (tlsCodes.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'))
  ) {
    return new OcipullError('ERR_TLS', `${what}: tls: ${message} (${code})`, { cause: err })
  }
  if (code !== undefined && timeoutCodes.has(code)) {
    return new OcipullError('ERR_TIMEOUT', `${what}: ${message}`, { cause: err, retryable: true })
  }
  if (
    code === 'UND_ERR_ABORTED' ||
    code === 'ABORT_ERR' ||
    (err instanceof Error && err.name === 'AbortError')
  ) {
    return new OcipullError('ERR_ABORTED', `${what}: aborted`, { cause: err })
  }
  if (code !== undefined && connectionCodes.has(code)) {
    return new OcipullError('ERR_CONNECTION', `${what}: ${message} (${code})`, {
      cause: err,
      retryable: true,
    })
  }
  return new OcipullError('ERR_CONNECTION', `${what}: ${message}${code ? ` (${code})` : ''}`, {
    cause: err,
    retryable: true,
  })
}

/** The most specific `code` in an error and its causes (undici wraps socket errors). */
function errorCode(err: unknown): string | undefined {
  let found: string | undefined
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') {
      // Prefer the socket/TLS code underneath undici's generic UND_ERR_SOCKET.
      if (found === undefined || found === 'UND_ERR_SOCKET' || found === 'UND_ERR_CONNECT') found = code
    }
  }
  return found
}
