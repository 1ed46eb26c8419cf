import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto'
import { OcipullError } from '../errors.js'

/**
 * Parses one PEM public key (SPKI `PUBLIC KEY`, or PKCS#1 `RSA PUBLIC KEY`) for sigstore
 * verification: ECDSA P-256/P-384/P-521, RSA (2048 bits or more) or Ed25519. Throws
 * ERR_SIGNATURE_INVALID naming `what`.
 */
export function parseSigstorePublicKey(
  pem: Uint8Array,
  what: string,
  options: { ecdsaOnly?: boolean } = {},
): KeyObject {
  let key: KeyObject
  try {
    key = createPublicKey({ key: Buffer.from(pem), format: 'pem' })
  } catch (err) {
    throw new OcipullError('ERR_SIGNATURE_INVALID', `${what}: not a PEM public key`, { cause: err })
  }
  const type = key.asymmetricKeyType
  const details = key.asymmetricKeyDetails
  const ok =
    (type === 'ec' && ['prime256v1', 'secp384r1', 'secp521r1'].includes(details?.namedCurve ?? '')) ||
    (!options.ecdsaOnly && type === 'rsa' && (details?.modulusLength ?? 0) >= 2048) ||
    (!options.ecdsaOnly && type === 'ed25519')
  if (!ok) {
    throw new OcipullError(
      'ERR_SIGNATURE_INVALID',
      `${what}: unsupported key type ${type}${details?.namedCurve ? ` ${details.namedCurve}` : ''}${options.ecdsaOnly ? ' (want ECDSA)' : ''}`,
    )
  }
  return key
}

/** Every CERTIFICATE block of a PEM bundle; at least one. */
export function parseCertificates(pem: Uint8Array | string, what: string): X509Certificate[] {
  const text = typeof pem === 'string' ? pem : Buffer.from(pem).toString('latin1')
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []
  if (blocks.length === 0) throw new OcipullError('ERR_SIGNATURE_INVALID', `${what}: no PEM certificate`)
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b)
    } catch (err) {
      throw new OcipullError('ERR_SIGNATURE_INVALID', `${what}: certificate ${i + 1} does not parse`, {
        cause: err,
      })
    }
  })
}
