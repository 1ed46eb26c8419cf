import { type ErrorCode, OcipullError } from '../errors.js'

/** A JSON number as written, kept as text so that callers can insist on an integer (Go's int64). */
export class JsonNumber {
  readonly text: string
  constructor(text: string) {
    this.text = text
  }
  /** The value when the text is a plain integer within the safe range, else undefined. */
  integer(): number | undefined {
    if (!/^-?(?:0|[1-9]\d*)$/.test(this.text)) return undefined
    const n = Number(this.text)
    return Number.isSafeInteger(n) ? n : undefined
  }
}

/** Objects come back with a null prototype, so a key like `__proto__` is just a key. */
export type JsonObject = { [key: string]: JsonValue }
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject

export interface StrictJsonOptions {
  code: ErrorCode
  /** Names the document in errors, e.g. `policy /etc/containers/policy.json`. */
  what: string
  /** Nesting deeper than this is refused (default 64). */
  maxDepth?: number
}

/**
 * Parses JSON the way containers/image's paranoid decoder does: a duplicated key anywhere, bytes
 * after the top-level value, invalid UTF-8 or a lone surrogate escape are errors. Numbers stay
 * text (JsonNumber). Errors name the JSON path where parsing stopped.
 */
export function parseStrictJson(input: Uint8Array | string, options: StrictJsonOptions): JsonValue {
  let text: string
  if (typeof input === 'string') text = input
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input)
    } catch {
      throw new OcipullError(options.code, `${options.what}: not valid UTF-8`)
    }
  }
  const maxDepth = options.maxDepth ?? 64
  let i = 0
  const fail = (path: string, problem: string): never => {
    throw new OcipullError(
      options.code,
      `${options.what}: ${path || '(document)'}: ${problem} at offset ${i}`,
    )
  }
  const ws = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i)
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++
      else break
    }
  }
  const value = (path: string, depth: number): JsonValue => {
    if (depth > maxDepth) fail(path, `nested deeper than ${maxDepth}`)
    ws()
    const c = text[i]
    if (c === '{') return object(path, depth)
    if (c === '[') return array(path, depth)
    if (c === '"') return string(path)
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number(path)
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length
        return v
      }
    }
    return fail(path, c === undefined ? 'unexpected end of input' : `unexpected ${JSON.stringify(c)}`)
  }
  const object = (path: string, depth: number): JsonObject => {
    i++
    const out: JsonObject = Object.create(null)
    ws()
    if (text[i] === '}') {
      i++
      return out
    }
    for (;;) {
      ws()
      if (text[i] !== '"') fail(path, 'want a string key')
      const key = string(path)
      const keyPath = jsonPath(path, key)
      if (Object.hasOwn(out, key)) fail(keyPath, 'duplicate key')
      ws()
      if (text[i] !== ':') fail(keyPath, 'want ":"')
      i++
      out[key] = value(keyPath, depth + 1)
      ws()
      if (text[i] === ',') {
        i++
        continue
      }
      if (text[i] === '}') {
        i++
        return out
      }
      fail(path, 'want "," or "}"')
    }
  }
  const array = (path: string, depth: number): JsonValue[] => {
    i++
    const out: JsonValue[] = []
    ws()
    if (text[i] === ']') {
      i++
      return out
    }
    for (;;) {
      out.push(value(`${path}[${out.length}]`, depth + 1))
      ws()
      if (text[i] === ',') {
        i++
        continue
      }
      if (text[i] === ']') {
        i++
        return out
      }
      fail(path, 'want "," or "]"')
    }
  }
  const string = (path: string): string => {
    const start = ++i
    let out = ''
    let from = start
    for (;;) {
      const c = text.charCodeAt(i)
      if (Number.isNaN(c)) fail(path, 'unterminated string')
      if (c === 0x22) {
        out += text.slice(from, i)
        i++
        return out
      }
      if (c < 0x20) fail(path, 'control character in string')
      if (c === 0x5c) {
        out += text.slice(from, i)
        const e = text[i + 1]
        const simple: Record<string, string> = {
          '"': '"',
          '\\': '\\',
          '/': '/',
          b: '\b',
          f: '\f',
          n: '\n',
          r: '\r',
          t: '\t',
        }
        if (e !== undefined && simple[e] !== undefined) {
          out += simple[e]
          i += 2
        } else if (e === 'u') {
          const unit = (at: number) => {
            const hex = text.slice(at, at + 4)
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail(path, 'bad \\u escape')
            return Number.parseInt(hex, 16)
          }
          const u = unit(i + 2)
          i += 6
          if (u >= 0xd800 && u <= 0xdbff) {
            if (text[i] !== '\\' || text[i + 1] !== 'u') fail(path, 'lone surrogate escape')
            const low = unit(i + 2)
            if (low < 0xdc00 || low > 0xdfff) fail(path, 'lone surrogate escape')
            i += 6
            out += String.fromCharCode(u, low)
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            fail(path, 'lone surrogate escape')
          } else {
            out += String.fromCharCode(u)
          }
        } else {
          fail(path, 'bad escape')
        }
        from = i
        continue
      }
      i++
    }
  }
  const number = (path: string): JsonNumber => {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400))
    if (m === null) return fail(path, 'bad number')
    i += m[0].length
    return new JsonNumber(m[0])
  }
  const result = value('', 0)
  ws()
  if (i !== text.length) fail('', 'data after the top-level value')
  return result
}

/** `a.b`, or `a["quay.io/x"]` for keys that are not identifiers. */
export function jsonPath(path: string, key: string): string {
  if (/^[A-Za-z_][\w-]*$/.test(key)) return path === '' ? key : `${path}.${key}`
  return `${path}[${JSON.stringify(key)}]`
}

export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber)
}

/** A short description of a value's type for messages (never the value of a key or secret). */
export function jsonType(v: JsonValue | undefined): string {
  if (v === undefined) return 'nothing'
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (v instanceof JsonNumber) return 'a number'
  if (typeof v === 'object') return 'an object'
  return `a ${typeof v}`
}
