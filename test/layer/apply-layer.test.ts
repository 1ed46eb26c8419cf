import { createHash, randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, describe, expect, test } from 'vitest'
import { MediaType } from '../../src/media-types.js'
import { parseReference } from '../../src/reference.js'
import { registrySource } from '../../src/registry/registry-source.js'
import { unpackImage } from '../../src/unpack-image.js'
import { rejection } from '../helpers/failure.js'
import { startFaultServer } from '../helpers/fault-server.js'
import { buildTar } from '../helpers/tar-builder.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'

/**
 * The layer pipeline against a registry that serves damaged layers: the error reported is the
 * root cause, and nothing is committed.
 */

afterAll(removeTempDirs)

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

async function serve(tar: Buffer, layerBytes: Buffer, layerType: string = MediaType.OciLayerGzip) {
  const server = await startFaultServer({ repository: 'app' })
  const config = server.put(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
    }),
    MediaType.OciConfig,
  )
  const layer = server.put(layerBytes, layerType)
  const manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] }
  server.put(JSON.stringify(manifest), MediaType.OciManifest, 'v1')
  const source = registrySource(parseReference(`${server.host}/app:v1`), {
    insecureRegistries: [server.host],
    retry: { retries: 0 },
  })
  return { server, source, layer }
}

async function unpackFails(s: Awaited<ReturnType<typeof serve>>) {
  const bundle = join(await makeTempDir(), 'bundle')
  try {
    const err = await rejection(
      unpackImage(s.source, { bundle, platform: { os: 'linux', architecture: 'amd64' } }),
    )
    expect(readdirSync(bundle)).toEqual([])
    return err
  } finally {
    await s.source.close()
    await s.server.close()
  }
}

const bigTar = buildTar([{ name: 'data.bin', data: randomBytes(2 * 1024 * 1024) }])

describe('applyLayer reports the root cause', () => {
  test('a flipped byte early in a gzip layer is ERR_DIGEST_MISMATCH, not a gzip error', async () => {
    // Byte 2 is gzip's compression method: inflate fails at once, 2 MiB before the blob's end.
    const s = await serve(bigTar, gzipSync(bigTar))
    s.server.fault({ route: 'blobs', target: s.layer.digest, flipByte: 2 })
    const err = await unpackFails(s)
    expect(err).toMatchObject({
      code: 'ERR_DIGEST_MISMATCH',
      message: expect.stringContaining(s.layer.digest.slice(0, 19)),
    })
  })

  test('a blob cut short is a size or connection error, not a tar error', async () => {
    const s = await serve(bigTar, gzipSync(bigTar))
    s.server.fault({ route: 'blobs', target: s.layer.digest, cut: { after: 100_000, how: 'end' } })
    const err = await unpackFails(s)
    expect(err).toMatchObject({ code: expect.stringMatching(/^ERR_(SIZE_MISMATCH|CONNECTION)$/) })
  })

  test('an intact blob whose tar escapes is ERR_PATH_UNSAFE', async () => {
    const tar = buildTar([{ name: '../../escape', data: 'x' }])
    const err = await unpackFails(await serve(tar, gzipSync(tar)))
    expect(err).toMatchObject({ code: 'ERR_PATH_UNSAFE' })
  })

  test('an intact blob with the wrong diff_id is ERR_DIGEST_MISMATCH on the diff_id', async () => {
    const s = await serve(bigTar, gzipSync(buildTar([{ name: 'other', data: 'y' }])))
    const err = await unpackFails(s)
    expect(err).toMatchObject({
      code: 'ERR_DIGEST_MISMATCH',
      message: expect.stringMatching(/diff_id: digest mismatch/),
    })
  })

  test('a zstd blob labelled gzip is ERR_MEDIA_TYPE_MISMATCH', async () => {
    const { compress } = await import('zstd-napi')
    const err = await unpackFails(await serve(bigTar, compress(bigTar)))
    expect(err).toMatchObject({ code: 'ERR_MEDIA_TYPE_MISMATCH' })
  })

  test('an uncompressed layer (hashed once: its digest is its diff_id) with a flipped byte fails', async () => {
    const s = await serve(bigTar, bigTar, MediaType.OciLayerTar)
    expect(s.layer.digest).toBe(sha256(bigTar))
    s.server.fault({ route: 'blobs', target: s.layer.digest, flipByte: 100_000 })
    expect(await unpackFails(s)).toMatchObject({ code: 'ERR_DIGEST_MISMATCH' })
  })

  test('an uncompressed layer whose config names another diff_id fails on the diff_id', async () => {
    const other = buildTar([{ name: 'other', data: 'y' }])
    const err = await unpackFails(await serve(bigTar, other, MediaType.OciLayerTar))
    expect(err).toMatchObject({
      code: 'ERR_DIGEST_MISMATCH',
      message: expect.stringMatching(/diff_id: digest mismatch/),
    })
  })
})
