/**
 * Writes tar archives byte by byte, so tests can build both well-formed archives (ustar, GNU
 * long names, PAX) and hostile ones (bad checksums, lying sizes) without external tools.
 */

export interface TarEntrySpec {
  name: string
  /** Type flag: '0' file (default), '5' directory, '1' hard link, '2' symlink, 'x' PAX, 'L' GNU long name, … */
  type?: string
  data?: Buffer | string
  linkname?: string
  /** The size field to write instead of the data's length (the data written is unchanged). */
  headerSize?: number
  /** The ustar prefix field (POSIX magic only). */
  prefix?: string
  /** 'ustar' (POSIX, default), 'gnu' ("ustar  \0") or 'v7' (no magic). */
  magic?: 'ustar' | 'gnu' | 'v7'
  /** Writes the size field in GNU base-256 encoding. */
  base256Size?: boolean
  /** Adds one to the stored checksum. */
  badChecksum?: boolean
}

const BLOCK = 512

export function tarHeader(spec: TarEntrySpec): Buffer {
  const h = Buffer.alloc(BLOCK)
  const data = toBuffer(spec.data)
  const size = spec.headerSize ?? data.length
  h.write(spec.name, 0, 100, 'utf8')
  h.write('0000644\0', 100, 'latin1')
  h.write('0000000\0', 108, 'latin1')
  h.write('0000000\0', 116, 'latin1')
  if (spec.base256Size) {
    h[124] = 0x80
    let v = size
    for (let i = 135; i > 124; i--) {
      h[i] = v % 256
      v = Math.floor(v / 256)
    }
  } else {
    h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1')
  }
  h.write('00000000000\0', 136, 'latin1')
  h.write(spec.type ?? '0', 156, 'latin1')
  if (spec.linkname !== undefined) h.write(spec.linkname, 157, 100, 'utf8')
  const magic = spec.magic ?? 'ustar'
  if (magic === 'ustar') h.write('ustar\u000000', 257, 'latin1')
  if (magic === 'gnu') h.write('ustar  \0', 257, 'latin1')
  if (spec.prefix !== undefined) h.write(spec.prefix, 345, 155, 'utf8')
  h.fill(0x20, 148, 156)
  let sum = 0
  for (const b of h) sum += b
  if (spec.badChecksum) sum += 1
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1')
  return h
}

/** A header followed by the data, padded to a whole block. */
export function tarEntry(spec: TarEntrySpec): Buffer {
  const data = toBuffer(spec.data)
  const padding = (BLOCK - (data.length % BLOCK)) % BLOCK
  return Buffer.concat([tarHeader(spec), data, Buffer.alloc(padding)])
}

/** The entries and, unless `end` is false, the two zero blocks that end an archive. */
export function buildTar(specs: TarEntrySpec[], options: { end?: boolean } = {}): Buffer {
  const end = options.end ?? true
  return Buffer.concat([...specs.map(tarEntry), Buffer.alloc(end ? 2 * BLOCK : 0)])
}

/** One PAX record, `<len> <key>=<value>\n`, whose length counts itself. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`
  const bodyLength = Buffer.byteLength(body)
  let length = bodyLength + 1
  while (String(length).length + bodyLength !== length) length = String(length).length + bodyLength
  return `${length}${body}`
}

/** A PAX extended header ('x') carrying `records` for the next entry. */
export function paxHeader(records: Record<string, string>): TarEntrySpec {
  const data = Object.entries(records)
    .map(([k, v]) => paxRecord(k, v))
    .join('')
  return { name: 'PaxHeaders/entry', type: 'x', data }
}

/** A GNU long-name header ('L') naming the next entry. */
export function gnuLongName(name: string): TarEntrySpec {
  return { name: '././@LongLink', type: 'L', data: `${name}\0`, magic: 'gnu' }
}

/** A tar of `files` (path → contents), each path prefixed with `prefix` (e.g. './'). */
export function tarOfFiles(files: Record<string, Buffer | string>, prefix = ''): Buffer {
  return buildTar(Object.entries(files).map(([name, data]) => ({ name: `${prefix}${name}`, data })))
}

function toBuffer(data: Buffer | string | undefined): Buffer {
  return data === undefined ? Buffer.alloc(0) : typeof data === 'string' ? Buffer.from(data) : data
}

/** An entry with every header field settable; names and link names may be raw bytes. */
export interface TarFullSpec {
  name: string | Buffer
  /** Type flag, as in TarEntrySpec (default '0'). */
  type?: string
  data?: Buffer | string
  linkname?: string | Buffer
  mode?: number
  uid?: number
  gid?: number
  /** Seconds since the epoch. */
  mtime?: number
  devmajor?: number
  devminor?: number
  /** The size field to write instead of the data's length (the data written is unchanged). */
  headerSize?: number
  /** Records of a PAX header ('x') written just before this entry; values may be binary. */
  pax?: Record<string, string | Buffer>
}

/** A ustar header with all of `spec`'s fields (names up to 100 bytes; use `pax` for longer). */
export function tarHeaderFull(spec: TarFullSpec): Buffer {
  const h = Buffer.alloc(BLOCK)
  const data = toBuffer(spec.data)
  const octal = (v: number, off: number, len: number) =>
    h.write(`${v.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1')
  Buffer.from(spec.name).copy(h, 0, 0, 100)
  octal(spec.mode ?? 0o644, 100, 8)
  octal(spec.uid ?? 0, 108, 8)
  octal(spec.gid ?? 0, 116, 8)
  octal(spec.headerSize ?? data.length, 124, 12)
  octal(spec.mtime ?? 0, 136, 12)
  h.write(spec.type ?? '0', 156, 'latin1')
  if (spec.linkname !== undefined) Buffer.from(spec.linkname).copy(h, 157, 0, 100)
  h.write('ustar\u000000', 257, 'latin1')
  octal(spec.devmajor ?? 0, 329, 8)
  octal(spec.devminor ?? 0, 337, 8)
  h.fill(0x20, 148, 156)
  let sum = 0
  for (const b of h) sum += b
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1')
  return h
}

/** One PAX record with a binary-safe value. */
export function paxRecordBytes(key: string, value: string | Buffer): Buffer {
  const v = Buffer.from(value)
  const bodyLength = Buffer.byteLength(` ${key}=`) + v.length + 1
  let length = bodyLength + 1
  while (String(length).length + bodyLength !== length) length = String(length).length + bodyLength
  return Buffer.concat([Buffer.from(`${length} ${key}=`), v, Buffer.from('\n')])
}

/** The bytes of one TarFullSpec entry: its PAX header if any, header, data and padding. */
export function tarEntryFull(spec: TarFullSpec): Buffer {
  const parts: Buffer[] = []
  if (spec.pax !== undefined) {
    const data = Buffer.concat(Object.entries(spec.pax).map(([k, v]) => paxRecordBytes(k, v)))
    parts.push(tarEntryFull({ name: 'PaxHeaders/entry', type: 'x', data }))
  }
  const data = toBuffer(spec.data)
  const padding = (BLOCK - (data.length % BLOCK)) % BLOCK
  parts.push(tarHeaderFull(spec), data, Buffer.alloc(padding))
  return Buffer.concat(parts)
}

/** An archive of TarFullSpec entries (or raw byte runs), ended by two zero blocks unless `end` is false. */
export function buildTarFull(specs: (TarFullSpec | Buffer)[], options: { end?: boolean } = {}): Buffer {
  const parts = specs.map((s) => (Buffer.isBuffer(s) ? s : tarEntryFull(s)))
  return Buffer.concat([...parts, Buffer.alloc((options.end ?? true) ? 2 * BLOCK : 0)])
}
