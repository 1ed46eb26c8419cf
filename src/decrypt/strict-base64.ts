import { type ErrorCode, OcipullError } from '../errors.js'

const STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * Decodes standard, padded base64 (RFC 4648 §4), the encoding of Go's `[]byte` in JSON and of
 * ocicrypt's annotations. Node's own decoder skips any character it does not know; this one
 * refuses them, and refuses non-zero bits in the padding, so one value has one encoding.
 */
export function decodeBase64(text: string, code: ErrorCode, what: string): Buffer {
  if (!STD.test(text)) throw new OcipullError(code, `${what}: not standard padded base64`)
  const bytes = Buffer.from(text, 'base64')
  if (bytes.toString('base64') !== text) {
    throw new OcipullError(code, `${what}: not canonical base64 (stray bits in the padding)`)
  }
  return bytes
}
