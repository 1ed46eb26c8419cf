import { parse, TomlError } from 'smol-toml'
import { OcipullError } from '../errors.js'

/** Configuration documents larger than this are refused before parsing (1 MiB). */
export const DEFAULT_MAX_CONFIG_BYTES = 1024 * 1024

/** registries.conf and cdh.toml nest at most a few levels; anything deeper is hostile. */
const MAX_TOML_DEPTH = 16

export interface ParseDocumentOptions {
  /** Names the document in errors: a file name, URI or `Init-Data data."cdh.toml"`. */
  what: string
  maxBytes?: number
}

/**
 * Decodes a configuration document: a size cap, strict UTF-8 (a leading BOM is dropped) and no
 * NUL bytes. Fails with ERR_CONFIG_FILE_INVALID.
 */
export function decodeDocument(input: string | Uint8Array, options: ParseDocumentOptions): string {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_CONFIG_BYTES
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength
  if (size > maxBytes) throw configError(options.what, `larger than ${maxBytes} bytes`)
  let text: string
  if (typeof input === 'string') {
    text = input
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input)
    } catch {
      throw configError(options.what, 'not valid UTF-8')
    }
  }
  if (text.startsWith('\uFEFF')) text = text.slice(1)
  return text
}

/**
 * Parses TOML with smol-toml: `__proto__`/`constructor` keys are refused, nesting is capped, and
 * the error names the line and column without quoting the document (it may hold credentials).
 * Tables come back as objects without a prototype.
 */
export function parseToml(
  input: string | Uint8Array,
  options: ParseDocumentOptions,
): Record<string, unknown> {
  const text = decodeDocument(input, options)
  try {
    return parse(text, { unsafeKeyBehaviour: 'throw', maxDepth: MAX_TOML_DEPTH }) as Record<string, unknown>
  } catch (err) {
    if (err instanceof TomlError) {
      // smol-toml appends the offending lines to its message; keep only the first line.
      const problem = err.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? 'invalid'
      throw configError(options.what, `line ${err.line}, column ${err.column}: ${problem}`, err)
    }
    throw configError(options.what, `not valid TOML: ${(err as Error).message}`, err)
  }
}

/** Parses a JSON document; the syntax error names the position, never the text. */
export function parseJsonDocument(input: string | Uint8Array, options: ParseDocumentOptions): unknown {
  const text = decodeDocument(input, options)
  try {
    return JSON.parse(text)
  } catch (err) {
    const position = /position (\d+)/.exec((err as Error).message)?.[1]
    throw configError(options.what, `not valid JSON${position === undefined ? '' : ` at offset ${position}`}`)
  }
}

export function configError(what: string, problem: string, cause?: unknown): OcipullError {
  return new OcipullError(
    'ERR_CONFIG_FILE_INVALID',
    `${what}: ${problem}`,
    cause === undefined ? undefined : { cause },
  )
}
