import type { KeySource } from '../keys/key-source.js'
import type { CollectedSignatures } from './collect-signatures.js'
import { matchSignedIdentity } from './match-identity.js'
import type { PolicyImage } from './policy-scopes.js'
import type { KeyMaterial, SignedIdentity } from './policy-types.js'
import { readResource } from './read-resource.js'
import { manifestMatchesDigest, type SignaturePayload } from './signature-payload.js'

/** Key files and keyrings larger than this are refused. */
export const MAX_KEY_FILE_SIZE = 4 * 1024 * 1024

/** What every requirement evaluator needs; built once per evaluatePolicy call. */
export interface EvaluationContext {
  image: PolicyImage
  manifestBytes: Uint8Array
  /** The index digest, when signatures over it are accepted too. */
  indexDigest?: string
  now: Date
  /** All signatures of the image, fetched once on first use. */
  signatures(): Promise<CollectedSignatures>
  /** The bytes of each key file or inline key, read once. */
  keyBytes(material: KeyMaterial): Promise<Uint8Array[]>
}

export function keyReader(options: { keySource?: KeySource; signal?: AbortSignal }) {
  const cache = new Map<string, Promise<Uint8Array>>()
  return async (material: KeyMaterial): Promise<Uint8Array[]> => {
    if (material.from === 'data') return [...material.data]
    return Promise.all(
      material.paths.map((path) => {
        let p = cache.get(path)
        if (p === undefined) {
          p = readResource(path, {
            maxBytes: MAX_KEY_FILE_SIZE,
            what: `${material.field} ${path}`,
            code: 'ERR_SIGNATURE_INVALID',
            ...(options.keySource === undefined ? {} : { keySource: options.keySource }),
            ...(options.signal === undefined ? {} : { signal: options.signal }),
          })
          cache.set(path, p)
        }
        return p
      }),
    )
  }
}

/**
 * The checks every verified payload must pass, in containers/image's order: the manifest digest
 * (the instance's, or the index's when allowed), then the identity. Returns a reason to reject,
 * or undefined.
 */
export function payloadProblem(
  ctx: EvaluationContext,
  payload: SignaturePayload,
  identity: SignedIdentity,
): string | undefined {
  const digestOk =
    manifestMatchesDigest(ctx.manifestBytes, payload.manifestDigest) ||
    (ctx.indexDigest !== undefined && payload.manifestDigest === ctx.indexDigest)
  if (!digestOk) return `signature is for manifest ${payload.manifestDigest}, not this image`
  if (!matchSignedIdentity(identity, ctx.image.docker, payload.dockerReference)) {
    return `signature for identity ${JSON.stringify(payload.dockerReference.slice(0, 300))} is not accepted (${identity.type})`
  }
  return undefined
}

/** `n reasons` summarized for a verdict: the first few in full. */
export function summarizeFailures(failures: string[], count: number, kind: string): string {
  if (count === 0) return `a ${kind} signature was required, but no signature exists`
  const shown = failures.slice(0, 4).join('; ')
  const more = failures.length > 4 ? `; and ${failures.length - 4} more` : ''
  return `none of ${count} ${kind} signature(s) is accepted: ${shown}${more}`
}
