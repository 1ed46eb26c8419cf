import { createHash } from 'node:crypto'
import { canonicalJson } from './jcs.js'
import type { TeePubkey } from './tee-key.js'

export type RuntimeDataHash = 'sha256' | 'sha384' | 'sha512'

export interface RuntimeDataBinding {
  teePubkey: TeePubkey
  /** The challenge nonce, verbatim. */
  nonce: string
  /** `tee-evidence.additional_evidence` as sent: `""` when there are no additional devices. */
  additionalEvidence: string
}

/**
 * The canonical text the KBS hashes: the JCS of `{"tee-pubkey", "nonce", "additional-evidence"}`.
 * The third member exists only here, not in the `runtime-data` that is sent.
 */
export function runtimeDataText(b: RuntimeDataBinding): string {
  return canonicalJson({
    'tee-pubkey': b.teePubkey,
    nonce: b.nonce,
    'additional-evidence': b.additionalEvidence,
  })
}

/** The report data the primary attester must bind: `hash(JCS(binding))` (48 bytes for SHA-384). */
export function runtimeDataDigest(b: RuntimeDataBinding, hash: RuntimeDataHash = 'sha384'): Buffer {
  return createHash(hash).update(runtimeDataText(b), 'utf8').digest()
}

/**
 * The hash the challenge selects: `extra-params.selected-hash-algorithm` when the challenge's
 * `extra-params` is an object naming sha256/sha384/sha512 (any case), SHA-384 otherwise (Trustee
 * sends `""` for every TEE but SE). Returns `undefined` for a selection this client cannot
 * compute (`sm3`, unknown names), which the caller reports.
 */
export function selectedRuntimeDataHash(extraParams: unknown): RuntimeDataHash | undefined {
  if (typeof extraParams !== 'object' || extraParams === null || Array.isArray(extraParams)) return 'sha384'
  const selected = (extraParams as Record<string, unknown>)['selected-hash-algorithm']
  if (selected === undefined || selected === null) return 'sha384'
  if (typeof selected !== 'string') return undefined
  const name = selected.toLowerCase()
  return name === 'sha256' || name === 'sha384' || name === 'sha512' ? name : undefined
}
