import { HeaderError } from './tar-header.js'

/**
 * What a PAX extended header ('x') says about the next entry. Values are kept as bytes where they
 * may be binary: paths (a name need not be UTF-8, and GNU tar stores such names raw) and xattr
 * values (`security.capability` is binary). tar-stream decodes both as UTF-8, which is lossy,
 * so we parse PAX ourselves.
 */
export interface PaxRecords {
  path?: string
  linkpath?: string
  size?: number
  uid?: number
  gid?: number
  mtime?: number
  atime?: number
  /** SCHILY.xattr.NAME → value, in archive order. */
  xattrs?: Map<string, Buffer>
  /** Set when GNU.sparse.* records are present (sparse files are not supported). */
  sparse?: boolean
}

const SCHILY_XATTR = 'SCHILY.xattr.'
const DECIMAL = /^[0-9]{1,16}$/
const TIME = /^-?[0-9]{1,16}(\.[0-9]*)?$/

/**
 * Parses `<length> <key>=<value>\n` records. Rejects malformed records (HeaderError); ignores keys
 * it does not use (uname, gname, ctime, comment, hdrcharset, SCHILY.acl.*, …). An empty value
 * removes the keyword, as POSIX says.
 */
export function parsePax(data: Buffer): PaxRecords {
  const out: PaxRecords = {}
  let pos = 0
  while (pos < data.length) {
    // Tolerate NUL padding after the last record, as GNU tar and Go do.
    if (data[pos] === 0) break
    const space = data.indexOf(0x20, pos)
    if (space === -1 || space - pos > 12) throw new HeaderError('invalid pax record length')
    const lenText = data.toString('latin1', pos, space)
    if (!DECIMAL.test(lenText)) throw new HeaderError('invalid pax record length')
    const len = Number(lenText)
    const end = pos + len
    if (len <= space - pos + 1 || end > data.length || data[end - 1] !== 0x0a) {
      throw new HeaderError('invalid pax record')
    }
    const eq = data.indexOf(0x3d, space + 1)
    if (eq === -1 || eq >= end - 1) throw new HeaderError('invalid pax record: no "="')
    const key = data.toString('latin1', space + 1, eq)
    const value = data.subarray(eq + 1, end - 1)
    if (key === '') throw new HeaderError('invalid pax record: empty key')
    applyRecord(out, key, value)
    pos = end
  }
  return out
}

function applyRecord(out: PaxRecords, key: string, value: Buffer): void {
  if (key.startsWith(SCHILY_XATTR)) {
    const name = key.slice(SCHILY_XATTR.length)
    if (name === '') throw new HeaderError('invalid pax record: empty xattr name')
    out.xattrs ??= new Map()
    out.xattrs.set(name, Buffer.from(value))
    return
  }
  if (key.startsWith('GNU.sparse.')) {
    out.sparse = true
    return
  }
  const text = value.toString('latin1')
  switch (key) {
    case 'path':
    case 'linkpath':
      if (text.includes('\0')) throw new HeaderError(`invalid pax ${key}: contains NUL`)
      if (text === '') delete out[key]
      else out[key] = text
      return
    case 'size':
    case 'uid':
    case 'gid':
      if (text === '') {
        delete out[key]
        return
      }
      if (!DECIMAL.test(text)) throw new HeaderError(`invalid pax ${key}`)
      out[key] = Number(text)
      return
    case 'mtime':
    case 'atime':
      if (text === '') {
        delete out[key]
        return
      }
      if (!TIME.test(text)) throw new HeaderError(`invalid pax ${key}`)
      out[key] = Number(text)
      return
  }
}
