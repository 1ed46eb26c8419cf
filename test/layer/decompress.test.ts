import { randomBytes } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { gzipSync } from 'node:zlib'
import { describe, expect, test } from 'vitest'
import { compress as zstdCompress } from 'zstd-napi'
import { decompressStages } from '../../src/layer/decompress.js'
import { type Compression, layerCodec, sniffCompression } from '../../src/layer/layer-codec.js'
import { buildTar } from '../helpers/tar-builder.js'

const tar = buildTar([{ name: 'hello.txt', data: 'hello\n' }])
const big = Buffer.concat([tar, randomBytes(3 * 1024 * 1024)])

async function run(input: Buffer, compression: Compression, chunk = 64 * 1024): Promise<Buffer> {
  const out: Buffer[] = []
  const chunks = Array.from({ length: Math.ceil(input.length / chunk) }, (_, i) =>
    input.subarray(i * chunk, (i + 1) * chunk),
  )
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      out.push(c)
      cb()
    },
  })
  await pipeline([Readable.from(chunks), ...decompressStages(compression, 'layer sha256:abc'), sink])
  return Buffer.concat(out)
}

describe('layerCodec', () => {
  test.each([
    ['application/vnd.oci.image.layer.v1.tar', 'none', false],
    ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip', false],
    ['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd', false],
    ['application/vnd.oci.image.layer.v1.tar+gzip+encrypted', 'gzip', true],
    ['application/vnd.oci.image.layer.v1.tar+zstd+encrypted', 'zstd', true],
    ['application/vnd.oci.image.layer.v1.tar+encrypted', 'none', true],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip', false],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip+encrypted', 'gzip', true],
    ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip', false],
    ['application/vnd.docker.image.rootfs.diff.tar', 'none', false],
    ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip', false],
  ])('%s', (mediaType, compression, encrypted) => {
    expect(layerCodec(mediaType)).toEqual({ compression, encrypted })
  })
  test.each(['application/vnd.oci.image.layer.v1.tar+bzip2', 'text/plain', '', 'toString', '__proto__'])(
    'rejects %j',
    (m) => {
      expect(() => layerCodec(m)).toThrow(expect.objectContaining({ code: 'ERR_MEDIA_TYPE_UNSUPPORTED' }))
    },
  )
  test('sniffs', () => {
    expect(sniffCompression(gzipSync(tar))).toBe('gzip')
    expect(sniffCompression(zstdCompress(tar))).toBe('zstd')
    expect(sniffCompression(tar)).toBe('none')
    expect(sniffCompression(Buffer.from('x'))).toBe('unknown')
  })
})

describe('decompressStages', () => {
  test.each([
    ['gzip', gzipSync(big)],
    ['zstd', zstdCompress(big)],
    ['none', big],
  ] as const)('%s round-trips', async (compression, data) => {
    expect((await run(data, compression)).equals(big)).toBe(true)
  })

  test('multi-member gzip', async () => {
    const data = Buffer.concat([gzipSync(big.subarray(0, 1000)), gzipSync(big.subarray(1000))])
    expect((await run(data, 'gzip')).equals(big)).toBe(true)
  })

  test('works with tiny chunks', async () => {
    expect((await run(gzipSync(tar), 'gzip', 7)).equals(tar)).toBe(true)
  })

  test.each([
    ['gzip declared, zstd data', zstdCompress(tar), 'gzip', /media type says gzip, but the data is zstd/],
    ['zstd declared, gzip data', gzipSync(tar), 'zstd', /media type says zstd, but the data is gzip/],
    [
      'tar declared, gzip data',
      gzipSync(tar),
      'none',
      /media type says an uncompressed tar, but the data is gzip/,
    ],
    ['gzip declared, tar data', tar, 'gzip', /media type says gzip, but the data is an uncompressed tar/],
    ['gzip declared, junk', randomBytes(4096), 'gzip', /neither gzip, zstd nor tar/],
  ] as const)('%s → ERR_MEDIA_TYPE_MISMATCH', async (_n, data, compression, message) => {
    await expect(run(data, compression)).rejects.toMatchObject({
      code: 'ERR_MEDIA_TYPE_MISMATCH',
      message: expect.stringMatching(message),
    })
  })

  test.each([
    ['truncated gzip', gzipSync(big).subarray(0, 100_000), 'gzip'],
    ['corrupt gzip', Buffer.concat([gzipSync(big).subarray(0, 600), Buffer.alloc(5000, 0x41)]), 'gzip'],
    ['truncated zstd', zstdCompress(big).subarray(0, 100_000), 'zstd'],
    ['corrupt zstd', Buffer.concat([zstdCompress(big).subarray(0, 600), Buffer.alloc(5000, 0x41)]), 'zstd'],
  ] as const)('%s → ERR_LAYER_INVALID', async (_n, data, compression) => {
    await expect(run(data, compression)).rejects.toMatchObject({
      code: 'ERR_LAYER_INVALID',
      message: expect.stringMatching(/^layer sha256:abc: /),
    })
  })
})
