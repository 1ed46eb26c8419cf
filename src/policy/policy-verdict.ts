import { type ErrorCode, OcipullError } from '../errors.js'
import type { RequirementType } from './policy-types.js'

/** The outcome of one requirement of the selected scope. */
export interface RequirementVerdict {
  type: RequirementType
  result: 'accepted' | 'rejected'
  /** Why, in words: the accepted signature and signer, or every reason it was rejected. */
  reason: string
  /** For rejections: ERR_SIGNATURE_INVALID, ERR_SIGNATURE_UNSUPPORTED or ERR_POLICY_REJECTED. */
  code?: ErrorCode
  /** The signature that satisfied a signing requirement (a lookaside URL or an attachment). */
  signature?: string
  /** Who signed it: a primary key fingerprint, `trusted key N`, or a certificate identity. */
  signer?: string
}

/** What `evaluatePolicy` decided, and why. Plain data, safe to log or serialize. */
export interface PolicyVerdict {
  accepted: boolean
  /** The reference that was evaluated: the one the user asked for, e.g. `docker://quay.io/ns/app:v1`. */
  image: string
  /** The manifest digest the decision is about. */
  manifestDigest: string
  /** Where the policy came from. */
  policy: string
  /** The scope whose requirements applied: transport and scope, or `default`. */
  scope: { transport: string; scope?: string }
  requirements: RequirementVerdict[]
  /** The image source that served the manifest (a mirror, a layout, …). */
  source: string
  /** Where signatures were looked for, when any requirement needed them. */
  signatureSource?: string
  /** Non-fatal oddities met on the way (HTML lookaside answers, ignored attachments). */
  warnings: string[]
}

/** One line per requirement, e.g. `signedBy: rejected: no signature exists`. */
export function formatVerdict(verdict: PolicyVerdict): string {
  const scope =
    verdict.scope.scope === undefined
      ? 'default'
      : `${verdict.scope.transport} ${JSON.stringify(verdict.scope.scope)}`
  const lines = [
    `${verdict.accepted ? 'accepted' : 'rejected'}: ${verdict.image} (${verdict.manifestDigest})`,
  ]
  lines.push(`  policy: ${verdict.policy}, scope: ${scope}`)
  for (const r of verdict.requirements) lines.push(`  ${r.type}: ${r.result}: ${r.reason}`)
  return lines.join('\n')
}

/**
 * Throws ERR_POLICY_REJECTED listing the reason of every rejected requirement unless the verdict
 * accepts the image. Call it before fetching any layer.
 */
export function assertPolicyAccepted(verdict: PolicyVerdict): void {
  if (verdict.accepted) return
  const reasons = verdict.requirements
    .filter((r) => r.result === 'rejected')
    .map((r) => `${r.type}: ${r.reason}`)
    .join('; ')
  throw new OcipullError(
    'ERR_POLICY_REJECTED',
    `${verdict.image}: rejected by policy ${verdict.policy}: ${reasons}`,
  )
}
