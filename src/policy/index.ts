export { type CollectedSignatures, collectSignatures } from './collect-signatures.js'
export { type DockerNamed, formatDockerNamed, parseDockerNamed } from './docker-name.js'
export { type EvaluatePolicyOptions, evaluatePolicy } from './evaluate-policy.js'
export { type LookasideSignature, MAX_LOOKASIDE_SIGNATURES, readLookasideSignatures } from './lookaside.js'
export { matchSignedIdentity } from './match-identity.js'
export {
  type LoadPolicyOptions,
  loadPolicy,
  MAX_POLICY_SIZE,
  type ParsePolicyOptions,
  parsePolicy,
} from './parse-policy.js'
export {
  dockerNamespaces,
  type PolicyImage,
  policyImage,
  requirementsFor,
  type ScopeMatch,
} from './policy-scopes.js'
export type {
  GpgKeyType,
  KeyMaterial,
  Policy,
  PolicyRequirement,
  RequirementType,
  SignedIdentity,
  SigstoreTrust,
} from './policy-types.js'
export {
  assertPolicyAccepted,
  formatVerdict,
  type PolicyVerdict,
  type RequirementVerdict,
} from './policy-verdict.js'
export {
  type ContainersPolicyVerifierOptions,
  containersPolicyVerifier,
  type PolicyVerifier,
} from './policy-verifier.js'
export {
  builtinLookaside,
  loadRegistriesD,
  lookasideFor,
  parseRegistriesD,
  type RegistriesD,
  type RegistriesDEntry,
  useSigstoreAttachmentsFor,
} from './registries-d.js'
export { parseSignatureBlob, type SignatureBlob } from './signature-blob.js'
export { parseSignaturePayload, type SignaturePayload } from './signature-payload.js'
export { COSIGN_SIGNATURE_MEDIA_TYPE, readSigstoreAttachments } from './sigstore-attachments.js'
export { verifySigstoreSignature } from './sigstore-verify.js'
export { readGpgKeyring, verifySimpleSigning } from './simple-signing.js'
