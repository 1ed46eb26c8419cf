import { OcipullError } from '../errors.js'

/**
 * Entry names as the extractor sees them. All names are byte strings (latin1: one character per
 * byte), so names that are not UTF-8 round-trip exactly; `fsPath` in src/fs/resolve-in-root.ts
 * turns one into what `node:fs` takes.
 */

const WHITEOUT = '.wh.'
const OPAQUE = '.wh..wh..opq'
const ASCII = /^[\x00-\x7f]*$/

/**
 * The name as components relative to the root, joined with '/' ('' for the root itself).
 * Like umoci, the name is cleaned lexically first: a leading '/' is dropped (absolute names are
 * taken relative to the root), '.' and empty components go, and 'a/../b' becomes 'b' whatever
 * 'a' is. Unlike umoci, which clamps, a name whose '..' climbs above the root is refused with
 * ERR_PATH_UNSAFE: no honest layer has one (GNU tar and image-rs refuse them too), so it is a
 * sign of a hostile archive, and reporting it is better than extracting it somewhere else.
 */
export function cleanEntryPath(name: string, what: string): string {
  const out: string[] = []
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (out.length === 0) throw unsafe(what, name, 'path escapes the root')
      out.pop()
      continue
    }
    out.push(part)
  }
  return out.join('/')
}

/** Splits a cleaned, non-empty path into its parent ('' for the root) and last component. */
export function splitParent(rel: string): { parent: string; base: string } {
  const slash = rel.lastIndexOf('/')
  return slash === -1
    ? { parent: '', base: rel }
    : { parent: rel.slice(0, slash), base: rel.slice(slash + 1) }
}

export type Whiteout = { kind: 'opaque' } | { kind: 'file'; target: string } | { kind: 'meta' }

/**
 * What a last component means as a whiteout, or undefined for an ordinary name.
 * `.wh..wh..opq` makes its directory opaque; `.wh.NAME` removes NAME; other `.wh..wh.*` names are
 * AUFS bookkeeping ('meta', ignored, as Docker does). `.wh.`, `.wh..` and `.wh...` would name the
 * directory itself or its parent: ERR_PATH_UNSAFE.
 */
export function parseWhiteout(base: string, what: string, name: string): Whiteout | undefined {
  if (!base.startsWith(WHITEOUT)) return undefined
  if (base === OPAQUE) return { kind: 'opaque' }
  if (base.startsWith(`${WHITEOUT}${WHITEOUT}`)) return { kind: 'meta' }
  const target = base.slice(WHITEOUT.length)
  if (target === '' || target === '.' || target === '..') {
    throw unsafe(what, name, 'whiteout names no file')
  }
  return { kind: 'file', target }
}

/** A byte string shown as UTF-8 (lossy), for messages and warnings. */
export function display(name: string): string {
  return ASCII.test(name) ? name : Buffer.from(name, 'latin1').toString('utf8')
}

/** `<what>: entry "<name>"` — the start of every message about one entry. */
export function entryLabel(what: string, name: string): string {
  return `${what}: entry ${JSON.stringify(display(name))}`
}

export function unsafe(what: string, name: string, message: string): OcipullError {
  return new OcipullError('ERR_PATH_UNSAFE', `${entryLabel(what, name)}: ${message}`)
}
