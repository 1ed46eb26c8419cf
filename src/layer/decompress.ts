import { type Duplex, Transform, type TransformCallback } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { OcipullError } from '../errors.js'
import { type Compression, sniffCompression } from './layer-codec.js'
import { ZstdDecompress } from './zstd-decompress.js'

/**
 * Each write to an inflater, and each 16 KiB output chunk of zlib's default, costs a thread-pool
 * round trip: zlib gets 1 MiB output chunks and both inflaters get their input in batches of at
 * least 1 MiB (a registry's body comes in ~16–64 KiB pieces; batching them made a 1 GiB layer
 * about a third faster, docs/performance.md).
 */
const GUNZIP_CHUNK = 1 << 20
const INFLATE_BATCH = 1 << 20
const SNIFF_BYTES = 512

/**
 * The decompression stages of the layer pipeline, to splice into `stream.pipeline`: a check of the
 * first bytes against the declared compression (ERR_MEDIA_TYPE_MISMATCH when the magic contradicts
 * the media type), then the inflater: node's zlib for gzip (multi-member streams included, 1 MiB
 * output chunks), zstd-napi's native stream for zstd (zstd-decompress.ts: bounded output), nothing for plain tar. Inflater errors are mapped to
 * ERR_LAYER_INVALID naming `what`.
 */
export function decompressStages(
  compression: Compression,
  what: string,
  /** Counts what the inflater consumed and produced (the inflate ratio that adaptive decryption reads). */
  counter?: InflateCounter,
): Duplex[] {
  const check = new MagicCheck(compression, what)
  if (compression === 'none') return [check]
  const inflate: Duplex =
    compression === 'gzip' ? createGunzip({ chunkSize: GUNZIP_CHUNK }) : new ZstdDecompress()
  return [check, new Batch(INFLATE_BATCH), new MapErrors(inflate, compression, what, counter)]
}

/** Holds back the first bytes until it can tell what they are, then passes everything through. */
class MagicCheck extends Transform {
  private readonly compression: Compression
  private readonly what: string
  private head: Buffer[] | undefined = []
  private headLength = 0

  constructor(compression: Compression, what: string) {
    super()
    this.compression = compression
    this.what = what
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.head === undefined) {
      callback(null, chunk)
      return
    }
    this.head.push(chunk)
    this.headLength += chunk.length
    if (this.headLength < SNIFF_BYTES) {
      callback()
      return
    }
    this.release(callback)
  }

  override _flush(callback: TransformCallback): void {
    if (this.head === undefined) callback()
    else this.release(callback)
  }

  private release(callback: TransformCallback): void {
    const head = Buffer.concat(this.head ?? [])
    this.head = undefined
    const sniffed = sniffCompression(head)
    // A tar shorter than one header can't be recognised; let the tar reader judge it.
    const agrees = sniffed === this.compression || (sniffed === 'unknown' && this.compression === 'none')
    if (!agrees && head.length > 0) {
      callback(
        new OcipullError(
          'ERR_MEDIA_TYPE_MISMATCH',
          `${this.what}: media type says ${describe(this.compression)}, but the data is ${sniffed === 'unknown' ? 'neither gzip, zstd nor tar' : describe(sniffed)}`,
        ),
      )
      return
    }
    callback(null, head)
  }
}

function describe(c: Compression): string {
  return c === 'none' ? 'an uncompressed tar' : c
}

/** Gathers chunks until at least `size` bytes (the last batch may be smaller); big chunks pass as they are. */
class Batch extends Transform {
  private readonly size: number
  private parts: Buffer[] = []
  private length = 0

  constructor(size: number) {
    super()
    this.size = size
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.length === 0 && chunk.length >= this.size) {
      callback(null, chunk)
      return
    }
    this.parts.push(chunk)
    this.length += chunk.length
    if (this.length < this.size) {
      callback()
      return
    }
    callback(null, this.batch())
  }

  override _flush(callback: TransformCallback): void {
    callback(null, this.length > 0 ? this.batch() : undefined)
  }

  private batch(): Buffer {
    const batch = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.length)
    this.parts = []
    this.length = 0
    return batch
  }
}

/** Bytes an inflater has consumed (`in`, counted when a write is done) and produced (`out`). */
export interface InflateCounter {
  in: number
  out: number
}

/** Wraps an inflater so that its errors become ERR_LAYER_INVALID with the layer named. */
class MapErrors extends Transform {
  private readonly inner: Duplex
  private readonly counter: InflateCounter

  constructor(
    inner: Duplex,
    compression: Compression,
    what: string,
    counter: InflateCounter = { in: 0, out: 0 },
  ) {
    super({ readableHighWaterMark: 1 << 20 })
    this.inner = inner
    this.counter = counter
    inner.on('data', (chunk: Buffer) => {
      counter.out += chunk.length
      if (!this.push(chunk)) inner.pause()
    })
    inner.on('error', (err: Error) =>
      this.destroy(
        new OcipullError('ERR_LAYER_INVALID', `${what}: ${compression} data is corrupt: ${err.message}`, {
          cause: err,
        }),
      ),
    )
  }

  override _read(size: number): void {
    this.inner.resume()
    super._read(size)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const consumed = () => {
      this.counter.in += chunk.length
    }
    if (this.inner.write(chunk, consumed)) callback()
    else this.inner.once('drain', () => callback())
  }

  override _flush(callback: TransformCallback): void {
    this.inner.once('end', () => callback())
    this.inner.end()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.inner.destroy()
    callback(err)
  }
}
