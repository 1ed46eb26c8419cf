import { configError } from './parse-toml.js'

export interface TableReaderOptions {
  /** Names the document in errors and warnings. */
  what: string
  /** Unknown keys are errors instead of warnings. */
  strict?: boolean
  /** Receives harmless oddities: unknown keys, settings ocipull ignores. */
  onWarning?: ((message: string) => void) | undefined
}

/**
 * Typed readers for one table of a TOML or JSON configuration document. Errors are
 * ERR_CONFIG_FILE_INVALID and name the key path (`registry[2].mirror[0].location`); unknown
 * keys are reported as warnings, as containers/image and serde ignore them, or as errors when
 * `strict` is set. Values are described by type only, never quoted.
 */
export class TableReader {
  readonly what: string
  private readonly strict: boolean
  private readonly onWarning: ((message: string) => void) | undefined

  constructor(options: TableReaderOptions) {
    this.what = options.what
    this.strict = options.strict ?? false
    this.onWarning = options.onWarning
  }

  fail(path: string, problem: string): never {
    throw configError(this.what, `${path === '' ? '' : `${path}: `}${problem}`)
  }

  warn(path: string, problem: string): void {
    this.onWarning?.(`${this.what}: ${path === '' ? '' : `${path}: `}${problem}`)
  }

  table(value: unknown, path: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Date) {
      this.fail(path, `want a table, got ${typeName(value)}`)
    }
    return value as Record<string, unknown>
  }

  /** Reports keys outside `known` (unknown keys are ignored, or refused when strict). */
  checkKeys(table: Record<string, unknown>, path: string, known: readonly string[]): void {
    for (const key of Object.keys(table)) {
      if (known.includes(key)) continue
      const at = join(path, key)
      if (this.strict) this.fail(at, 'unknown key')
      this.warn(at, 'unknown key, ignored')
    }
  }

  optionalString(table: Record<string, unknown>, key: string, path: string): string | undefined {
    const v = table[key]
    if (v === undefined || v === null) return undefined
    if (typeof v !== 'string') this.fail(join(path, key), `want a string, got ${typeName(v)}`)
    return v
  }

  optionalBoolean(table: Record<string, unknown>, key: string, path: string): boolean | undefined {
    const v = table[key]
    if (v === undefined || v === null) return undefined
    if (typeof v !== 'boolean') this.fail(join(path, key), `want true or false, got ${typeName(v)}`)
    return v
  }

  optionalInteger(
    table: Record<string, unknown>,
    key: string,
    path: string,
    range: { min: number; max: number },
  ): number | undefined {
    const v = table[key]
    if (v === undefined || v === null) return undefined
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < range.min || v > range.max) {
      this.fail(join(path, key), `want an integer from ${range.min} to ${range.max}, got ${typeName(v)}`)
    }
    return v
  }

  optionalStringArray(table: Record<string, unknown>, key: string, path: string): string[] | undefined {
    const v = table[key]
    if (v === undefined || v === null) return undefined
    if (!Array.isArray(v)) this.fail(join(path, key), `want an array of strings, got ${typeName(v)}`)
    v.forEach((item, i) => {
      if (typeof item !== 'string')
        this.fail(`${join(path, key)}[${i}]`, `want a string, got ${typeName(item)}`)
    })
    return [...(v as string[])]
  }

  /** An array of tables (`[[registry]]`); a single table is refused, as TOML decoders do. */
  optionalTableArray(
    table: Record<string, unknown>,
    key: string,
    path: string,
  ): Record<string, unknown>[] | undefined {
    const v = table[key]
    if (v === undefined || v === null) return undefined
    if (!Array.isArray(v)) this.fail(join(path, key), `want an array of tables, got ${typeName(v)}`)
    return v.map((item, i) => this.table(item, `${join(path, key)}[${i}]`))
  }
}

export function join(path: string, key: string): string {
  const name = /^[A-Za-z0-9_-]+$/.test(key)
    ? key
    : JSON.stringify(key.length > 60 ? `${key.slice(0, 57)}...` : key)
  return path === '' ? name : `${path}.${name}`
}

/** The type of a value for messages, never the value: configuration may hold secrets. */
export function typeName(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (v instanceof Date) return 'a date'
  if (typeof v === 'object') return 'a table'
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a float'
  return `a ${typeof v}`
}
