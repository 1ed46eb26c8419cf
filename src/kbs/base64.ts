/** Strict decoders: Node's Buffer.from(…, 'base64') skips bad characters, which hides tampering. */

/** Decodes unpadded base64url strictly (no padding, no other alphabet); undefined when malformed. */
export function base64urlBytes(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined
  const bytes = Buffer.from(text, 'base64url')
  return bytes.toString('base64url') === text ? bytes : undefined
}

/** Decodes standard padded base64 strictly; undefined when malformed. */
export function base64Bytes(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined
  const bytes = Buffer.from(text, 'base64')
  return bytes.toString('base64') === text ? bytes : undefined
}
