import type { ErrorCode } from '../errors.js'

/** Process exit codes of the CLI. Stable: scripts branch on them. */
export const ExitCode = {
  Ok: 0,
  Failure: 1,
  Usage: 2,
  NotFound: 3,
  Auth: 4,
  Integrity: 5,
  Network: 6,
  /** Refused by the signature policy or the registry configuration. */
  Rejected: 7,
  /** A decryption key could not be obtained (missing, wrong, KBS denied, attestation failed). */
  Keys: 8,
  Aborted: 130,
} as const

const byCode: Partial<Record<ErrorCode, number>> = {
  ERR_REFERENCE_INVALID: ExitCode.Usage,
  ERR_PLATFORM_INVALID: ExitCode.Usage,
  ERR_OPTIONS_INVALID: ExitCode.Usage,
  ERR_NOT_FOUND: ExitCode.NotFound,
  ERR_PLATFORM_NOT_FOUND: ExitCode.NotFound,
  ERR_UNAUTHORIZED: ExitCode.Auth,
  ERR_DENIED: ExitCode.Auth,
  ERR_CREDENTIALS: ExitCode.Auth,
  ERR_DIGEST_MISMATCH: ExitCode.Integrity,
  ERR_SIZE_MISMATCH: ExitCode.Integrity,
  ERR_DIGEST_INVALID: ExitCode.Integrity,
  ERR_MANIFEST_INVALID: ExitCode.Integrity,
  ERR_MANIFEST_TOO_LARGE: ExitCode.Integrity,
  ERR_CONFIG_INVALID: ExitCode.Integrity,
  ERR_SOURCE_INVALID: ExitCode.Integrity,
  ERR_LAYER_INVALID: ExitCode.Integrity,
  ERR_MEDIA_TYPE_MISMATCH: ExitCode.Integrity,
  ERR_PATH_UNSAFE: ExitCode.Integrity,
  ERR_LIMIT_EXCEEDED: ExitCode.Integrity,
  ERR_TLS: ExitCode.Network,
  ERR_CONNECTION: ExitCode.Network,
  ERR_TIMEOUT: ExitCode.Network,
  ERR_TOO_MANY_REQUESTS: ExitCode.Network,
  ERR_REGISTRY: ExitCode.Network,
  ERR_IMAGE_NOT_FOUND: ExitCode.NotFound,
  ERR_POLICY_INVALID: ExitCode.Usage,
  ERR_CONFIG_FILE_INVALID: ExitCode.Usage,
  ERR_RESOURCE_URI_INVALID: ExitCode.Usage,
  ERR_INITDATA_INVALID: ExitCode.Usage,
  ERR_POLICY_REJECTED: ExitCode.Rejected,
  ERR_SIGNATURE_INVALID: ExitCode.Rejected,
  ERR_REGISTRY_BLOCKED: ExitCode.Rejected,
  ERR_DECRYPTION_FAILED: ExitCode.Integrity,
  ERR_KEY_UNAVAILABLE: ExitCode.Keys,
  ERR_KEY_INVALID: ExitCode.Keys,
  ERR_KBS_DENIED: ExitCode.Keys,
  ERR_ATTESTATION_FAILED: ExitCode.Keys,
  ERR_KBS_PROTOCOL: ExitCode.Network,
  ERR_ABORTED: ExitCode.Aborted,
}

export function exitCodeFor(code: ErrorCode): number {
  return byCode[code] ?? ExitCode.Failure
}
