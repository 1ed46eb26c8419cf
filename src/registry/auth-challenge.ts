/** One challenge from a `WWW-Authenticate` header (RFC 7235). */
export interface AuthChallenge {
  /** The auth-scheme, lowercased, e.g. `bearer`. */
  scheme: string
  /** The auth-params with lowercased names; the first occurrence of a name wins. */
  params: Record<string, string>
  /** The token68 form (`Negotiate abc==`), when the challenge has one instead of params. */
  token68?: string
}

/** The parts of a Bearer challenge a token request needs (Docker token authentication). */
export interface BearerChallenge {
  realm: URL
  service?: string
  scope?: string
}

/**
 * Parses `WWW-Authenticate` header values: several challenges per value separated by commas,
 * auth-params with token or quoted-string values, token68, optional whitespace. Never throws:
 * a malformed challenge is dropped and parsing resumes at the next comma outside quotes.
 * Runs in time linear in the input (every scan moves forward; lookaheads are re-read at most once).
 */
export function parseAuthChallenges(header: string | readonly string[] | undefined): AuthChallenge[] {
  const out: AuthChallenge[] = []
  const values = typeof header === 'string' ? [header] : Array.isArray(header) ? header : []
  for (const value of values) {
    if (typeof value === 'string') parseValue(value, out)
  }
  return out
}

/**
 * The first Bearer challenge, if its realm is an absolute http(s) URL without user info,
 * whitespace, control characters or backslashes; otherwise undefined. Empty service and
 * scope params are left out. Whether an http realm may receive credentials is the caller's call.
 */
export function bearerChallenge(challenges: readonly AuthChallenge[]): BearerChallenge | undefined {
  const challenge = challenges.find((c) => c.scheme === 'bearer')
  const text = challenge?.params['realm']
  if (challenge === undefined || text === undefined) return undefined
  if (!/^https?:\/\/[^\s\\/?#@]/i.test(text) || /[\u0000-\u0020\u007f-\u00a0\\]/.test(text)) return undefined
  let realm: URL
  try {
    realm = new URL(text)
  } catch {
    return undefined
  }
  if (realm.protocol !== 'https:' && realm.protocol !== 'http:') return undefined
  if (realm.hostname === '' || realm.username !== '' || realm.password !== '') return undefined
  const result: BearerChallenge = { realm }
  const service = challenge.params['service']
  const scope = challenge.params['scope']
  if (service !== undefined && service !== '') result.service = service
  if (scope !== undefined && scope !== '') result.scope = scope
  return result
}

// tchar from RFC 9110: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
const TCHAR_PUNCT = "!#$%&'*+-.^_`|~"
// token68 without its trailing "=" padding: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"
const TOKEN68_PUNCT = '-._~+/'

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
}

function isTchar(s: string, i: number): boolean {
  const c = s.charCodeAt(i)
  return isAlnum(c) || (c < 0x80 && TCHAR_PUNCT.includes(s[i]!))
}

function isToken68Char(s: string, i: number): boolean {
  const c = s.charCodeAt(i)
  return isAlnum(c) || (c < 0x80 && TOKEN68_PUNCT.includes(s[i]!))
}

function isWs(s: string, i: number): boolean {
  return s[i] === ' ' || s[i] === '\t'
}

function skipWs(s: string, i: number): number {
  while (i < s.length && isWs(s, i)) i++
  return i
}

/** Skips whitespace and empty list elements (RFC 9110 #rule allows `a, , b`). */
function skipSeparators(s: string, i: number): number {
  while (i < s.length && (isWs(s, i) || s[i] === ',')) i++
  return i
}

function scanToken(s: string, i: number): number {
  while (i < s.length && isTchar(s, i)) i++
  return i
}

function scanToken68(s: string, i: number): number {
  const start = i
  while (i < s.length && isToken68Char(s, i)) i++
  if (i === start) return start
  while (s[i] === '=') i++
  return i
}

/**
 * Reads a quoted-string starting at the opening quote. Returns its unescaped value (undefined
 * when it holds a control character) and the index after the closing quote (s.length if unclosed).
 */
function scanQuoted(s: string, i: number): { value: string | undefined; end: number; closed: boolean } {
  let value = ''
  let valid = true
  i++
  while (i < s.length) {
    const ch = s[i]!
    if (ch === '"') return { value: valid ? value : undefined, end: i + 1, closed: true }
    if (ch === '\\') {
      i++
      if (i >= s.length) break
    }
    const c = s.charCodeAt(i)
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) valid = false
    else value += s[i]
    i++
  }
  return { value: undefined, end: s.length, closed: false }
}

/** Index of the next comma outside a quoted string, or s.length. */
function skipElement(s: string, i: number): number {
  while (i < s.length && s[i] !== ',') {
    i = s[i] === '"' ? scanQuoted(s, i).end : i + 1
  }
  return i
}

/** True when `name BWS "="` starts at i, i.e. an auth-param rather than a new challenge's scheme. */
function startsParam(s: string, i: number): boolean {
  const end = scanToken(s, i)
  if (end === i) return false
  return s[skipWs(s, end)] === '='
}

function parseValue(s: string, out: AuthChallenge[]): void {
  let i = 0
  while (i < s.length) {
    i = skipSeparators(s, i)
    if (i >= s.length) break
    const schemeEnd = scanToken(s, i)
    if (schemeEnd === i) {
      i = skipElement(s, i)
      continue
    }
    const challenge: AuthChallenge = {
      scheme: s.slice(i, schemeEnd).toLowerCase(),
      params: Object.create(null) as Record<string, string>,
    }
    const afterWs = skipWs(s, schemeEnd)
    if (afterWs >= s.length || s[afterWs] === ',') {
      out.push(challenge)
      i = afterWs
      continue
    }
    if (afterWs === schemeEnd) {
      // the scheme runs straight into something that is not a token character
      i = skipElement(s, schemeEnd)
      continue
    }
    const t68End = scanToken68(s, afterWs)
    if (t68End > afterWs) {
      const next = skipWs(s, t68End)
      if (next >= s.length || s[next] === ',') {
        challenge.token68 = s.slice(afterWs, t68End)
        out.push(challenge)
        i = next
        continue
      }
    }
    const result = parseParams(s, afterWs, challenge.params)
    if (result.ok) out.push(challenge)
    i = result.next
  }
}

/** Parses `name = value` pairs until the list moves on to a new challenge, the end, or an error. */
function parseParams(s: string, i: number, params: Record<string, string>): { ok: boolean; next: number } {
  for (;;) {
    const nameEnd = scanToken(s, i)
    if (nameEnd === i) return { ok: false, next: skipElement(s, i) }
    const name = s.slice(i, nameEnd).toLowerCase()
    let j = skipWs(s, nameEnd)
    if (s[j] !== '=') return { ok: false, next: skipElement(s, j) }
    j = skipWs(s, j + 1)
    let value: string | undefined
    if (s[j] === '"') {
      const quoted = scanQuoted(s, j)
      value = quoted.value
      j = quoted.end
    } else {
      const valueEnd = scanToken(s, j)
      if (valueEnd > j) value = s.slice(j, valueEnd)
      j = valueEnd
    }
    if (value === undefined) return { ok: false, next: skipElement(s, j) }
    if (!Object.hasOwn(params, name)) params[name] = value
    j = skipWs(s, j)
    if (j >= s.length) return { ok: true, next: j }
    if (s[j] !== ',') return { ok: false, next: skipElement(s, j) }
    const k = skipSeparators(s, j)
    if (k >= s.length || !startsParam(s, k)) return { ok: true, next: k }
    i = k
  }
}
