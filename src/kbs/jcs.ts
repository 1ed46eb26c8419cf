/**
 * RFC 8785 JSON canonicalization (JCS): object members sorted by their UTF-16 code units,
 * no whitespace, numbers and strings serialized as ECMAScript's JSON.stringify does (which is
 * what RFC 8785 specifies). The KBS hashes this form of the runtime data, so client and server
 * must produce the same bytes. Throws TypeError for values JSON cannot hold.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${value} is not a JSON number`)
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (typeof value === 'object') {
    const members = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    // Default sort compares UTF-16 code units, which is the order RFC 8785 prescribes.
    members.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${members.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  throw new TypeError(`canonicalJson: a ${typeof value} is not JSON`)
}
