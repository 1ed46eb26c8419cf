import { createDecipheriv } from 'node:crypto'
import { OcipullError } from '../errors.js'
import { describe, FieldReader, parseJson } from '../json-fields.js'
import { decodeBase64 } from './strict-base64.js'

/**
 * CoCo's attestation-agent annotation packet, the decoded value of
 * `org.opencontainers.image.enc.keys.provider.attestation-agent`: the private options wrapped
 * under a KEK that the KBS (or another key source) serves for `kid`. v1 has kid, wrapped_data,
 * iv and wrap_type; v2 adds version, provider, provider_settings and annotations (a v1 packet is
 * a v2 packet with the defaults).
 */
export interface AnnotationPacket {
  version: string
  kid: string
  wrappedData: Buffer
  /** Only `kbs` is unwrapped in-process (KEK from the key source); other KMS providers are not. */
  provider: string
  iv: Buffer | undefined
  wrapType: 'A256GCM' | 'A256CTR' | undefined
}

const VERSION = '0.1.0'
const GCM_TAG = 16

/** Parses the packet JSON strictly (unknown members are ignored, as serde does). ERR_MANIFEST_INVALID. */
export function parseAnnotationPacket(json: Uint8Array, what: string): AnnotationPacket {
  const code = 'ERR_MANIFEST_INVALID'
  const r = new FieldReader(code, what)
  const o = r.object(parseJson(json, code, what), '')
  const version = r.optionalString(o, 'version', '') ?? VERSION
  const kid = r.string(o, 'kid', '')
  const provider = r.optionalString(o, 'provider', '') ?? 'kbs'
  const wrappedData = decodeBase64(r.string(o, 'wrapped_data', ''), code, `${what}: wrapped_data`)
  const ivText = r.optionalString(o, 'iv', '')
  const iv = ivText === undefined ? undefined : decodeBase64(ivText, code, `${what}: iv`)
  const wrapText = r.optionalString(o, 'wrap_type', '')
  if (wrapText !== undefined && wrapText !== 'A256GCM' && wrapText !== 'A256CTR') {
    r.fail('wrap_type', `want A256GCM or A256CTR, got ${describe(wrapText)}`)
  }
  const wrapType = wrapText as AnnotationPacket['wrapType']
  for (const key of ['provider_settings', 'annotations']) {
    if (o[key] !== undefined && o[key] !== null) r.object(o[key], key)
  }
  if (provider === 'kbs') {
    if (version !== VERSION) r.fail('version', `want ${VERSION}, got ${describe(version)}`)
    if (iv === undefined) r.fail('iv', 'missing')
    if (wrapType === undefined) r.fail('wrap_type', 'missing')
  }
  return { version, kid, wrappedData, provider, iv, wrapType }
}

/**
 * Unwraps the packet's private options with its KEK (32 bytes): AES-256-GCM with a 12-byte IV
 * and the 16-byte tag appended to the ciphertext, or AES-256-CTR with a 16-byte IV (no
 * integrity; the layer's HMAC and digest checks still apply). ERR_KEY_INVALID when the KEK does
 * not fit.
 */
export function unwrapAnnotationPacket(packet: AnnotationPacket, kek: Uint8Array, what: string): Buffer {
  if (kek.length !== 32) {
    throw new OcipullError(
      'ERR_KEY_INVALID',
      `${what}: the key for ${packet.kid} is ${kek.length} bytes, want 32`,
    )
  }
  const { iv, wrappedData } = packet
  if (packet.wrapType === 'A256CTR') {
    if (iv?.length !== 16)
      throw new OcipullError('ERR_MANIFEST_INVALID', `${what}: iv: want 16 bytes for A256CTR`)
    const decipher = createDecipheriv('aes-256-ctr', kek, iv)
    return Buffer.concat([decipher.update(wrappedData), decipher.final()])
  }
  if (iv?.length !== 12)
    throw new OcipullError('ERR_MANIFEST_INVALID', `${what}: iv: want 12 bytes for A256GCM`)
  if (wrappedData.length < GCM_TAG) {
    throw new OcipullError('ERR_MANIFEST_INVALID', `${what}: wrapped_data: shorter than the GCM tag`)
  }
  const decipher = createDecipheriv('aes-256-gcm', kek, iv)
  decipher.setAuthTag(wrappedData.subarray(wrappedData.length - GCM_TAG))
  try {
    return Buffer.concat([
      decipher.update(wrappedData.subarray(0, wrappedData.length - GCM_TAG)),
      decipher.final(),
    ])
  } catch (err) {
    throw new OcipullError(
      'ERR_KEY_INVALID',
      `${what}: the key for ${packet.kid} does not unwrap it (GCM tag mismatch)`,
      {
        cause: err,
      },
    )
  }
}
