import { parse, TomlError, type TomlTableWithoutBigInt } from 'smol-toml'
import { type ErrorCode, OcipullError } from '../errors.js'

/**
 * Parses TOML text from outside: `__proto__`/`constructor` keys refused, nesting capped at 32
 * levels. A syntax error becomes `code` naming `what` and the line.
 */
export function parseToml(text: string, code: ErrorCode, what: string): TomlTableWithoutBigInt {
  try {
    return parse(text, { unsafeKeyBehaviour: 'throw', maxDepth: 32 })
  } catch (err) {
    const detail = err instanceof TomlError ? `line ${err.line}: ${firstLine(err.message)}` : String(err)
    throw new OcipullError(code, `${what}: not valid TOML: ${detail}`, { cause: err })
  }
}

/** Decodes UTF-8 strictly (a BOM or an invalid sequence is `code`). */
export function utf8Text(bytes: Uint8Array, code: ErrorCode, what: string): string {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    throw new OcipullError(code, `${what}: starts with a byte order mark`)
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes)
  } catch (err) {
    throw new OcipullError(code, `${what}: not valid UTF-8`, { cause: err })
  }
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0] ?? ''
}
