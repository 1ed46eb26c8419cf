/**
 * Decodes one 512-byte tar header block (v7, ustar/POSIX and GNU), checksum included.
 * Names stay byte strings (latin1: one character per byte) so that any name round-trips exactly.
 */

export const BLOCK = 512

/** A header block as stored, before PAX and GNU long-name records are applied. */
export interface RawHeader {
  name: string
  mode: number
  uid: number
  gid: number
  size: number
  /** Seconds since the epoch. */
  mtime: number
  /** GNU headers only, when set. */
  atime: number | undefined
  typeflag: string
  linkname: string
  devmajor: number
  devminor: number
}

/** Thrown for a malformed header; the caller adds the layer and offset. */
export class HeaderError extends Error {}

/** True when the block is all zero bytes (an end-of-archive marker). */
export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i += 8) {
    if (block.readBigUInt64LE(i) !== 0n) return false
  }
  return true
}

export function decodeHeader(block: Buffer): RawHeader {
  verifyChecksum(block)
  const magic = block.toString('latin1', 257, 265)
  const ustar = magic === 'ustar\u000000'
  const gnu = magic === 'ustar  \0'
  let name = cString(block, 0, 100)
  if (ustar) {
    const prefix = cString(block, 345, 155)
    if (prefix !== '') name = `${prefix}/${name}`
  }
  const atime = gnu ? numeric(block, 345, 12, 'atime') : 0
  return {
    name,
    mode: numeric(block, 100, 8, 'mode'),
    uid: numeric(block, 108, 8, 'uid'),
    gid: numeric(block, 116, 8, 'gid'),
    size: numeric(block, 124, 12, 'size'),
    mtime: numeric(block, 136, 12, 'mtime'),
    atime: atime === 0 ? undefined : atime,
    typeflag: String.fromCharCode(block[156] ?? 0),
    linkname: cString(block, 157, 100),
    devmajor: ustar || gnu ? numeric(block, 329, 8, 'devmajor') : 0,
    devminor: ustar || gnu ? numeric(block, 337, 8, 'devminor') : 0,
  }
}

/** The bytes of a NUL-terminated (or full-width) field, as a byte string. */
function cString(block: Buffer, offset: number, length: number): string {
  let end = block.indexOf(0, offset)
  if (end === -1 || end > offset + length) end = offset + length
  return block.toString('latin1', offset, end)
}

/**
 * An octal field (leading spaces, then digits, ended by NUL or space) or a GNU base-256 field
 * (first byte 0x80 positive, 0xff negative). Empty fields are 0.
 */
function numeric(block: Buffer, offset: number, length: number, field: string): number {
  const first = block[offset] ?? 0
  if (first & 0x80) {
    const negative = first === 0xff
    if (!negative && first !== 0x80) throw new HeaderError(`invalid base-256 ${field}`)
    let v = 0n
    for (let i = offset + 1; i < offset + length; i++) v = (v << 8n) | BigInt(block[i] ?? 0)
    if (negative) v -= 1n << BigInt(8 * (length - 1))
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new HeaderError(`${field} out of range`)
    }
    return Number(v)
  }
  let i = offset
  const end = offset + length
  while (i < end && block[i] === 0x20) i++
  let v = 0
  let digits = 0
  for (; i < end; i++) {
    const c = block[i] as number
    if (c === 0 || c === 0x20) break
    if (c < 0x30 || c > 0x37) throw new HeaderError(`invalid octal ${field}`)
    v = v * 8 + (c - 0x30)
    digits++
  }
  // Only NULs and spaces may follow the digits.
  for (; i < end; i++) {
    const c = block[i] as number
    if (c !== 0 && c !== 0x20) throw new HeaderError(`invalid octal ${field}`)
  }
  if (digits > 17) throw new HeaderError(`${field} out of range`)
  return v
}

/** The stored checksum must match the sum of all bytes with the field as spaces (unsigned or signed). */
function verifyChecksum(block: Buffer): void {
  let unsigned = 8 * 0x20
  for (let i = 0; i < 148; i++) unsigned += block[i] as number
  for (let i = 156; i < BLOCK; i++) unsigned += block[i] as number
  let stored: number
  try {
    stored = numeric(block, 148, 8, 'checksum')
  } catch {
    throw new HeaderError('invalid header checksum field')
  }
  if (stored === unsigned || stored === signedSum(block)) return
  throw new HeaderError('bad header checksum')
}

/** The historic signed variant (bytes as int8), rarely needed. */
function signedSum(block: Buffer): number {
  let sum = 0
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] as number)
    sum += b > 127 ? b - 256 : b
  }
  return sum
}
