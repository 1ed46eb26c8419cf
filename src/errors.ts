/**
 * Every error that ocipull throws on purpose is an `OcipullError` with a stable `code`.
 * Callers branch on `err.code`; messages are for people and may change.
 * See docs/errors.md for the table of codes.
 */
export const ErrorCodes = [
  // input the caller gave us
  'ERR_REFERENCE_INVALID',
  'ERR_PLATFORM_INVALID',
  'ERR_OPTIONS_INVALID',
  // content from the source
  'ERR_DIGEST_INVALID',
  'ERR_DIGEST_MISMATCH',
  'ERR_SIZE_MISMATCH',
  'ERR_MANIFEST_INVALID',
  'ERR_MANIFEST_TOO_LARGE',
  'ERR_MANIFEST_UNSUPPORTED',
  'ERR_CONFIG_INVALID',
  'ERR_PLATFORM_NOT_FOUND',
  'ERR_SOURCE_INVALID',
  // the registry and the network
  'ERR_NOT_FOUND',
  'ERR_UNAUTHORIZED',
  'ERR_DENIED',
  'ERR_TOO_MANY_REQUESTS',
  'ERR_REGISTRY',
  'ERR_TLS',
  'ERR_CONNECTION',
  'ERR_TIMEOUT',
  'ERR_CREDENTIALS',
  // layers, unpacking and bundles
  'ERR_LAYER_INVALID',
  'ERR_MEDIA_TYPE_UNSUPPORTED',
  'ERR_MEDIA_TYPE_MISMATCH',
  'ERR_PATH_UNSAFE',
  'ERR_LIMIT_EXCEEDED',
  'ERR_IMAGE_UNSUPPORTED',
  'ERR_USER_INVALID',
  // the layer store and snapshotters
  'ERR_STORE_CORRUPT',
  'ERR_IMAGE_NOT_FOUND',
  'ERR_SNAPSHOTTER_UNSUPPORTED',
  // signature policy (containers-policy.json, registries.d, GPG, sigstore)
  'ERR_POLICY_INVALID',
  'ERR_POLICY_REJECTED',
  'ERR_SIGNATURE_INVALID',
  'ERR_SIGNATURE_UNSUPPORTED',
  // encrypted layers, keys and the KBS
  'ERR_DECRYPTION_FAILED',
  'ERR_KEY_UNAVAILABLE',
  'ERR_KEY_INVALID',
  'ERR_KBS_DENIED',
  'ERR_KBS_PROTOCOL',
  'ERR_ATTESTATION_FAILED',
  'ERR_INITDATA_INVALID',
  'ERR_RESOURCE_URI_INVALID',
  // configuration files (registries.conf, cdh.toml, image-rs [image])
  'ERR_CONFIG_FILE_INVALID',
  'ERR_REGISTRY_BLOCKED',
  'ERR_ABORTED',
] as const

export type ErrorCode = (typeof ErrorCodes)[number]

export interface OcipullErrorOptions extends ErrorOptions {
  /** True when trying the same operation again may succeed (network faults, 429, 5xx). */
  retryable?: boolean
}

export class OcipullError extends Error {
  readonly code: ErrorCode
  readonly retryable: boolean

  constructor(code: ErrorCode, message: string, options?: OcipullErrorOptions) {
    super(message, options)
    this.code = code
    this.retryable = options?.retryable ?? false
    this.name = new.target.name
  }
}

export function isOcipullError(err: unknown, code?: ErrorCode): err is OcipullError {
  return err instanceof OcipullError && (code === undefined || err.code === code)
}

/** The error to throw when `signal` has fired: keeps an OcipullError reason, wraps anything else. */
export function abortError(signal: AbortSignal | undefined, what: string): OcipullError {
  const reason: unknown = signal?.reason
  if (reason instanceof OcipullError) return reason
  return new OcipullError('ERR_ABORTED', `${what}: aborted`, { cause: reason })
}
