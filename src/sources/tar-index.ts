import { constants } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { abortError, OcipullError } from '../errors.js'
import { readInto, readRange } from './local-source-io.js'

/**
 * An index of a tar archive built from its headers alone: we read each 512-byte header (and the
 * data of GNU long-name and PAX headers) and seek over file contents, so a multi-gigabyte
 * archive is indexed in a few reads per entry and its files are then read in place, by offset.
 * Formats: v7, ustar (with its prefix field), GNU long names (`L`, `K`) and PAX (`x`; `path`,
 * `linkpath` and `size`). Hostile archives are refused with ERR_SOURCE_INVALID: bad checksums,
 * sizes past the end of the file, more than `maxEntries` headers, runs of metadata headers,
 * sparse files, and entry names that are absolute, contain `..`, or occur twice.
 */

export const DEFAULT_MAX_TAR_ENTRIES = 100_000

const BLOCK = 512
const MAX_LONG_NAME = 64 * 1024
const MAX_PAX = 1024 * 1024
const MAX_METADATA_RUN = 8
const MAX_LINK_HOPS = 16

export type TarEntry =
  | { type: 'file'; offset: number; size: number }
  /** A symbolic or hard link; `target` is the normalized archive path, undefined if it leaves the archive. */
  | { type: 'link'; linkname: string; target: string | undefined }
  | { type: 'other'; typeflag: string }

export interface TarIndex {
  /** Entries by normalized path (`./a//b/` → `a/b`); `file` entries give where the contents are. */
  readonly entries: ReadonlyMap<string, TarEntry>
  /** The archive's size in bytes when it was indexed. */
  readonly size: number
}

export interface IndexTarOptions {
  /** Names the archive in errors, e.g. `oci-archive:image.tar`. */
  what: string
  maxEntries?: number
  signal?: AbortSignal | undefined
}

export interface TarArchive {
  readonly handle: FileHandle
  readonly index: TarIndex
  close(): Promise<void>
}

/** Opens a tar file (which must be a regular file) and indexes it. The caller closes it. */
export async function openTarArchive(path: string, options: IndexTarOptions): Promise<TarArchive> {
  let handle: FileHandle
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'ERR_NOT_FOUND' : 'ERR_SOURCE_INVALID'
    throw new OcipullError(code, `${options.what}: cannot open: ${(err as Error).message}`, { cause: err })
  }
  try {
    if (!(await handle.stat()).isFile()) throw invalid(options.what, 'not a regular file')
    const index = await indexTar(handle, options)
    return { handle, index, close: () => handle.close() }
  } catch (err) {
    await handle.close()
    throw err
  }
}

/** Scans the headers of the tar in `handle`. */
export async function indexTar(handle: FileHandle, options: IndexTarOptions): Promise<TarIndex> {
  const { what, signal } = options
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_TAR_ENTRIES
  const size = (await handle.stat()).size
  const entries = new Map<string, TarEntry>()
  const block = Buffer.alloc(BLOCK)
  let pending: { path?: string; linkpath?: string; size?: number } = {}
  let run = 0
  let count = 0
  for (let offset = 0; ; ) {
    if (signal?.aborted) throw abortError(signal, what)
    const fail = (problem: string): never => {
      throw invalid(what, `header at offset ${offset}: ${problem}`)
    }
    if (offset === size) {
      if (run > 0) fail('archive ends after a metadata header')
      break
    }
    if (size - offset < BLOCK) fail(`truncated: ${size - offset} bytes left, want ${BLOCK}`)
    await readInto(handle, block, offset, { what, signal })
    if (block.every((b) => b === 0)) {
      if (run > 0) fail('end of archive after a metadata header')
      break
    }
    if (++count > maxEntries) fail(`more than ${maxEntries} entries`)
    const header = parseHeader(block, fail)
    const metadata = 'xgLK'.includes(header.typeflag)
    const dataSize = metadata ? header.size : (pending.size ?? header.size)
    const dataStart = offset + BLOCK
    const next = dataStart + Math.ceil(dataSize / BLOCK) * BLOCK
    if (dataSize > size - dataStart || next > size) {
      fail(
        `entry ${JSON.stringify(clip(pending.path ?? header.name))} of ${dataSize} bytes runs past the end of the archive (${size} bytes)`,
      )
    }
    const readData = (max: number, kind: string): Promise<Buffer> => {
      if (dataSize > max) fail(`${kind} of ${dataSize} bytes exceeds the limit of ${max}`)
      return readRange(handle, dataStart, dataSize, { what, signal })
    }
    if (metadata) {
      if (++run > MAX_METADATA_RUN) fail(`more than ${MAX_METADATA_RUN} metadata headers in a row`)
      if (header.typeflag === 'x')
        Object.assign(pending, parsePax(await readData(MAX_PAX, 'pax header'), fail))
      if (header.typeflag === 'L') pending.path ??= cString(await readData(MAX_LONG_NAME, 'long name'))
      if (header.typeflag === 'K')
        pending.linkpath ??= cString(await readData(MAX_LONG_NAME, 'long link name'))
    } else {
      const name = pending.path ?? header.name
      const linkname = pending.linkpath ?? header.linkname
      pending = {}
      run = 0
      addEntry(entries, name, linkname, header.typeflag, dataStart, dataSize, fail)
    }
    offset = next
  }
  return { entries, size }
}

/**
 * Finds the regular file at a normalized `path`. Links inside the archive are followed when
 * `followLinks` (docker-archive), else refused. Returns undefined when nothing is there.
 */
export function findTarFile(
  index: TarIndex,
  path: string,
  options: { followLinks: boolean; what: string },
): { offset: number; size: number } | undefined {
  let current = path
  for (let hops = 0; ; hops++) {
    const entry = index.entries.get(current)
    if (entry === undefined) return undefined
    if (entry.type === 'file') return entry
    if (entry.type === 'other')
      throw invalid(options.what, `${current}: not a regular file (type ${JSON.stringify(entry.typeflag)})`)
    if (!options.followLinks) throw invalid(options.what, `${current}: is a link, refusing to follow it`)
    if (entry.target === undefined) {
      throw invalid(
        options.what,
        `${current}: link target ${JSON.stringify(clip(entry.linkname))} is outside the archive`,
      )
    }
    if (hops >= MAX_LINK_HOPS)
      throw invalid(options.what, `${path}: more than ${MAX_LINK_HOPS} levels of links`)
    current = entry.target
  }
}

/** `./a//b/` → `a/b`; undefined for names that are absolute, contain `..` or NUL. */
export function normalizeTarPath(name: string): string | undefined {
  if (name.startsWith('/') || name.includes('\0')) return undefined
  const parts = name.split('/').filter((p) => p !== '' && p !== '.')
  return parts.includes('..') ? undefined : parts.join('/')
}

interface Header {
  name: string
  linkname: string
  size: number
  typeflag: string
}

function parseHeader(block: Buffer, fail: (problem: string) => never): Header {
  const stored = parseOctal(block.subarray(148, 156))
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!
    unsigned += b
    signed += b >= 0x80 ? b - 0x100 : b
  }
  if (stored === undefined) fail('checksum field is not octal')
  if (stored !== unsigned && stored !== signed)
    fail(`checksum mismatch: header says ${stored}, computed ${unsigned}`)
  const size = parseNumeric(block.subarray(124, 136))
  if (size === undefined) fail('size field is not a valid number')
  const typeflag = block[156] === 0 ? '0' : String.fromCharCode(block[156]!)
  let name = cString(block.subarray(0, 100))
  // POSIX ustar splits long names into prefix/name; GNU tar ("ustar  \0") uses that space for times.
  if (block.subarray(257, 263).toString('latin1') === 'ustar\0') {
    const prefix = cString(block.subarray(345, 500))
    if (prefix !== '') name = `${prefix}/${name}`
  }
  return { name, linkname: cString(block.subarray(157, 257)), size, typeflag }
}

function addEntry(
  entries: Map<string, TarEntry>,
  name: string,
  linkname: string,
  typeflag: string,
  offset: number,
  size: number,
  fail: (problem: string) => never,
): void {
  const path = normalizeTarPath(name)
  if (path === undefined) fail(`entry name ${JSON.stringify(clip(name))} is absolute or contains ".."`)
  if (typeflag === 'S') fail(`${path}: sparse files are not supported`)
  const directory = typeflag === '5' || ((typeflag === '0' || typeflag === '7') && name.endsWith('/'))
  if (directory) {
    if (path !== '' && !entries.has(path)) entries.set(path, { type: 'other', typeflag: '5' })
    return
  }
  if (path === '') fail(`entry name ${JSON.stringify(clip(name))} is empty`)
  const previous = entries.get(path)
  if (previous !== undefined) fail(`${path}: occurs more than once`)
  if (typeflag === '0' || typeflag === '7') {
    entries.set(path, { type: 'file', offset, size })
  } else if (typeflag === '1' || typeflag === '2') {
    // A hard link names an archive path; a symbolic link is relative to its own directory.
    const base = typeflag === '2' ? path.split('/').slice(0, -1) : []
    entries.set(path, { type: 'link', linkname, target: resolveLink(base, linkname) })
  } else {
    entries.set(path, { type: 'other', typeflag })
  }
}

function resolveLink(base: string[], linkname: string): string | undefined {
  if (linkname.startsWith('/') || linkname.includes('\0')) return undefined
  const parts = [...base]
  for (const part of linkname.split('/')) {
    if (part === '' || part === '.') continue
    if (part !== '..') parts.push(part)
    else if (parts.pop() === undefined) return undefined
  }
  return parts.length === 0 ? undefined : parts.join('/')
}

/** Parses PAX records (`<len> <key>=<value>\n`), keeping `path`, `linkpath` and `size`. */
function parsePax(
  data: Buffer,
  fail: (problem: string) => never,
): { path?: string; linkpath?: string; size?: number } {
  const out: { path?: string; linkpath?: string; size?: number } = {}
  for (let at = 0; at < data.length; ) {
    const space = data.indexOf(0x20, at)
    const lengthText = space < 0 ? '' : data.subarray(at, space).toString('latin1')
    const length = /^[1-9]\d{0,7}$/.test(lengthText) ? Number(lengthText) : 0
    if (length === 0 || at + length > data.length || data[at + length - 1] !== 0x0a || space >= at + length) {
      fail(`malformed pax record at byte ${at}`)
    }
    const record = data.subarray(space + 1, at + length - 1).toString('utf8')
    const eq = record.indexOf('=')
    if (eq <= 0) fail(`malformed pax record at byte ${at}`)
    const key = record.slice(0, eq)
    const value = record.slice(eq + 1)
    if (key === 'path') out.path = value
    else if (key === 'linkpath') out.linkpath = value
    else if (key === 'size') {
      if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value)))
        fail(`pax size ${JSON.stringify(clip(value))} is not valid`)
      out.size = Number(value)
    } else if (key.startsWith('GNU.sparse.')) fail('sparse files are not supported')
    at += length
  }
  return out
}

/** Octal (NUL/space padded), or GNU base-256 when the high bit of the first byte is set. */
function parseNumeric(field: Buffer): number | undefined {
  if ((field[0]! & 0x80) === 0) return parseOctal(field, 0)
  if (field[0] === 0xff) return undefined // negative
  let value = field[0]! & 0x7f
  for (const b of field.subarray(1)) {
    value = value * 256 + b
    if (value > Number.MAX_SAFE_INTEGER) return undefined
  }
  return value
}

function parseOctal(field: Buffer, empty?: number): number | undefined {
  const text = field
    .toString('latin1')
    .replace(/^ +/, '')
    .replace(/[\0 ]+$/, '')
  if (text === '') return empty
  return /^[0-7]{1,17}$/.test(text) ? Number.parseInt(text, 8) : undefined
}

function cString(bytes: Buffer): string {
  const nul = bytes.indexOf(0)
  return bytes.subarray(0, nul < 0 ? bytes.length : nul).toString('utf8')
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}

function invalid(what: string, problem: string): OcipullError {
  return new OcipullError('ERR_SOURCE_INVALID', `${what}: ${problem}`)
}
