import { OcipullError } from '../errors.js'
import { isJsonObject, jsonType, parseStrictJson } from './strict-json.js'

/** A signature as stored in lookaside or a `dir:` image: simple signing, or sigstore JSON. */
export type SignatureBlob =
  | { kind: 'simple-signing'; bytes: Uint8Array }
  | { kind: 'sigstore'; mimeType: string; payload: Uint8Array; annotations: Record<string, string> }

/**
 * Classifies a stored signature the way containers/image's FromBlob does: a binary OpenPGP
 * message by its first byte (a compressed, one-pass-signature or signature packet), or
 * `\0<format>\n` followed by `simple-signing` bytes or `sigstore-json`. Anything else, ASCII
 * armor and clearsigned text included, is ERR_SIGNATURE_INVALID: gpgme would accept armor, but
 * containers/image refuses it before gpgme sees it, and so do we.
 */
export function parseSignatureBlob(bytes: Uint8Array, what: string): SignatureBlob {
  const first = bytes[0]
  if (first === undefined) throw new OcipullError('ERR_SIGNATURE_INVALID', `${what}: empty signature`)
  if (isOpenPgpStart(first)) return { kind: 'simple-signing', bytes }
  if (first === 0) {
    const newline = bytes.indexOf(0x0a)
    const format = newline < 0 ? '' : Buffer.from(bytes.subarray(1, newline)).toString('latin1')
    const rest = bytes.subarray(newline + 1)
    if (format === 'simple-signing') return { kind: 'simple-signing', bytes: rest }
    if (format === 'sigstore-json') return parseSigstoreJson(rest, what)
    throw new OcipullError(
      'ERR_SIGNATURE_INVALID',
      `${what}: unrecognized signature format ${JSON.stringify(format.slice(0, 40))}`,
    )
  }
  throw new OcipullError(
    'ERR_SIGNATURE_INVALID',
    `${what}: unrecognized signature format, starting with byte 0x${first.toString(16).padStart(2, '0')}` +
      (first === 0x2d ? ' (ASCII-armored or clearsigned signatures are not accepted)' : ''),
  )
}

/** Old- and new-format packet tags 8 (compressed), 4 (one-pass signature) and 2 (signature). */
function isOpenPgpStart(b: number): boolean {
  return (
    (b >= 0xa0 && b <= 0xa3) ||
    b === 0xc8 ||
    (b >= 0x90 && b <= 0x93) ||
    b === 0xc4 ||
    (b >= 0x88 && b <= 0x8b) ||
    b === 0xc2
  )
}

function parseSigstoreJson(bytes: Uint8Array, what: string): SignatureBlob {
  const fail = (problem: string): never => {
    throw new OcipullError('ERR_SIGNATURE_INVALID', `${what}: sigstore-json: ${problem}`)
  }
  const doc = parseStrictJson(bytes, {
    code: 'ERR_SIGNATURE_INVALID',
    what: `${what}: sigstore-json`,
    maxDepth: 8,
  })
  if (!isJsonObject(doc)) return fail(`want an object, got ${jsonType(doc)}`)
  for (const k of Object.keys(doc)) {
    if (k !== 'mimeType' && k !== 'payload' && k !== 'annotations') fail(`unknown key ${JSON.stringify(k)}`)
  }
  const { mimeType, payload, annotations } = doc
  if (typeof mimeType !== 'string') return fail('mimeType: want a string')
  if (typeof payload !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(payload) || payload.length % 4 !== 0) {
    return fail('payload: want standard base64')
  }
  const out: Record<string, string> = {}
  if (annotations !== undefined && annotations !== null) {
    if (!isJsonObject(annotations)) return fail('annotations: want an object')
    for (const [k, v] of Object.entries(annotations)) {
      if (typeof v !== 'string') fail(`annotations.${k}: want a string`)
      else out[k] = v
    }
  }
  return {
    kind: 'sigstore',
    mimeType,
    payload: new Uint8Array(Buffer.from(payload, 'base64')),
    annotations: out,
  }
}
