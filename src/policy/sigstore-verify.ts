import { type KeyObject, verify, type X509Certificate } from 'node:crypto'
import { OcipullError } from '../errors.js'
import { certificateExtension, readDer } from './der.js'
import { verifyRekorSet } from './rekor-set.js'
import { COSIGN_SIGNATURE_TYPE, parseSignaturePayload, type SignaturePayload } from './signature-payload.js'
import { parseCertificates } from './sigstore-keys.js'

export const ANNOTATION_SIGNATURE = 'dev.cosignproject.cosign/signature'
export const ANNOTATION_CERTIFICATE = 'dev.sigstore.cosign/certificate'
export const ANNOTATION_CHAIN = 'dev.sigstore.cosign/chain'
export const ANNOTATION_BUNDLE = 'dev.sigstore.cosign/bundle'

const OID_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1'
const OID_ISSUER_V2 = '1.3.6.1.4.1.57264.1.8'
const EKU_CODE_SIGNING = '1.3.6.1.5.5.7.3.3'
const MAX_CHAIN = 10

/** What a sigstoreSigned requirement trusts, with its key material already loaded. */
export type SigstoreTrustMaterial =
  | { kind: 'keys'; keys: readonly KeyObject[] }
  | { kind: 'fulcio'; roots: readonly X509Certificate[]; oidcIssuer: string; subjectEmail: string }

export interface SigstoreVerified {
  payload: SignaturePayload
  /** Who signed: `key N` or the certificate's subject (email). */
  signer: string
  /** Rekor's integratedTime when a SET was verified. */
  integratedTime?: number
}

/**
 * Verifies one cosign signature attachment: the base64 signature annotation over the exact
 * payload bytes (SHA-256; ECDSA DER, RSA PKCS#1 v1.5 or Ed25519) with a trusted key or a Fulcio
 * certificate, the Rekor SET when Rekor keys are given (mandatory for Fulcio), and only then the
 * payload JSON. Throws ERR_SIGNATURE_INVALID.
 */
export function verifySigstoreSignature(input: {
  payload: Uint8Array
  annotations: Readonly<Record<string, string>>
  trust: SigstoreTrustMaterial
  rekorKeys?: readonly KeyObject[]
  what: string
}): SigstoreVerified {
  const { what } = input
  const fail = (problem: string): never => {
    throw new OcipullError('ERR_SIGNATURE_INVALID', `${what}: ${problem}`)
  }
  const sigText = input.annotations[ANNOTATION_SIGNATURE]
  if (sigText === undefined) return fail(`missing annotation ${ANNOTATION_SIGNATURE}`)
  const compact = sigText.replace(/[\r\n]/g, '')
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact))
    fail('signature annotation is not base64')
  const signature = new Uint8Array(Buffer.from(compact, 'base64'))
  const bundle = input.annotations[ANNOTATION_BUNDLE]
  let signer: string
  let integratedTime: number | undefined

  if (input.trust.kind === 'keys') {
    const index = input.trust.keys.findIndex((k) => verifyWith(k, input.payload, signature))
    const key = input.trust.keys[index]
    if (key === undefined) return fail('cryptographic signature verification failed with every trusted key')
    signer = `trusted key ${index + 1}`
    if (input.rekorKeys !== undefined) {
      if (bundle === undefined) fail(`a Rekor SET is required but annotation ${ANNOTATION_BUNDLE} is missing`)
      integratedTime = verifyRekorSet({
        bundle: bundle!,
        rekorKeys: input.rekorKeys,
        payload: input.payload,
        signature,
        signerDer: key.export({ type: 'spki', format: 'der' }),
        what,
      })
    }
  } else {
    const trust = input.trust
    if (input.rekorKeys === undefined) return fail('fulcio requires Rekor keys')
    if (bundle === undefined)
      return fail(`a Rekor SET is required but annotation ${ANNOTATION_BUNDLE} is missing`)
    const certText = input.annotations[ANNOTATION_CERTIFICATE]
    if (certText === undefined) return fail(`missing annotation ${ANNOTATION_CERTIFICATE}`)
    const leaves = parseCertificates(certText, `${what}: certificate`)
    if (leaves.length !== 1) fail(`want exactly one certificate, got ${leaves.length}`)
    const leaf = leaves[0]!
    // 1. The SET fixes the time at which the short-lived certificate must have been valid.
    integratedTime = verifyRekorSet({
      bundle,
      rekorKeys: input.rekorKeys,
      payload: input.payload,
      signature,
      signerDer: leaf.raw,
      what,
    })
    const at = new Date(integratedTime * 1000)
    // 2. Chain to a trusted root at that time; the chain annotation's last entry is the root.
    const chainText = input.annotations[ANNOTATION_CHAIN]
    const chain = chainText === undefined ? [] : parseCertificates(chainText, `${what}: chain`)
    verifyChain(leaf, chain.slice(0, -1), trust.roots, at, fail)
    // 3. Identity: OIDC issuer extension and email SAN.
    const issuer = oidcIssuer(leaf, fail)
    if (issuer !== trust.oidcIssuer) fail(`certificate OIDC issuer ${JSON.stringify(issuer)} is not trusted`)
    const emails = sanEmails(leaf)
    if (!emails.includes(trust.subjectEmail)) {
      fail(
        `certificate subject ${JSON.stringify(emails.join(', '))} is not ${JSON.stringify(trust.subjectEmail)}`,
      )
    }
    // 4. The payload signature itself, with the certificate's key.
    if (!verifyWith(leaf.publicKey, input.payload, signature))
      fail('signature does not verify with the certificate')
    signer = `${trust.subjectEmail} (${issuer})`
  }
  const payload = parseSignaturePayload(input.payload, { type: COSIGN_SIGNATURE_TYPE, what })
  return { payload, signer, ...(integratedTime === undefined ? {} : { integratedTime }) }
}

function verifyWith(key: KeyObject, payload: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', payload, key, signature)
  } catch {
    return false
  }
}

/** leaf → intermediates → a trusted root, every certificate valid at `at`, codeSigning on the way. */
function verifyChain(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  at: Date,
  fail: (problem: string) => never,
): void {
  const validAt = (c: X509Certificate) => new Date(c.validFrom) <= at && at <= new Date(c.validTo)
  const signedBy = (c: X509Certificate, issuer: X509Certificate) => {
    try {
      return issuer.ca && c.checkIssued(issuer) && c.verify(issuer.publicKey)
    } catch {
      return false
    }
  }
  const ekuAllows = (c: X509Certificate) => {
    const eku = c.keyUsage
    return eku === undefined || eku.includes(EKU_CODE_SIGNING) || eku.includes('2.5.29.37.0')
  }
  if (!validAt(leaf)) fail(`certificate was not valid at ${at.toISOString()}`)
  if (leaf.keyUsage === undefined || !leaf.keyUsage.includes(EKU_CODE_SIGNING)) {
    fail('certificate is not for code signing')
  }
  let current = leaf
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    const root = roots.find((r) => signedBy(current, r))
    if (root !== undefined) {
      if (!validAt(root)) fail(`root ${root.subject} was not valid at ${at.toISOString()}`)
      return
    }
    const next = intermediates.find((c) => c !== current && signedBy(current, c))
    if (next === undefined) break
    if (!validAt(next) || !ekuAllows(next))
      fail(`intermediate ${next.subject} is not valid for this signature`)
    current = next
  }
  fail('certificate does not chain to a trusted Fulcio root')
}

/** The Fulcio OIDC issuer: v1 extension (raw string) and/or v2 (DER UTF8String); both must agree. */
function oidcIssuer(cert: X509Certificate, fail: (problem: string) => never): string {
  const v1 = certificateExtension(cert.raw, OID_ISSUER_V1)
  const v2raw = certificateExtension(cert.raw, OID_ISSUER_V2)
  const v1s = v1 === undefined ? undefined : Buffer.from(v1).toString('utf8')
  let v2s: string | undefined
  if (v2raw !== undefined) {
    const node = readDer(v2raw)?.node
    if (node === undefined || node.tag !== 0x0c) fail('OIDC issuer (v2) extension is not a UTF8String')
    v2s = Buffer.from(node!.value).toString('utf8')
  }
  if (v1s !== undefined && v2s !== undefined && v1s !== v2s) fail('OIDC issuer extensions disagree')
  const issuer = v2s ?? v1s
  if (issuer === undefined) return fail('certificate has no OIDC issuer extension')
  return issuer
}

function sanEmails(cert: X509Certificate): string[] {
  const san = cert.subjectAltName
  if (san === undefined) return []
  return san
    .split(/,\s*/)
    .filter((p) => p.startsWith('email:'))
    .map((p) => p.slice('email:'.length))
}
