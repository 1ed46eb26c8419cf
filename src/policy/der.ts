/**
 * Just enough DER to read X.509 extensions that Node's X509Certificate does not expose (the
 * Fulcio OIDC issuer). Bounds-checked; anything malformed returns undefined.
 */
export interface DerNode {
  tag: number
  /** The content bytes (without tag and length). */
  value: Uint8Array
}

/** Reads the TLV at `offset`; returns it and the offset after it. */
export function readDer(bytes: Uint8Array, offset = 0): { node: DerNode; end: number } | undefined {
  if (offset + 2 > bytes.length) return undefined
  const tag = bytes[offset]!
  if ((tag & 0x1f) === 0x1f) return undefined // multi-byte tags do not occur in certificates
  let length = bytes[offset + 1]!
  let at = offset + 2
  if (length & 0x80) {
    const n = length & 0x7f
    if (n === 0 || n > 4 || at + n > bytes.length) return undefined
    length = 0
    for (let i = 0; i < n; i++) length = length * 256 + bytes[at + i]!
    at += n
  }
  if (at + length > bytes.length) return undefined
  return { node: { tag, value: bytes.subarray(at, at + length) }, end: at + length }
}

/** The children of a constructed node (SEQUENCE, SET, context tags). */
export function derChildren(node: DerNode): DerNode[] | undefined {
  const out: DerNode[] = []
  for (let at = 0; at < node.value.length; ) {
    const r = readDer(node.value, at)
    if (r === undefined) return undefined
    out.push(r.node)
    at = r.end
  }
  return out
}

/** Dotted form of an OBJECT IDENTIFIER's content bytes. */
export function derOid(value: Uint8Array): string {
  const parts: number[] = []
  let n = 0
  for (const [i, b] of value.entries()) {
    n = n * 128 + (b & 0x7f)
    if (!(b & 0x80)) {
      if (parts.length === 0 && i >= 0) parts.push(n < 80 ? Math.floor(n / 40) : 2, n < 80 ? n % 40 : n - 80)
      else parts.push(n)
      n = 0
    }
  }
  return parts.join('.')
}

/** The extnValue (OCTET STRING content) of the certificate extension `oid`, if present. */
export function certificateExtension(certDer: Uint8Array, oid: string): Uint8Array | undefined {
  const cert = readDer(certDer)?.node
  const tbs = cert && derChildren(cert)?.[0]
  const fields = tbs && derChildren(tbs)
  const extsWrapper = fields?.find((f) => f.tag === 0xa3)
  const exts = extsWrapper && derChildren(extsWrapper)?.[0]
  for (const ext of (exts && derChildren(exts)) ?? []) {
    const parts = derChildren(ext)
    if (parts === undefined || parts[0]?.tag !== 0x06) continue
    if (derOid(parts[0].value) !== oid) continue
    const octets = parts[parts.length - 1]
    return octets?.tag === 0x04 ? octets.value : undefined
  }
  return undefined
}
