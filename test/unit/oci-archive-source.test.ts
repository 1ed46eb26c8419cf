import { createHash } from 'node:crypto'
import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, test } from 'vitest'
import { MediaType } from '../../src/media-types.js'
import { ociArchiveSource } from '../../src/sources/oci-archive-source.js'
import { readBlob } from '../../src/sources/read-blob.js'
import { failure } from '../helpers/failure.js'
import { buildUmociImage, skopeoCopy, skopeoInspectRaw } from '../helpers/image-tools.js'
import { blobPath, json, memoryLayout, type TestImage } from '../helpers/layout-writer.js'
import { buildTar, paxHeader, type TarEntrySpec, tarOfFiles } from '../helpers/tar-builder.js'
import { makeTempDir, useTempFiles } from '../helpers/temp-dirs.js'
import { requireTool } from '../rig/index.js'

const archives = useTempFiles('a')
const writeArchive = archives.write

describe.runIf(requireTool('umoci', 'skopeo'))('ociArchiveSource: an archive written by skopeo', () => {
  let archive: string
  let tagged: string
  beforeAll(async () => {
    const work = await makeTempDir()
    const layout = await buildUmociImage(work, 't', { 'hello.txt': 'hello from umoci\n' })
    archive = join(work, 'image.tar')
    tagged = join(work, 'tagged.tar')
    await skopeoCopy(`oci:${layout}:t`, `oci-archive:${archive}`)
    await skopeoCopy(`oci:${layout}:t`, `oci-archive:${tagged}:mytag`)
  })

  test('manifest, config and layers match skopeo inspect', async () => {
    const source = ociArchiveSource({ path: archive })
    expect(source.name).toBe(`oci-archive:${archive}`)
    const top = await source.manifest()
    expect(Buffer.from(top.bytes)).toEqual(await skopeoInspectRaw(`oci-archive:${archive}`))
    if (top.kind !== 'manifest') throw new Error('want a manifest')
    expect(await readBlob(source, top.manifest.config, { maxSize: 1 << 20 })).toEqual(
      await skopeoInspectRaw(`oci-archive:${archive}`, true),
    )
    for (const layer of top.manifest.layers) {
      const bytes = Buffer.concat(await (await source.blob(layer)).toArray())
      expect(bytes.length).toBe(layer.size)
    }
    await source.close()
  })

  test('by tag', async () => {
    const source = ociArchiveSource({ path: tagged, tag: 'mytag' })
    expect(source.name).toBe(`oci-archive:${tagged}:mytag`)
    expect(Buffer.from((await source.manifest()).bytes)).toEqual(
      await skopeoInspectRaw(`oci-archive:${tagged}:mytag`),
    )
    const missing = await failure(ociArchiveSource({ path: tagged, tag: 'other' }).manifest())
    expect(missing).toEqual({
      code: 'ERR_NOT_FOUND',
      message: `oci-archive:${tagged}:other: tag "other" not found in index.json; available tags: "mytag"`,
    })
  })
})

describe('ociArchiveSource: archives built in code', () => {
  let images: Record<string, TestImage>
  let files: Record<string, Buffer>
  beforeAll(() => {
    ;({ files, images } = memoryLayout(['a', 'b']))
  })

  test.each([
    ['plain names', ''],
    ['./ names', './'],
  ])('%s: tags resolve and blobs verify', async (_name, prefix) => {
    const path = await writeArchive(tarOfFiles(files, prefix))
    for (const tag of ['a', 'b']) {
      const source = ociArchiveSource({ path, tag })
      const m = await source.manifest()
      expect(Buffer.from(m.bytes)).toEqual(images[tag]!.manifestBytes)
      expect(await readBlob(source, images[tag]!.config, { maxSize: 1 << 20 })).toEqual(
        images[tag]!.configBytes,
      )
      expect(Buffer.concat(await (await source.blob(images[tag]!.layer)).toArray())).toEqual(
        images[tag]!.layerBytes,
      )
      await source.close()
    }
  })

  test('names from PAX headers', async () => {
    const specs: TarEntrySpec[] = Object.entries(files).flatMap(([name, data]) => [
      paxHeader({ path: `./${name}` }),
      { name: 'ignored', data },
    ])
    const source = ociArchiveSource({ path: await writeArchive(buildTar(specs)), tag: 'b' })
    expect((await source.manifest()).digest).toBe(images['b']!.manifest.digest)
    await source.close()
  })

  test('without a tag, two images are an error listing the tags', async () => {
    const path = await writeArchive(tarOfFiles(files))
    const err = await failure(ociArchiveSource({ path }).manifest())
    expect(err.code).toBe('ERR_OPTIONS_INVALID')
    expect(err.message).toMatch(
      /^oci-archive:\S+: index\.json lists 2 manifests, .*available tags: "a", "b"$/,
    )
  })

  test('reads happen on the file that was indexed, verified', async () => {
    const path = await writeArchive(tarOfFiles(files))
    const source = ociArchiveSource({ path, tag: 'a' })
    await source.manifest()
    // Tamper with the layer in place after the index was built: the read must fail, not pass bad bytes on.
    const layer = images['a']!.layerBytes
    const bytes = await readFile(path)
    const at = bytes.indexOf(layer)
    const handle = await open(path, 'r+')
    await handle.write(Buffer.alloc(16, 0xaa), 0, 16, at + 8)
    await handle.close()
    const err = await failure((await source.blob(images['a']!.layer)).toArray())
    expect(err.code).toBe('ERR_DIGEST_MISMATCH')
    await source.close()
  })

  test('honours the signal and close()', async () => {
    const source = ociArchiveSource({ path: await writeArchive(tarOfFiles(files)), tag: 'a' })
    expect((await failure(source.manifest({ signal: AbortSignal.abort() }))).code).toBe('ERR_ABORTED')
    const stream = await source.blob(images['a']!.layer)
    await source.close()
    await expect(stream.toArray()).rejects.toThrow(/source closed/)
    await expect(source.manifest()).rejects.toThrow(/source is closed/)
  })

  test('options are checked', () => {
    expect(() => ociArchiveSource({ path: '' })).toThrow(/oci-archive: path/)
    expect(() => ociArchiveSource({ path: 'x', maxEntries: -1 })).toThrow(/maxEntries/)
    expect(() => ociArchiveSource({ path: 'x', digest: 'sha256:1' })).toThrow(/64 lowercase hex/)
  })
})

describe('ociArchiveSource: hostile archives', () => {
  const { files, images } = memoryLayout(['latest'])
  const image = images['latest']!
  const passwd = Buffer.from('root:x:0:0:root:/root:/bin/bash\n')
  const passwdDigest = `sha256:${createHash('sha256').update(passwd).digest('hex')}`

  const withFiles = (changes: Record<string, Buffer | undefined>): TarEntrySpec[] =>
    Object.entries({ ...files, ...changes })
      .filter((e): e is [string, Buffer] => e[1] !== undefined)
      .map(([name, data]) => ({ name, data }))

  test.each<
    [string, () => Buffer, (s: ReturnType<typeof ociArchiveSource>) => Promise<unknown>, string, RegExp]
  >([
    [
      'bad header checksum',
      () => buildTar(withFiles({}).map((s, i) => (i === 2 ? { ...s, badChecksum: true } : s))),
      (s) => s.manifest(),
      'ERR_SOURCE_INVALID',
      /header at offset \d+: checksum mismatch/,
    ],
    [
      'size past EOF',
      () => buildTar([...withFiles({}), { name: 'tail', data: 'x', headerSize: 1 << 30 }], { end: false }),
      (s) => s.manifest(),
      'ERR_SOURCE_INVALID',
      /entry "tail" of 1073741824 bytes runs past the end of the archive/,
    ],
    [
      'not a tar at all',
      () => Buffer.from('PK\u0003\u0004 a zip file, really'),
      (s) => s.manifest(),
      'ERR_SOURCE_INVALID',
      /truncated/,
    ],
    [
      'blob is a symlink entry to /etc/passwd',
      () =>
        buildTar([...withFiles({}), { name: blobPath(passwdDigest), type: '2', linkname: '/etc/passwd' }]),
      (s) => s.blob({ mediaType: MediaType.OciLayerTar, digest: passwdDigest, size: passwd.length }),
      'ERR_SOURCE_INVALID',
      /blobs\/sha256\/\w{64}: is a link, refusing to follow it/,
    ],
    [
      'manifest content does not match its digest',
      () =>
        buildTar(withFiles({ [blobPath(image.manifest.digest)]: Buffer.alloc(image.manifest.size, 0x20) })),
      (s) => s.manifest(),
      'ERR_DIGEST_MISMATCH',
      /manifest sha256:\w{12}: digest mismatch/,
    ],
    [
      'layer content does not match its digest',
      () => buildTar(withFiles({ [blobPath(image.layer.digest)]: Buffer.alloc(image.layer.size, 1) })),
      async (s) => (await s.blob(image.layer)).toArray(),
      'ERR_DIGEST_MISMATCH',
      /blob sha256:\w{12}: digest mismatch/,
    ],
    [
      'layer missing',
      () => buildTar(withFiles({ [blobPath(image.layer.digest)]: undefined })),
      (s) => s.blob(image.layer),
      'ERR_NOT_FOUND',
      /blob sha256:\w{64}: not in the layout/,
    ],
    [
      'index.json is not JSON',
      () => buildTar(withFiles({ 'index.json': Buffer.from('not json') })),
      (s) => s.manifest(),
      'ERR_MANIFEST_INVALID',
      /: index\.json: not valid JSON/,
    ],
    [
      'index.json twice',
      () =>
        buildTar([
          ...withFiles({}),
          { name: './index.json', data: json({ schemaVersion: 2, manifests: [] }) },
        ]),
      (s) => s.manifest(),
      'ERR_SOURCE_INVALID',
      /index\.json: occurs more than once/,
    ],
    [
      'oci-layout missing',
      () => buildTar(withFiles({ 'oci-layout': undefined })),
      (s) => s.manifest(),
      'ERR_SOURCE_INVALID',
      /oci-layout: missing/,
    ],
    [
      'manifest larger than the cap',
      () => buildTar(withFiles({ [blobPath(image.manifest.digest)]: Buffer.alloc(5 << 20) })),
      (s) => s.manifest(),
      'ERR_MANIFEST_TOO_LARGE',
      /manifest of 5242880 bytes exceeds the limit of 4194304/,
    ],
    [
      'too many entries',
      () =>
        buildTar([...withFiles({}), ...Array.from({ length: 100_001 }, () => ({ name: 'd/', type: '5' }))]),
      (s) => s.manifest(),
      'ERR_SOURCE_INVALID',
      /more than 100000 entries/,
    ],
  ])('%s', async (_name, build, act, code, message) => {
    const path = await writeArchive(build())
    const source = ociArchiveSource({ path })
    const err = await failure(act(source))
    await source.close()
    expect(err.code).toBe(code)
    expect(err.message).toMatch(message)
    expect(err.message.startsWith(`oci-archive:${path}: `)).toBe(true)
  })

  test('a missing archive is ERR_NOT_FOUND, a directory ERR_SOURCE_INVALID', async () => {
    expect((await failure(ociArchiveSource({ path: join(archives.dir, 'none.tar') }).manifest())).code).toBe(
      'ERR_NOT_FOUND',
    )
    expect((await failure(ociArchiveSource({ path: archives.dir }).manifest())).message).toBe(
      `oci-archive:${archives.dir}: not a regular file`,
    )
  })
})
