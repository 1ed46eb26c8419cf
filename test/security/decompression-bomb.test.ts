import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip, createGzip } from 'node:zlib'
import { describe, expect, test } from 'vitest'
import { compress as zstdCompress } from 'zstd-napi'
import { decompressStages } from '../../src/layer/decompress.js'
import { ZstdDecompress } from '../../src/layer/zstd-decompress.js'
import { requireTool, run } from '../rig/index.js'

/**
 * Threat: a decompression bomb, a few kilobytes that inflate to gigabytes. Each decompressor must
 * hand its output over at the reader's pace (bounded buffers), never inflate a whole input chunk
 * at once, and must not stall when the reader is slow. (zstd-napi's own DecompressStream inflated
 * each input chunk completely: 66 KB of zstd became 2 GiB of RSS.) Limits on the bytes a layer may
 * unpack are tested in tar-bomb-limits.test.ts.
 */

const INFLATED = 256 << 20

async function bomb(compression: 'gzip' | 'zstd'): Promise<Buffer> {
  // One zstd frame, as the zstd tool writes for a file: the whole inflated size behind a few KB.
  if (compression === 'zstd') return zstdCompress(Buffer.alloc(INFLATED))
  const zero = Buffer.alloc(1 << 20)
  const chunks: Buffer[] = []
  const zeros = Readable.from(
    (function* () {
      for (let i = 0; i < INFLATED >> 20; i++) yield zero
    })(),
  )
  await pipeline(
    zeros,
    createGzip({ level: 9 }),
    new Writable({
      write(c: Buffer, _e, cb) {
        chunks.push(c)
        cb()
      },
    }),
  )
  return Buffer.concat(chunks)
}

describe.each(['gzip', 'zstd'] as const)('%s bomb', (compression) => {
  test('is inflated at the reader’s pace, with bounded buffers, to the end', {
    timeout: 120_000,
  }, async () => {
    const input = await bomb(compression)
    expect(input.length).toBeLessThan(INFLATED / 500)
    const stages = decompressStages(compression, 'layer sha256:bomb')
    let total = 0
    let buffered = 0
    const base = process.memoryUsage().arrayBuffers
    let extra = 0
    // A slow reader: every chunk waits a turn of the event loop, as file writes do.
    const reader = new Writable({
      highWaterMark: 1 << 20,
      write(chunk: Buffer, _e, cb) {
        total += chunk.length
        buffered = Math.max(buffered, ...stages.map((s) => s.readableLength + s.writableLength))
        extra = Math.max(extra, process.memoryUsage().arrayBuffers - base)
        setImmediate(cb)
      },
    })
    // Small input chunks (as a slow network gives): many of them inflate to nothing, the case
    // where a read that resumes a paused chunk must still ask for the next one, or all stalls.
    const size = 512
    const chunks = Array.from({ length: Math.ceil(input.length / size) }, (_, i) =>
      input.subarray(i * size, (i + 1) * size),
    )
    await pipeline([Readable.from(chunks), ...stages, reader])
    expect(total).toBe(INFLATED)
    expect(buffered).toBeLessThanOrEqual(4 << 20)
    // Buffers held anywhere (inside the inflater too), beyond what existed before: a few MiB of
    // chunks in flight plus garbage not yet collected, far from the 256 MiB the bomb holds.
    expect(extra).toBeLessThan(96 << 20)
  })
})

describe('an inflater left unread', () => {
  test.each([
    ['gzip', () => createGunzip({ chunkSize: 1 << 20 })],
    ['zstd', () => new ZstdDecompress()],
  ] as const)(
    '%s holds at most about its high-water mark, not the whole inflated chunk',
    async (name, make) => {
      const input = await bomb(name)
      const inflater = make()
      inflater.on('error', () => {})
      inflater.write(input)
      await new Promise((r) => setTimeout(r, 200))
      expect(inflater.readableLength).toBeLessThanOrEqual(2 << 20)
      inflater.destroy()
    },
  )
})

describe.runIf(requireTool('zstd'))('a zstd bomb made by the zstd tool', () => {
  test('(2 GiB in 70 KB, several input chunks) inflates to the end without stalling', {
    timeout: 60_000,
  }, async () => {
    const { stdout } = await run(
      'bash',
      ['-c', 'head -c 2147483648 /dev/zero | zstd -1 -q -c | base64 -w0'],
      {
        timeoutMs: 60_000,
      },
    )
    const input = Buffer.from(stdout, 'base64')
    expect(input.length).toBeGreaterThan(65536) // more than one chunk of a file stream
    const stages = decompressStages('zstd', 'layer sha256:bomb')
    let total = 0
    const reader = new Writable({
      highWaterMark: 4 << 20,
      write(chunk: Buffer, _e, cb) {
        total += chunk.length
        setImmediate(cb)
      },
    })
    const chunks = [input.subarray(0, 65536), input.subarray(65536)]
    await pipeline([Readable.from(chunks), ...stages, reader])
    expect(total).toBe(2 ** 31)
  })
})
