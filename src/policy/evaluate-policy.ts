import { type Digest, digestOf, parseDigest } from '../digest.js'
import { abortError, OcipullError } from '../errors.js'
import { formatImageName, type ImageName } from '../image-name.js'
import type { KeySource } from '../keys/key-source.js'
import type { Reference } from '../reference.js'
import { createHttpClient, type HttpClient } from '../registry/http-client.js'
import type { RegistryClient } from '../registry/registry-client.js'
import type { ImageSource } from '../sources/image-source.js'
import { type CollectedSignatures, collectSignatures } from './collect-signatures.js'
import { evaluateSignedBy } from './evaluate-signed-by.js'
import { evaluateSigstoreSigned } from './evaluate-sigstore-signed.js'
import { type EvaluationContext, keyReader } from './evaluation-context.js'
import { policyImage, requirementsFor } from './policy-scopes.js'
import type { Policy, PolicyRequirement } from './policy-types.js'
import type { PolicyVerdict, RequirementVerdict } from './policy-verdict.js'
import type { RegistriesD } from './registries-d.js'

export interface EvaluatePolicyOptions {
  policy: Policy
  /** The reference the user asked for (never a mirror or rewritten location): scopes and identities use it. */
  reference: ImageName | Reference
  /** The per-platform manifest being pulled, and its digest (checked against the bytes). */
  manifestDigest: Digest
  manifestBytes: Uint8Array
  /** The index the manifest was chosen from, if any. */
  indexDigest?: Digest
  /**
   * Also accept signatures made over `indexDigest` (image-rs does; containers/image does not).
   * Default false: signatures must cover the per-platform manifest.
   */
  acceptIndexSignatures?: boolean
  /** Where the manifest actually came from; recorded in the verdict. */
  source: Pick<ImageSource, 'name'>
  /**
   * Reads sigstore attachments: the client, and the repository the image was actually pulled
   * from (default: `reference`'s). Without it, attachments are not read.
   */
  registry?: { client: RegistryClient; repository?: Reference }
  /** registries.d: lookaside locations and `use-sigstore-attachments`. Without it, no lookaside. */
  registriesD?: RegistriesD
  /** Reads `kbs:///…` (and other URI) key paths. */
  keySource?: KeySource
  /** HTTP client for http(s) lookaside; by default one is created (environment proxies) and closed. */
  http?: HttpClient
  signal?: AbortSignal
  /** Key expiry and revocation are judged at this time (default: now). */
  now?: Date
}

/**
 * Decides whether the policy accepts an image, before any layer is fetched. Picks the most
 * specific scope for the user's reference; every requirement of it must accept. Signatures are
 * fetched once, only if a requirement needs them: lookaside GETs (one per signature, plus one) and,
 * when enabled, one attachment manifest plus one blob per cosign signature. Returns a verdict
 * for every requirement; throws only for bad input (ERR_DIGEST_MISMATCH when the bytes do not
 * match `manifestDigest`) and for network or server failures while fetching signatures.
 * `assertPolicyAccepted(verdict)` turns a rejection into ERR_POLICY_REJECTED.
 */
export async function evaluatePolicy(options: EvaluatePolicyOptions): Promise<PolicyVerdict> {
  const { policy, signal } = options
  const imageText =
    'transport' in options.reference
      ? formatImageName(options.reference)
      : formatImageName({ transport: 'docker', reference: options.reference })
  const { algorithm } = parseDigest(options.manifestDigest, `${imageText}: manifest digest`)
  if (digestOf(options.manifestBytes, algorithm) !== options.manifestDigest) {
    throw new OcipullError(
      'ERR_DIGEST_MISMATCH',
      `${imageText}: manifest bytes do not match ${options.manifestDigest}`,
    )
  }
  const image = policyImage(options.reference)
  const match = requirementsFor(policy, image)
  const warnings: string[] = []
  let http: HttpClient | undefined = options.http
  const ownHttp = options.http === undefined
  let collected: Promise<CollectedSignatures> | undefined
  const repository =
    options.registry?.repository ??
    ('transport' in options.reference ? dockerRef(options.reference) : options.reference)
  const ctx: EvaluationContext = {
    image,
    manifestBytes: options.manifestBytes,
    ...(options.acceptIndexSignatures && options.indexDigest !== undefined
      ? { indexDigest: options.indexDigest }
      : {}),
    now: options.now ?? new Date(),
    keyBytes: keyReader({
      ...(options.keySource === undefined ? {} : { keySource: options.keySource }),
      ...(signal === undefined ? {} : { signal }),
    }),
    signatures: () => {
      collected ??= collectSignatures({
        image,
        digests:
          ctx.indexDigest === undefined
            ? [options.manifestDigest]
            : [options.manifestDigest, ctx.indexDigest],
        ...(options.registriesD === undefined ? {} : { registriesD: options.registriesD }),
        ...(options.registry === undefined || repository === undefined
          ? {}
          : { registry: { client: options.registry.client, repository } }),
        transport: (req) => {
          http ??= createHttpClient()
          return http.request(req)
        },
        ...(signal === undefined ? {} : { signal }),
        onWarning: (w) => warnings.push(w),
      })
      return collected
    },
  }
  const requirements: RequirementVerdict[] = []
  try {
    for (const req of match.requirements) {
      if (signal?.aborted) throw abortError(signal, `${imageText}: policy`)
      requirements.push(await evaluateRequirement(req, ctx))
    }
  } finally {
    if (ownHttp) await http?.close()
  }
  const verdict: PolicyVerdict = {
    accepted: requirements.every((r) => r.result === 'accepted'),
    image: imageText,
    manifestDigest: options.manifestDigest,
    policy: policy.origin,
    scope: { transport: match.transport, ...(match.scope === undefined ? {} : { scope: match.scope }) },
    requirements,
    source: options.source.name,
    warnings,
  }
  if (collected !== undefined) {
    const c = await collected
    if (c.sources.length > 0) verdict.signatureSource = [...new Set(c.sources)].join(', ')
    if (c.ignoredAttachments > 0) warnings.push(`${c.ignoredAttachments} non-signature attachment(s) ignored`)
  }
  return verdict
}

async function evaluateRequirement(
  req: PolicyRequirement,
  ctx: EvaluationContext,
): Promise<RequirementVerdict> {
  switch (req.type) {
    case 'insecureAcceptAnything':
      return { type: req.type, result: 'accepted', reason: 'accepts anything (no signature checked)' }
    case 'reject':
      return { type: req.type, result: 'rejected', reason: 'rejected by policy', code: 'ERR_POLICY_REJECTED' }
    case 'signedBaseLayer':
      return {
        type: req.type,
        result: 'rejected',
        reason: 'signedBaseLayer is not implemented (containers/image rejects it too)',
        code: 'ERR_SIGNATURE_UNSUPPORTED',
      }
    case 'signedBy':
      return evaluateSignedBy(req, ctx)
    case 'sigstoreSigned':
      return evaluateSigstoreSigned(req, ctx)
  }
}

function dockerRef(name: ImageName): Reference | undefined {
  return name.transport === 'docker' ? name.reference : undefined
}
