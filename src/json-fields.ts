import { type ErrorCode, OcipullError } from './errors.js'

/**
 * Small typed readers for untrusted JSON. Each names the JSON path of a bad field in its error,
 * e.g. `manifest sha256:ab12…: layers[2].size: want a non-negative integer, got "12"`.
 */
export class FieldReader {
  readonly code: ErrorCode
  readonly what: string

  constructor(code: ErrorCode, what: string) {
    this.code = code
    this.what = what
  }

  fail(path: string, problem: string): never {
    throw new OcipullError(this.code, `${this.what}: ${path}: ${problem}`)
  }

  object(value: unknown, path: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(path, `want an object, got ${describe(value)}`)
    }
    return value as Record<string, unknown>
  }

  string(o: Record<string, unknown>, key: string, path: string): string {
    const v = o[key]
    if (v === undefined) this.fail(join(path, key), 'missing')
    if (typeof v !== 'string') this.fail(join(path, key), `want a string, got ${describe(v)}`)
    return v
  }

  optionalString(o: Record<string, unknown>, key: string, path: string): string | undefined {
    return o[key] === undefined || o[key] === null ? undefined : this.string(o, key, path)
  }

  size(o: Record<string, unknown>, key: string, path: string): number {
    const v = o[key]
    if (v === undefined) this.fail(join(path, key), 'missing')
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      this.fail(join(path, key), `want a non-negative integer, got ${describe(v)}`)
    }
    return v
  }

  array(o: Record<string, unknown>, key: string, path: string): unknown[] {
    const v = o[key]
    if (v === undefined) this.fail(join(path, key), 'missing')
    if (!Array.isArray(v)) this.fail(join(path, key), `want an array, got ${describe(v)}`)
    return v
  }

  optionalArray(o: Record<string, unknown>, key: string, path: string): unknown[] | undefined {
    return o[key] === undefined || o[key] === null ? undefined : this.array(o, key, path)
  }

  optionalStringArray(o: Record<string, unknown>, key: string, path: string): string[] | undefined {
    const a = this.optionalArray(o, key, path)
    a?.forEach((v, i) => {
      if (typeof v !== 'string') this.fail(`${join(path, key)}[${i}]`, `want a string, got ${describe(v)}`)
    })
    return a as string[] | undefined
  }

  optionalStringMap(
    o: Record<string, unknown>,
    key: string,
    path: string,
  ): Record<string, string> | undefined {
    if (o[key] === undefined || o[key] === null) return undefined
    const m = this.object(o[key], join(path, key))
    for (const [k, v] of Object.entries(m)) {
      if (typeof v !== 'string') this.fail(`${join(path, key)}.${k}`, `want a string, got ${describe(v)}`)
    }
    return m as Record<string, string>
  }
}

export function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`
}

export function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v)
  if (typeof v === 'object') return 'an object'
  return `${typeof v} ${String(v)}`
}

/** Parses JSON bytes, mapping a syntax error to the given code. */
export function parseJson(bytes: Uint8Array, code: ErrorCode, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch (err) {
    throw new OcipullError(code, `${what}: not valid JSON: ${(err as Error).message}`, { cause: err })
  }
}
