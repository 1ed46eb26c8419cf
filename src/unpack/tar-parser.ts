import { OcipullError } from '../errors.js'
import { type PaxRecords, parsePax } from './pax-records.js'
import { EntryError, type TarEntry, toEntry } from './tar-entry.js'
import { BLOCK, decodeHeader, HeaderError, isZeroBlock, type RawHeader } from './tar-header.js'

export type { EntryType, TarEntry } from './tar-entry.js'

export type TarEvent = { kind: 'entry'; entry: TarEntry } | { kind: 'data'; data: Buffer } | { kind: 'end' }

export interface TarParserOptions {
  what: string
  maxPathLength: number
  /** Most bytes of tar stream to accept, trailing bytes included. */
  maxBytes: number
  warn: (code: string, path: string, message: string) => void
}

/** PAX headers larger than this are refused (Go's archive/tar uses the same bound). */
const MAX_PAX_SIZE = 1 << 20

const HEADER = 0
const META = 1
const DATA = 2
const SKIP = 3
const DRAIN = 4

/**
 * A push parser: `write()` turns each chunk into events (data events are views of the chunk, so
 * handle them before the next write), `finish()` checks that the archive ended properly.
 * Memory is one header block plus at most one PAX header (1 MiB) or long name.
 * Like Go's archive/tar (what umoci and containerd use), header-only types (links, devices, fifos,
 * directories) carry no data whatever their size field says, so we see the same members they do.
 * Everything after the end-of-archive marker is consumed and ignored.
 */
export class TarParser {
  /** Bytes consumed so far. */
  offset = 0
  private state = HEADER
  private readonly o: TarParserOptions
  private readonly block = Buffer.alloc(BLOCK)
  private blockLen = 0
  private remaining = 0
  private skip = 0
  private meta: { type: string; buf: Buffer; len: number; offset: number } | undefined
  private pax: PaxRecords | undefined
  private longName: string | undefined
  private longLink: string | undefined

  constructor(options: TarParserOptions) {
    this.o = options
  }

  /** True once the end-of-archive marker was read. */
  get ended(): boolean {
    return this.state === DRAIN
  }

  write(chunk: Buffer, out: TarEvent[]): void {
    if (this.offset + chunk.length > this.o.maxBytes) {
      throw this.error('ERR_LIMIT_EXCEEDED', `more than the limit of ${this.o.maxBytes} bytes`)
    }
    let pos = 0
    while (pos < chunk.length) {
      const avail = chunk.length - pos
      switch (this.state) {
        case HEADER: {
          let block: Buffer
          if (this.blockLen === 0 && avail >= BLOCK) {
            block = chunk.subarray(pos, pos + BLOCK)
            pos += BLOCK
            this.offset += BLOCK
          } else {
            const n = Math.min(BLOCK - this.blockLen, avail)
            chunk.copy(this.block, this.blockLen, pos, pos + n)
            this.blockLen += n
            pos += n
            this.offset += n
            if (this.blockLen < BLOCK) break
            this.blockLen = 0
            block = this.block
          }
          this.header(block, this.offset - BLOCK, out)
          break
        }
        case META: {
          const meta = this.meta!
          const n = Math.min(meta.buf.length - meta.len, avail)
          chunk.copy(meta.buf, meta.len, pos, pos + n)
          meta.len += n
          pos += n
          this.offset += n
          if (meta.len === meta.buf.length) this.endMeta(meta)
          break
        }
        case DATA: {
          const n = Math.min(this.remaining, avail)
          out.push({ kind: 'data', data: chunk.subarray(pos, pos + n) })
          pos += n
          this.offset += n
          this.remaining -= n
          if (this.remaining === 0) {
            out.push({ kind: 'end' })
            this.state = this.skip > 0 ? SKIP : HEADER
          }
          break
        }
        case SKIP: {
          const n = Math.min(this.skip, avail)
          pos += n
          this.offset += n
          this.skip -= n
          if (this.skip === 0) this.state = HEADER
          break
        }
        default:
          // After the end-of-archive marker: consume everything, so an upstream digest sees it all.
          this.offset += avail
          pos = chunk.length
      }
    }
  }

  /** Call when the input ended: throws ERR_LAYER_INVALID when the archive was cut short. */
  finish(): void {
    // An empty stream is an empty archive, as for Go's archive/tar.
    if (this.state === DRAIN || this.offset === 0) return
    throw this.error('ERR_LAYER_INVALID', 'unexpected end of tar stream (truncated archive)')
  }

  private header(block: Buffer, offset: number, out: TarEvent[]): void {
    if (isZeroBlock(block)) {
      if (this.pax !== undefined || this.longName !== undefined || this.longLink !== undefined) {
        throw this.error('ERR_LAYER_INVALID', `extended header without an entry at offset ${offset}`)
      }
      this.state = DRAIN
      return
    }
    let raw: RawHeader
    try {
      raw = decodeHeader(block)
    } catch (err) {
      if (!(err instanceof HeaderError)) throw err
      throw this.error('ERR_LAYER_INVALID', `tar header at offset ${offset}: ${err.message}`)
    }
    const t = raw.typeflag
    if (t === 'x' || t === 'g' || t === 'L' || t === 'K') {
      const cap = t === 'x' || t === 'g' ? MAX_PAX_SIZE : this.o.maxPathLength + 1
      if (raw.size < 0 || raw.size > cap) {
        const what = t === 'L' || t === 'K' ? 'long name' : 'pax header'
        throw this.error(
          'ERR_LIMIT_EXCEEDED',
          `${what} at offset ${offset}: ${raw.size} bytes exceeds ${cap}`,
        )
      }
      this.meta = { type: t, buf: Buffer.alloc(raw.size), len: 0, offset }
      this.skip = pad(raw.size)
      if (raw.size === 0) this.endMeta(this.meta)
      else this.state = META
      return
    }
    const extended = { pax: this.pax, longName: this.longName, longLink: this.longLink }
    this.pax = undefined
    this.longName = undefined
    this.longLink = undefined
    let entry: TarEntry
    try {
      entry = toEntry(raw, extended, offset, this.o.maxPathLength)
    } catch (err) {
      if (!(err instanceof EntryError)) throw err
      throw this.error(err.code, err.message)
    }
    this.checkRoom(offset, entry.size)
    out.push({ kind: 'entry', entry })
    this.skip = pad(entry.size)
    if (entry.size === 0) {
      out.push({ kind: 'end' })
      this.state = HEADER
    } else {
      this.remaining = entry.size
      this.state = DATA
    }
  }

  private endMeta(meta: { type: string; buf: Buffer; offset: number }): void {
    this.meta = undefined
    this.state = this.skip > 0 ? SKIP : HEADER
    try {
      switch (meta.type) {
        case 'x':
          this.pax = parsePax(meta.buf)
          break
        case 'g':
          parsePax(meta.buf)
          this.o.warn('WARN_PAX_GLOBAL_IGNORED', '', `global pax header at offset ${meta.offset} ignored`)
          break
        case 'L':
          this.longName = cString(meta.buf)
          break
        default:
          this.longLink = cString(meta.buf)
      }
    } catch (err) {
      if (!(err instanceof HeaderError)) throw err
      throw this.error('ERR_LAYER_INVALID', `extended header at offset ${meta.offset}: ${err.message}`)
    }
  }

  /** Refuses a declared size that cannot fit within maxBytes, before any of it is written. */
  private checkRoom(offset: number, size: number): void {
    if (offset + BLOCK + size > this.o.maxBytes) {
      throw this.error(
        'ERR_LIMIT_EXCEEDED',
        `entry at offset ${offset}: ${size} bytes would pass the limit of ${this.o.maxBytes} bytes`,
      )
    }
  }

  private error(code: 'ERR_LAYER_INVALID' | 'ERR_LIMIT_EXCEEDED', message: string): OcipullError {
    return new OcipullError(code, `${this.o.what}: ${message}`)
  }
}

function pad(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

/** A GNU long name: the bytes up to the first NUL. */
function cString(buf: Buffer): string {
  const end = buf.indexOf(0)
  return buf.toString('latin1', 0, end === -1 ? buf.length : end)
}
