import type { PublicKey } from 'openpgp'
import { type EvaluationContext, payloadProblem, summarizeFailures } from './evaluation-context.js'
import type { PolicyRequirement } from './policy-types.js'
import type { RequirementVerdict } from './policy-verdict.js'
import { readGpgKeyring, verifySimpleSigning } from './simple-signing.js'

type SignedBy = Extract<PolicyRequirement, { type: 'signedBy' }>

/**
 * A signedBy requirement: at least one simple-signing signature verifies with the trusted GPG
 * keys, covers this manifest and names an acceptable identity. Only `GPGKeys` (and its alias
 * `signedByGPGKeys`) are implemented; X.509 key types reject as unsupported, as in containers/image.
 */
export async function evaluateSignedBy(req: SignedBy, ctx: EvaluationContext): Promise<RequirementVerdict> {
  const reject = (
    reason: string,
    code: RequirementVerdict['code'] = 'ERR_SIGNATURE_INVALID',
  ): RequirementVerdict => ({
    type: 'signedBy',
    result: 'rejected',
    reason,
    code,
  })
  if (req.keyType !== 'GPGKeys' && req.keyType !== 'signedByGPGKeys') {
    return reject(`keyType ${req.keyType} is not supported`, 'ERR_SIGNATURE_UNSUPPORTED')
  }
  let keys: PublicKey[]
  try {
    const files = await ctx.keyBytes(req.keys)
    keys = []
    for (const [i, bytes] of files.entries()) {
      const name =
        req.keys.from === 'paths' ? `${req.keys.field} ${req.keys.paths[i]}` : `${req.keys.field}[${i}]`
      keys.push(...(await readGpgKeyring(bytes, name)))
    }
  } catch (err) {
    return reject(`cannot load the trusted keys: ${(err as Error).message}`)
  }
  const collected = await ctx.signatures()
  if (collected.problems.length > 0) return reject(`cannot read the signatures: ${collected.problems[0]}`)
  const candidates = collected.signatures.filter((s) => s.blob.kind === 'simple-signing')
  const failures: string[] = []
  for (const s of candidates) {
    if (s.blob.kind !== 'simple-signing') continue
    try {
      const v = await verifySimpleSigning(s.blob.bytes, keys, { what: s.origin, now: ctx.now })
      const problem = payloadProblem(ctx, v.payload, req.signedIdentity)
      if (problem !== undefined) {
        failures.push(`${s.origin}: ${problem}`)
        continue
      }
      const by = v.signingFingerprint === v.primaryFingerprint ? '' : ` (subkey ${v.signingFingerprint})`
      return {
        type: 'signedBy',
        result: 'accepted',
        reason: `signed by GPG key ${v.primaryFingerprint}${by} as ${v.payload.dockerReference}`,
        signature: s.origin,
        signer: v.primaryFingerprint,
      }
    } catch (err) {
      failures.push((err as Error).message)
    }
  }
  return reject(summarizeFailures(failures, candidates.length, 'simple-signing'))
}
