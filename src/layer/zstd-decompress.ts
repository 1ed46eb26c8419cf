import { createRequire } from 'node:module'
import { Transform, type TransformCallback } from 'node:stream'

/** The part of zstd-napi's native binding used here (its binding.d.ts: DCtx wraps ZSTD_DCtx). */
interface Binding {
  DCtx: new () => {
    /** ZSTD_decompressStream: [return code (0 at a frame's end), bytes produced, bytes consumed]. */
    decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number]
  }
  dStreamOutSize(): number
}
const binding = createRequire(import.meta.url)('zstd-napi/binding') as Binding
const OUT_SIZE = binding.dStreamOutSize()

/**
 * zstd decompression (zstd-napi's native ZSTD_decompressStream) as a Transform that respects
 * backpressure on its output. zstd-napi's own DecompressStream turns each input chunk into all
 * of its output at once; zstd expands up to ~30000× (a 64 KiB chunk of a "zstd bomb" becomes
 * gigabytes), so that would buffer without bound. Here each input chunk is decompressed one
 * output block (128 KiB) at a time, and when the reader is full the rest of the chunk waits
 * until it reads again. Frames that need a window over zstd's default limit (128 MiB) fail.
 * A stream that ends inside a frame is an error, as are multiple frames (concatenated) and
 * skippable frames, which are read as zstd defines them.
 */
export class ZstdDecompress extends Transform {
  private readonly dctx = new binding.DCtx()
  private inFrame = false
  private pending: { src: Buffer; done: TransformCallback } | undefined

  constructor() {
    super({ readableHighWaterMark: 1 << 20 })
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.pending = { src: chunk, done }
    this.pump()
  }

  override _read(size: number): void {
    if (this.pending !== undefined) this.pump()
    // With the chunk done, let Transform ask for the next one: if this read pushed nothing,
    // Readable would otherwise wait for a push that never comes.
    if (this.pending === undefined) super._read(size)
  }

  override _flush(done: TransformCallback): void {
    done(this.inFrame ? new Error('the data ends in the middle of a zstd frame') : null)
  }

  /** Decompresses the pending chunk until it is consumed or the reader is full. */
  private pump(): void {
    const p = this.pending as NonNullable<typeof this.pending>
    try {
      for (;;) {
        const dst = Buffer.allocUnsafe(OUT_SIZE)
        const [ret, produced, consumed] = this.dctx.decompressStream(dst, p.src)
        p.src = p.src.subarray(consumed)
        const wantsMore = produced === 0 || this.push(dst.subarray(0, produced))
        if (p.src.length === 0 && (produced < OUT_SIZE || ret === 0)) {
          this.inFrame = ret !== 0
          this.pending = undefined
          p.done()
          return
        }
        if (!wantsMore) return // _read resumes
      }
    } catch (err) {
      this.pending = undefined
      p.done(err as Error)
    }
  }
}
