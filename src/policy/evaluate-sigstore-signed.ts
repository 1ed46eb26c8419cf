import type { KeyObject } from 'node:crypto'
import { type EvaluationContext, payloadProblem, summarizeFailures } from './evaluation-context.js'
import type { KeyMaterial, PolicyRequirement } from './policy-types.js'
import type { RequirementVerdict } from './policy-verdict.js'
import { COSIGN_SIGNATURE_MEDIA_TYPE } from './sigstore-attachments.js'
import { parseCertificates, parseSigstorePublicKey } from './sigstore-keys.js'
import { type SigstoreTrustMaterial, verifySigstoreSignature } from './sigstore-verify.js'

type SigstoreSigned = Extract<PolicyRequirement, { type: 'sigstoreSigned' }>

/**
 * A sigstoreSigned requirement: at least one cosign signature (media type
 * COSIGN_SIGNATURE_MEDIA_TYPE; other attachments are ignored) verifies with the trusted keys or
 * Fulcio CA (and Rekor SET when configured), covers this manifest and names an acceptable
 * identity. `pki` is parsed but not implemented yet: it rejects as unsupported.
 */
export async function evaluateSigstoreSigned(
  req: SigstoreSigned,
  ctx: EvaluationContext,
): Promise<RequirementVerdict> {
  const reject = (
    reason: string,
    code: RequirementVerdict['code'] = 'ERR_SIGNATURE_INVALID',
  ): RequirementVerdict => ({
    type: 'sigstoreSigned',
    result: 'rejected',
    reason,
    code,
  })
  if (req.trust.kind === 'pki')
    return reject('pki trust roots are not supported yet', 'ERR_SIGNATURE_UNSUPPORTED')
  let trust: SigstoreTrustMaterial
  let rekorKeys: KeyObject[] | undefined
  try {
    if (req.trust.kind === 'keys') {
      const material = req.trust.keys
      const bytes = await ctx.keyBytes(material)
      trust = { kind: 'keys', keys: bytes.map((b, i) => parseSigstorePublicKey(b, keyName(material, i))) }
    } else {
      const material = req.trust.ca
      const bytes = await ctx.keyBytes(material)
      trust = {
        kind: 'fulcio',
        roots: bytes.flatMap((b, i) => parseCertificates(b, keyName(material, i))),
        oidcIssuer: req.trust.oidcIssuer,
        subjectEmail: req.trust.subjectEmail,
      }
    }
    if (req.rekorPublicKeys !== undefined) {
      const material = req.rekorPublicKeys
      const bytes = await ctx.keyBytes(material)
      rekorKeys = bytes.map((b, i) => parseSigstorePublicKey(b, keyName(material, i), { ecdsaOnly: true }))
    }
  } catch (err) {
    return reject(`cannot load the trusted keys: ${(err as Error).message}`)
  }
  const collected = await ctx.signatures()
  if (collected.problems.length > 0) return reject(`cannot read the signatures: ${collected.problems[0]}`)
  const failures: string[] = []
  let count = 0
  for (const s of collected.signatures) {
    if (s.blob.kind !== 'sigstore' || s.blob.mimeType !== COSIGN_SIGNATURE_MEDIA_TYPE) continue
    count++
    try {
      const v = verifySigstoreSignature({
        payload: s.blob.payload,
        annotations: s.blob.annotations,
        trust,
        ...(rekorKeys === undefined ? {} : { rekorKeys }),
        what: s.origin,
      })
      const problem = payloadProblem(ctx, v.payload, req.signedIdentity)
      if (problem !== undefined) {
        failures.push(`${s.origin}: ${problem}`)
        continue
      }
      const rekor =
        v.integratedTime === undefined
          ? ''
          : `, in Rekor at ${new Date(v.integratedTime * 1000).toISOString()}`
      return {
        type: 'sigstoreSigned',
        result: 'accepted',
        reason: `signed by ${v.signer} as ${v.payload.dockerReference}${rekor}`,
        signature: s.origin,
        signer: v.signer,
      }
    } catch (err) {
      failures.push((err as Error).message)
    }
  }
  return reject(summarizeFailures(failures, count, 'sigstore'))
}

function keyName(material: KeyMaterial, i: number): string {
  return material.from === 'paths' ? `${material.field} ${material.paths[i]}` : `${material.field}[${i}]`
}
