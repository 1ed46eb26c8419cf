import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { beforeAll, describe, expect, test } from 'vitest'
import { digestOf } from '../../src/digest.js'
import { MediaType } from '../../src/media-types.js'
import { dockerArchiveSource } from '../../src/sources/docker-archive-source.js'
import { readBlob } from '../../src/sources/read-blob.js'
import { failure } from '../helpers/failure.js'
import { buildUmociImage, skopeoCopy, skopeoInspectRaw } from '../helpers/image-tools.js'
import { json, sha256 } from '../helpers/layout-writer.js'
import { buildTar, type TarEntrySpec, tarOfFiles } from '../helpers/tar-builder.js'
import { makeTempDir, useTempFiles } from '../helpers/temp-dirs.js'
import { requireTool } from '../rig/index.js'

const writeArchive = useTempFiles('d').write

const layerTar = (text: string) => tarOfFiles({ 'file.txt': text })
const configOf = (layers: Buffer[]) =>
  json({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l)) },
  })

/** A `docker save` style archive (legacy `<id>/layer.tar` paths) with one image per entry of `images`. */
function legacyArchive(
  images: { tags: string[] | null; layers: Buffer[] }[],
  extra: TarEntrySpec[] = [],
): Buffer {
  const specs: TarEntrySpec[] = []
  const manifest = images.map((image, i) => {
    const config = configOf(image.layers)
    const configName = `${sha256(config).slice(7)}.json`
    specs.push({ name: configName, data: config })
    const layers = image.layers.map((data, j) => {
      const name = `layer${i}-${j}/layer.tar`
      specs.push({ name: `layer${i}-${j}/`, type: '5' }, { name, data })
      return name
    })
    return { Config: configName, RepoTags: image.tags, Layers: layers }
  })
  specs.push({ name: 'manifest.json', data: json(manifest) }, ...extra)
  return buildTar(specs)
}

describe.runIf(requireTool('umoci', 'skopeo'))('dockerArchiveSource: an archive written by skopeo', () => {
  let archive: string
  beforeAll(async () => {
    const work = await makeTempDir()
    const layout = await buildUmociImage(work, 't', { 'hello.txt': 'hello from umoci\n' })
    archive = join(work, 'docker.tar')
    await skopeoCopy(`oci:${layout}:t`, `docker-archive:${archive}:name:tag`)
  })

  test('config and layer digests and sizes match skopeo inspect; layers match the diff_ids', async () => {
    const source = dockerArchiveSource({ path: archive, tag: 'name:tag' })
    expect(source.name).toBe(`docker-archive:${archive}:name:tag`)
    const m = await source.manifest()
    if (m.kind !== 'manifest') throw new Error('want a manifest')
    expect(m.mediaType).toBe(MediaType.DockerManifest)
    const theirs = JSON.parse((await skopeoInspectRaw(`docker-archive:${archive}`)).toString())
    expect(m.manifest.config).toEqual({ ...theirs.config, mediaType: MediaType.DockerConfig })
    expect(m.manifest.layers.map((l) => [l.digest, l.size])).toEqual(
      theirs.layers.map((l: { digest: string; size: number }) => [l.digest, l.size]),
    )
    const config = await readBlob(source, m.manifest.config, { maxSize: 1 << 20 })
    expect(config).toEqual(await skopeoInspectRaw(`docker-archive:${archive}`, true))
    expect(m.manifest.layers.map((l) => l.digest)).toEqual(JSON.parse(config.toString()).rootfs.diff_ids)
    // skopeo stores layers uncompressed (and calls them .tar.gzip); we say what the bytes are.
    expect(m.manifest.layers.map((l) => l.mediaType)).toEqual([MediaType.DockerLayerTar])
    for (const layer of m.manifest.layers) {
      expect(Buffer.concat(await (await source.blob(layer)).toArray()).length).toBe(layer.size)
    }
    await source.close()
  })

  test.each([
    ['the tag as given', { tag: 'name:tag' }],
    ['the fully qualified tag', { tag: 'docker.io/library/name:tag' }],
    ['index 0', { index: 0 }],
    ['the only image', {}],
  ])('picks the image by %s, with one stable synthesized digest', async (_name, pick) => {
    const source = dockerArchiveSource({ path: archive, ...pick })
    const m = await source.manifest()
    expect(m.digest).toBe(digestOf(m.bytes))
    const again = dockerArchiveSource({ path: archive })
    expect((await again.manifest()).digest).toBe(m.digest)
    await source.close()
    await again.close()
  })

  test('an unknown tag lists the RepoTags', async () => {
    const err = await failure(dockerArchiveSource({ path: archive, tag: 'name' }).manifest())
    expect(err).toEqual({
      code: 'ERR_NOT_FOUND',
      message: `docker-archive:${archive}:name: tag "name" not found in manifest.json; available tags: "docker.io/library/name:tag"`,
    })
  })
})

describe('dockerArchiveSource: archives built in code', () => {
  const one = layerTar('one')
  const two = layerTar('two')
  const gz = gzipSync(layerTar('gz'))
  const zst = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.from('not really zstd')])
  let path: string
  beforeAll(async () => {
    path = await writeArchive(
      legacyArchive([
        { tags: ['busybox:latest', 'busybox:1'], layers: [one, gz] },
        { tags: ['example.com/app:2'], layers: [two, zst, one] },
        { tags: null, layers: [] },
      ]),
    )
  })

  test.each<[string, { tag?: string; index?: number }, Buffer[], string[]]>([
    ['short tag', { tag: 'busybox' }, [one, gz], [MediaType.DockerLayerTar, MediaType.DockerLayerGzip]],
    [
      'normalized tag',
      { tag: 'docker.io/library/busybox:1' },
      [one, gz],
      [MediaType.DockerLayerTar, MediaType.DockerLayerGzip],
    ],
    [
      'registry tag',
      { tag: 'example.com/app:2' },
      [two, zst, one],
      [MediaType.DockerLayerTar, MediaType.OciLayerZstd, MediaType.DockerLayerTar],
    ],
    ['index', { index: 2 }, [], []],
  ])('%s', async (_name, pick, layers, mediaTypes) => {
    const source = dockerArchiveSource({ path, ...pick })
    const m = await source.manifest()
    if (m.kind !== 'manifest') throw new Error('want a manifest')
    expect(m.manifest.layers.map((l) => l.mediaType)).toEqual(mediaTypes)
    expect(m.manifest.layers.map((l) => l.digest)).toEqual(layers.map((l) => sha256(l)))
    const config = await readBlob(source, m.manifest.config, { maxSize: 1 << 20 })
    expect(config).toEqual(configOf(layers))
    for (const [i, layer] of m.manifest.layers.entries()) {
      expect(Buffer.concat(await (await source.blob(layer)).toArray())).toEqual(layers[i])
    }
    expect(JSON.parse(Buffer.from(m.bytes).toString())).toEqual({
      schemaVersion: 2,
      mediaType: MediaType.DockerManifest,
      config: m.manifest.config,
      layers: m.manifest.layers,
    })
    await source.close()
  })

  test.each<[string, { tag?: string; index?: number }, string, RegExp]>([
    [
      'no choice among three images',
      {},
      'ERR_OPTIONS_INVALID',
      /lists 3 images, choose one with a tag or index; available tags: "busybox:latest", "busybox:1", "example\.com\/app:2"$/,
    ],
    [
      'unknown tag',
      { tag: 'busybox:2' },
      'ERR_NOT_FOUND',
      /tag "busybox:2" not found in manifest\.json; available tags: "busybox:latest"/,
    ],
    ['index out of range', { index: 3 }, 'ERR_NOT_FOUND', /manifest\.json has 3 images, no index 3/],
  ])('%s', async (_name, pick, code, message) => {
    const err = await failure(dockerArchiveSource({ path, ...pick }).manifest())
    expect(err.code).toBe(code)
    expect(err.message).toMatch(message)
  })

  test('names', () => {
    expect(dockerArchiveSource({ path: 'x.tar' }).name).toBe('docker-archive:x.tar')
    expect(dockerArchiveSource({ path: 'x.tar', tag: 'a:b' }).name).toBe('docker-archive:x.tar:a:b')
    expect(dockerArchiveSource({ path: 'x.tar', index: 1 }).name).toBe('docker-archive:x.tar:@1')
  })

  test.each([
    ['tag and index', { path: 'x', tag: 'a', index: 0 }, /give a tag or an index, not both/],
    ['negative index', { path: 'x', index: -1 }, /index: want a non-negative integer/],
    ['empty path', { path: '' }, /path: want a non-empty string/],
  ])('options: %s', (_name, options, message) => {
    expect(() => dockerArchiveSource(options)).toThrow(message)
  })

  test('only the synthesized manifest and its blobs are known', async () => {
    const source = dockerArchiveSource({ path, tag: 'busybox' })
    const m = await source.manifest()
    expect((await source.manifest({ digest: m.digest })).digest).toBe(m.digest)
    const other = `sha256:${'a'.repeat(64)}`
    expect(await failure(source.manifest({ digest: other }))).toMatchObject({ code: 'ERR_NOT_FOUND' })
    expect(
      await failure(source.blob({ mediaType: 'x', digest: sha256(two), size: two.length })),
    ).toMatchObject({
      code: 'ERR_NOT_FOUND',
      message: expect.stringMatching(/blob sha256:\w{12}: not in the archive's image$/),
    })
    await source.close()
  })

  test('legacy symlinked layers inside the archive are followed', async () => {
    const p = await writeArchive(
      buildTar([
        { name: 'c.json', data: configOf([one, one]) },
        { name: 'a/layer.tar', data: one },
        { name: 'b/layer.tar', type: '2', linkname: '../a/layer.tar' },
        {
          name: 'manifest.json',
          data: json([{ Config: 'c.json', RepoTags: ['x:y'], Layers: ['a/layer.tar', './b/layer.tar'] }]),
        },
      ]),
    )
    const m = await dockerArchiveSource({ path: p }).manifest()
    expect(m.kind === 'manifest' && m.manifest.layers.map((l) => l.digest)).toEqual([
      sha256(one),
      sha256(one),
    ])
  })

  test('reads are verified against the digests computed at open', async () => {
    const p = await writeArchive(legacyArchive([{ tags: ['x:y'], layers: [one] }]))
    const source = dockerArchiveSource({ path: p })
    const m = await source.manifest()
    if (m.kind !== 'manifest') throw new Error('want a manifest')
    const at = (await readFile(p)).indexOf(one)
    const handle = await open(p, 'r+')
    await handle.write(Buffer.from('tampered'), 0, 8, at)
    await handle.close()
    expect((await failure((await source.blob(m.manifest.layers[0]!)).toArray())).code).toBe(
      'ERR_DIGEST_MISMATCH',
    )
    await source.close()
  })

  test('honours the signal while hashing', async () => {
    const source = dockerArchiveSource({ path, tag: 'busybox' })
    expect((await failure(source.manifest({ signal: AbortSignal.abort() }))).code).toBe('ERR_ABORTED')
    expect((await source.manifest()).kind).toBe('manifest')
    await source.close()
    await expect(source.manifest()).rejects.toThrow(/source is closed/)
  })
})

describe('dockerArchiveSource: hostile archives', () => {
  const layer = layerTar('x')
  const config = configOf([layer])
  const base = (manifest: unknown, extra: TarEntrySpec[] = []) =>
    buildTar([
      { name: 'c.json', data: config },
      { name: 'l/layer.tar', data: layer },
      ...extra,
      { name: 'manifest.json', data: Buffer.isBuffer(manifest) ? manifest : json(manifest) },
    ])
  const entry = (o: object) => [{ Config: 'c.json', RepoTags: ['x:y'], Layers: ['l/layer.tar'], ...o }]

  test.each<[string, Buffer, string, RegExp]>([
    [
      '../ in a layer path',
      base(entry({ Layers: ['../../etc/passwd'] })),
      'ERR_SOURCE_INVALID',
      /manifest\.json: \[0\]\.Layers\[0\]: "\.\.\/\.\.\/etc\/passwd" is not a plain relative path inside the archive$/,
    ],
    [
      '../ inside a layer path',
      base(entry({ Layers: ['l/../l/layer.tar'] })),
      'ERR_SOURCE_INVALID',
      /Layers\[0\]: "l\/\.\.\/l\/layer\.tar" is not a plain relative path/,
    ],
    [
      'absolute config path',
      base(entry({ Config: '/etc/passwd' })),
      'ERR_SOURCE_INVALID',
      /\[0\]\.Config: "\/etc\/passwd" is not a plain relative path/,
    ],
    [
      'layer not in the archive',
      base(entry({ Layers: ['nope/layer.tar'] })),
      'ERR_SOURCE_INVALID',
      /Layers\[0\]: "nope\/layer\.tar" is not in the archive/,
    ],
    [
      'layer is a symlink out of the archive',
      base(entry({ Layers: ['evil'] }), [{ name: 'evil', type: '2', linkname: '/etc/passwd' }]),
      'ERR_SOURCE_INVALID',
      /evil: link target "\/etc\/passwd" is outside the archive/,
    ],
    [
      'layer is a directory',
      base(entry({ Layers: ['l'] }), [{ name: 'l/', type: '5' }]),
      'ERR_SOURCE_INVALID',
      /l: not a regular file/,
    ],
    [
      'manifest.json is not JSON',
      base(Buffer.from('[{')),
      'ERR_SOURCE_INVALID',
      /manifest\.json: not valid JSON/,
    ],
    [
      'manifest.json is not an array',
      base({ Config: 'c.json' }),
      'ERR_SOURCE_INVALID',
      /manifest\.json: \(document\): want an array of images/,
    ],
    [
      'a layer that is not a string',
      base(entry({ Layers: [7] })),
      'ERR_SOURCE_INVALID',
      /manifest\.json: \[0\]\.Layers\[0\]: want a string/,
    ],
    [
      'Config missing',
      base([{ Layers: [] }]),
      'ERR_SOURCE_INVALID',
      /manifest\.json: \[0\]\.Config: missing/,
    ],
    [
      'an empty manifest.json',
      base([]),
      'ERR_NOT_FOUND',
      /tag "x:y" not found in manifest\.json; no image has a tag$/,
    ],
    [
      'one tag, two images',
      base([...entry({}), ...entry({})]),
      'ERR_SOURCE_INVALID',
      /tag "x:y" names 2 images/,
    ],
    [
      'manifest.json missing',
      buildTar([{ name: 'c.json', data: config }]),
      'ERR_SOURCE_INVALID',
      /manifest\.json: missing \(not a docker-archive\)/,
    ],
    [
      'bad tar checksum',
      buildTar([{ name: 'manifest.json', data: '[]', badChecksum: true }]),
      'ERR_SOURCE_INVALID',
      /checksum mismatch/,
    ],
  ])('%s', async (_name, bytes, code, message) => {
    const path = await writeArchive(bytes)
    const err = await failure(dockerArchiveSource({ path, tag: 'x:y' }).manifest())
    expect(err.code).toBe(code)
    expect(err.message).toMatch(message)
    expect(err.message.startsWith(`docker-archive:${path}:x:y: `)).toBe(true)
  })
})
