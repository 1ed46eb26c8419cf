export interface UnpackLimits {
  /** Most archive members (whiteouts included; PAX and long-name headers not counted). Default 1e6. */
  maxEntries?: number
  /**
   * Most bytes of tar stream to consume: headers, file data, padding and whatever follows the
   * end-of-archive marker. Bounds the disk space and the time one layer can take. Default 64 GiB.
   */
  maxBytes?: number
  /** Longest entry name or link target, in bytes. Default 4096 (PATH_MAX). */
  maxPathLength?: number
}

export const DEFAULT_LIMITS: Required<UnpackLimits> = {
  maxEntries: 1_000_000,
  maxBytes: 64 * 1024 ** 3,
  maxPathLength: 4096,
}

/** The limits with defaults filled in; TypeError for values that are not positive integers. */
export function resolveLimits(limits: UnpackLimits | undefined): Required<UnpackLimits> {
  const out = { ...DEFAULT_LIMITS }
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof UnpackLimits)[]) {
    const v = limits?.[key]
    if (v === undefined) continue
    if (!Number.isSafeInteger(v) || v <= 0) {
      throw new TypeError(`limits.${key} must be a positive integer, got ${String(v)}`)
    }
    out[key] = v
  }
  return out
}
