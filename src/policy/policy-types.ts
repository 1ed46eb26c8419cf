/**
 * The parsed form of containers-policy.json(5). Plain data: `parsePolicy` builds it, and
 * `evaluatePolicy` reads it. Key files named by path are not read at parse time (as in
 * containers/image): they are loaded when a requirement that needs them is evaluated.
 */

/** Where key material comes from: files (paths or `file://`/`kbs://` URIs) or inline bytes. */
export type KeyMaterial =
  | { from: 'paths'; field: string; paths: readonly string[] }
  | { from: 'data'; field: string; data: readonly Uint8Array[] }

/** How the identity in a signature must relate to the image's reference (`signedIdentity`). */
export type SignedIdentity =
  | { type: 'matchExact' }
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchRepository' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string }

export type GpgKeyType = 'GPGKeys' | 'signedByGPGKeys' | 'X509Certificates' | 'signedByX509CAs'

/** What a sigstoreSigned requirement trusts: public keys, a Fulcio CA, or a private PKI. */
export type SigstoreTrust =
  | { kind: 'keys'; keys: KeyMaterial }
  | { kind: 'fulcio'; ca: KeyMaterial; oidcIssuer: string; subjectEmail: string }
  | {
      kind: 'pki'
      caRoots: KeyMaterial
      caIntermediates?: KeyMaterial
      subjectEmail?: string
      subjectHostname?: string
    }

export type PolicyRequirement =
  | { type: 'insecureAcceptAnything' }
  | { type: 'reject' }
  | { type: 'signedBy'; keyType: GpgKeyType; keys: KeyMaterial; signedIdentity: SignedIdentity }
  | {
      type: 'sigstoreSigned'
      trust: SigstoreTrust
      /** Rekor public keys: when present, every accepted signature needs a valid SET. */
      rekorPublicKeys?: KeyMaterial
      signedIdentity: SignedIdentity
    }
  | { type: 'signedBaseLayer'; baseLayerIdentity: SignedIdentity }

export type RequirementType = PolicyRequirement['type']

export interface Policy {
  /** Requirements for images no transport scope matches. Never empty. */
  readonly default: readonly PolicyRequirement[]
  /** transport name → scope → requirements (each list non-empty). */
  readonly transports: ReadonlyMap<string, ReadonlyMap<string, readonly PolicyRequirement[]>>
  /** Where the policy came from, for messages (a path, a URI, or `policy`). */
  readonly origin: string
}
