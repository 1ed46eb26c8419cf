import { display } from './entry-path.js'
import type { PaxRecords } from './pax-records.js'
import type { RawHeader } from './tar-header.js'

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo'

/** One archive member, with PAX and GNU long-name records applied. Names are byte strings. */
export interface TarEntry {
  name: string
  type: EntryType
  /** Permission bits, setuid/setgid/sticky included (mode & 0o7777). */
  mode: number
  uid: number
  gid: number
  /** Bytes of data that follow (0 for every type but 'file'). */
  size: number
  /** Seconds since the epoch, possibly fractional (PAX). */
  mtime: number
  atime: number | undefined
  linkname: string
  devmajor: number
  devminor: number
  xattrs: Map<string, Buffer> | undefined
  /** Offset of the entry's header in the tar stream, for messages. */
  offset: number
}

const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file', // contiguous file: a regular file everywhere but on one 1980s system
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'directory',
  '6': 'fifo',
}

/** A header the extractor must not accept; the parser adds the layer's name. */
export class EntryError extends Error {
  readonly code: 'ERR_LAYER_INVALID' | 'ERR_LIMIT_EXCEEDED'

  constructor(code: 'ERR_LAYER_INVALID' | 'ERR_LIMIT_EXCEEDED', message: string) {
    super(message)
    this.code = code
  }
}

/** What PAX ('x') and GNU long-name ('L', 'K') headers said about the entry that follows them. */
export interface ExtendedHeaders {
  pax: PaxRecords | undefined
  longName: string | undefined
  longLink: string | undefined
}

/**
 * Merges a header block with the extended headers before it (PAX wins over GNU, GNU over the
 * block) and checks the result: a known type (sparse files refused), a name without NUL within
 * `maxPathLength`, a link target for links, uid/gid that chown accepts, a sane size.
 * Header-only types get size 0, as in Go's archive/tar.
 */
export function toEntry(
  raw: RawHeader,
  ext: ExtendedHeaders,
  offset: number,
  maxPathLength: number,
): TarEntry {
  const pax = ext.pax ?? {}
  const name = pax.path ?? ext.longName ?? raw.name
  const linkname = pax.linkpath ?? ext.longLink ?? raw.linkname
  const at = `entry ${JSON.stringify(display(name))} (offset ${offset})`
  const invalid = (message: string) => new EntryError('ERR_LAYER_INVALID', `${at}: ${message}`)
  if (pax.sparse || raw.typeflag === 'S') throw invalid('sparse files are not supported')
  let type = TYPES[raw.typeflag]
  if (raw.typeflag === '\0' && name.endsWith('/')) type = 'directory'
  if (type === undefined) throw invalid(`unsupported entry type ${JSON.stringify(raw.typeflag)}`)
  if (name === '') throw new EntryError('ERR_LAYER_INVALID', `tar header at offset ${offset}: empty name`)
  if (name.includes('\0')) throw invalid('name contains NUL')
  for (const [field, value] of [
    ['name', name],
    ['link target', linkname],
  ] as const) {
    if (value.length > maxPathLength) {
      const message = `${at}: ${field} of ${value.length} bytes exceeds the limit of ${maxPathLength}`
      throw new EntryError('ERR_LIMIT_EXCEEDED', message)
    }
  }
  if ((type === 'symlink' || type === 'hardlink') && linkname === '') throw invalid('empty link target')
  const uid = pax.uid ?? raw.uid
  const gid = pax.gid ?? raw.gid
  if (uid < 0 || gid < 0 || uid > 0xfffffffe || gid > 0xfffffffe) throw invalid('uid or gid out of range')
  const size = type === 'file' ? (pax.size ?? raw.size) : 0
  if (size < 0 || !Number.isSafeInteger(size)) throw invalid('invalid size')
  return {
    name,
    type,
    mode: raw.mode & 0o7777,
    uid,
    gid,
    size,
    mtime: pax.mtime ?? raw.mtime,
    atime: pax.atime ?? raw.atime,
    linkname,
    devmajor: raw.devmajor,
    devminor: raw.devminor,
    xattrs: pax.xattrs,
    offset,
  }
}
