import type { ImageName } from '../image-name.js'
import type { KeySource } from '../keys/key-source.js'
import type { Reference } from '../reference.js'
import type { RegistryClient } from '../registry/registry-client.js'
import { isRegistrySource } from '../registry/registry-source.js'
import type { ResolvedImage } from '../resolve-image.js'
import type { ImageSource } from '../sources/image-source.js'
import { evaluatePolicy } from './evaluate-policy.js'
import type { Policy } from './policy-types.js'
import type { PolicyVerdict } from './policy-verdict.js'
import type { RegistriesD } from './registries-d.js'

/**
 * Decides whether a resolved image may be pulled, before any layer byte is fetched (pullImage
 * calls it after resolving the manifest, for images in the store too). Returns the verdict;
 * the caller rejects with `assertPolicyAccepted`.
 */
export interface PolicyVerifier {
  verify(
    image: ResolvedImage,
    source: ImageSource,
    options?: { signal?: AbortSignal },
  ): Promise<PolicyVerdict>
}

export interface ContainersPolicyVerifierOptions {
  policy: Policy
  /** The reference the user asked for: scopes and signed identities are matched against it. */
  reference: ImageName | Reference
  registriesD?: RegistriesD
  /**
   * Reads sigstore attachments. Default: through the registry source the image came from, in the
   * repository that actually served it (a mirror's, when a mirror did).
   */
  registry?: { client: RegistryClient; repository?: Reference }
  keySource?: KeySource
  /** Also accept signatures over the index digest (image-rs); default false (containers/image). */
  acceptIndexSignatures?: boolean
}

/** The containers-policy.json verifier (evaluate-policy.ts) as a PolicyVerifier. */
export function containersPolicyVerifier(options: ContainersPolicyVerifierOptions): PolicyVerifier {
  return {
    verify: (image, source, call = {}) => {
      const registry =
        options.registry ??
        (isRegistrySource(source) && source.client !== undefined
          ? {
              client: source.client,
              ...(source.location ? { repository: source.location.location } : {}),
            }
          : undefined)
      return evaluatePolicy({
        policy: options.policy,
        reference: options.reference,
        manifestDigest: image.digest,
        manifestBytes: image.manifestBytes,
        ...(image.index === undefined ? {} : { indexDigest: image.index.digest }),
        acceptIndexSignatures: options.acceptIndexSignatures === true,
        source,
        ...(registry ? { registry } : {}),
        ...(options.registriesD ? { registriesD: options.registriesD } : {}),
        ...(options.keySource ? { keySource: options.keySource } : {}),
        ...(call.signal ? { signal: call.signal } : {}),
      })
    },
  }
}
