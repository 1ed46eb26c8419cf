import * as openpgp from 'openpgp'
import { OcipullError } from '../errors.js'
import { parseSignaturePayload, SIMPLE_SIGNING_TYPE, type SignaturePayload } from './signature-payload.js'

/** Signed messages, and the literal data inside a compressed one, are capped at this size. */
export const MAX_SIGNATURE_SIZE = 4 * 1024 * 1024

const pgpConfig = { maxDecompressedMessageSize: MAX_SIGNATURE_SIZE }

/**
 * Reads OpenPGP public keys from a keyring file or `keyData`: binary, or ASCII-armored (several
 * armored blocks may be concatenated). Throws ERR_SIGNATURE_INVALID when nothing can be read.
 */
export async function readGpgKeyring(bytes: Uint8Array, what: string): Promise<openpgp.PublicKey[]> {
  try {
    const text = Buffer.from(bytes).toString('latin1')
    const keys: openpgp.Key[] = []
    if (text.includes('-----BEGIN PGP ')) {
      const blocks = text.match(
        /-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g,
      )
      for (const armoredKeys of blocks ?? [])
        keys.push(...(await openpgp.readKeys({ armoredKeys, config: pgpConfig })))
    } else {
      keys.push(...(await openpgp.readKeys({ binaryKeys: bytes, config: pgpConfig })))
    }
    if (keys.length === 0) throw new Error('no public keys')
    return keys.map((k) => k.toPublic())
  } catch (err) {
    throw new OcipullError(
      'ERR_SIGNATURE_INVALID',
      `${what}: no public keys imported: ${(err as Error).message}`,
      {
        cause: err,
      },
    )
  }
}

export interface SimpleSigningVerified {
  payload: SignaturePayload
  /** Uppercase hex fingerprint of the primary key (what a policy trusts). */
  primaryFingerprint: string
  /** Uppercase hex fingerprint of the key that made the signature (a subkey, or the primary). */
  signingFingerprint: string
}

/**
 * Verifies a binary OpenPGP signed message (the simple-signing format) against trusted keys, then
 * parses the payload strictly. The message must carry exactly one signature, made by a trusted
 * key (a signing subkey counts for its primary key) that is neither revoked nor expired now,
 * and the signature itself must not be expired. V3 signature packets are not supported by
 * openpgp.js and are refused. Throws ERR_SIGNATURE_INVALID; no payload byte is trusted before the
 * signature checks out.
 */
export async function verifySimpleSigning(
  blob: Uint8Array,
  keys: readonly openpgp.PublicKey[],
  options: { what: string; now?: Date },
): Promise<SimpleSigningVerified> {
  const now = options.now ?? new Date()
  const fail = (problem: string, cause?: unknown): never => {
    throw new OcipullError('ERR_SIGNATURE_INVALID', `${options.what}: invalid GPG signature: ${problem}`, {
      cause,
    })
  }
  if (blob.byteLength > MAX_SIGNATURE_SIZE)
    fail(`${blob.byteLength} bytes exceeds the limit of ${MAX_SIGNATURE_SIZE}`)
  let message: openpgp.Message<Uint8Array>
  try {
    message = await openpgp.readMessage({ binaryMessage: blob, config: pgpConfig })
  } catch (err) {
    return fail(`not an OpenPGP message: ${(err as Error).message}`, err)
  }
  if (message.getEncryptionKeyIDs().length > 0) fail('the message is encrypted')
  let result: Awaited<ReturnType<typeof openpgp.verify<Uint8Array>>>
  try {
    result = await openpgp.verify({
      message,
      verificationKeys: [...keys],
      expectSigned: true,
      format: 'binary',
      date: now,
      config: pgpConfig,
    })
  } catch (err) {
    return fail((err as Error).message.replace(/^Error verifying signed message: /, ''), err)
  }
  if (result.signatures.length !== 1) fail(`want exactly one signature, got ${result.signatures.length}`)
  const sig = result.signatures[0]!
  try {
    await sig.verified
  } catch (err) {
    return fail((err as Error).message, err)
  }
  const key = keys.find((k) => k.getKeys(sig.keyID).length > 0)
  if (key === undefined) return fail(`signed by unknown key ${sig.keyID.toHex().toUpperCase()}`)
  let signingKey: Awaited<ReturnType<openpgp.PublicKey['getSigningKey']>>
  try {
    // openpgp.js checks the key as it was when the signature was made; gpgme (containers/image)
    // also refuses a key that is expired or revoked now, and so do we.
    signingKey = await key.getSigningKey(sig.keyID, now)
  } catch (err) {
    return fail(`key ${sig.keyID.toHex().toUpperCase()}: ${(err as Error).message}`, err)
  }
  const payload = parseSignaturePayload(result.data, { type: SIMPLE_SIGNING_TYPE, what: options.what })
  return {
    payload,
    primaryFingerprint: key.getFingerprint().toUpperCase(),
    signingFingerprint: signingKey.getFingerprint().toUpperCase(),
  }
}
