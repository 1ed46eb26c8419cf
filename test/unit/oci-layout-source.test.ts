import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { isOcipullError } from '../../src/errors.js'
import { MediaType } from '../../src/media-types.js'
import { ociLayoutSource } from '../../src/sources/oci-layout-source.js'
import { readBlob } from '../../src/sources/read-blob.js'
import { failure } from '../helpers/failure.js'
import { buildUmociImage, skopeoInspectRaw } from '../helpers/image-tools.js'
import {
  blobPath,
  json,
  REF_NAME,
  type TestImage,
  writeBlob,
  writeImage,
  writeLayoutFiles,
  writeTaggedLayout,
} from '../helpers/layout-writer.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { requireTool, run } from '../rig/index.js'

afterAll(removeTempDirs)

describe.runIf(requireTool('umoci', 'skopeo'))('ociLayoutSource: a layout built by umoci', () => {
  let layout: string
  beforeAll(async () => {
    layout = await buildUmociImage(await makeTempDir(), 'v1', { 'hello.txt': 'hello from umoci\n' })
  })

  test('manifest and config bytes are what skopeo inspect reports', async () => {
    const source = ociLayoutSource({ path: layout, tag: 'v1' })
    const top = await source.manifest()
    expect(Buffer.from(top.bytes)).toEqual(await skopeoInspectRaw(`oci:${layout}:v1`))
    expect(top.kind).toBe('manifest')
    if (top.kind !== 'manifest') return
    const config = await readBlob(source, top.manifest.config, { maxSize: 1 << 20 })
    expect(config).toEqual(await skopeoInspectRaw(`oci:${layout}:v1`, true))
    await source.close()
  })

  test('layers stream, verified, and hold the added file', async () => {
    const source = ociLayoutSource({ path: layout })
    const top = await source.manifest()
    if (top.kind !== 'manifest') throw new Error('want a manifest')
    const layer = top.manifest.layers.at(-1)!
    const bytes = Buffer.concat(await (await source.blob(layer)).toArray())
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(layer.digest)
    const work = await makeTempDir()
    await writeFile(join(work, 'layer.tgz'), bytes)
    expect((await run('tar', ['-xzOf', join(work, 'layer.tgz'), 'hello.txt'])).stdout).toBe(
      'hello from umoci\n',
    )
    await source.close()
  })

  test('by digest, the same manifest', async () => {
    const byTag = await ociLayoutSource({ path: layout, tag: 'v1' }).manifest()
    const byDigest = ociLayoutSource({ path: layout, digest: byTag.digest })
    expect(byDigest.name).toBe(`oci:${layout}@${byTag.digest}`)
    expect((await byDigest.manifest()).bytes).toEqual(byTag.bytes)
  })
})

describe('ociLayoutSource: resolving the reference', () => {
  let layout: string
  let images: Record<string, TestImage>
  let unlisted: TestImage
  beforeAll(async () => {
    layout = await makeTempDir()
    images = await writeTaggedLayout(layout, ['a', 'b'])
    unlisted = await writeImage(layout, 'not in index.json')
  })

  type Ref = { tag?: string; digest?: string }
  test.each<[string, Ref, string]>([
    ['tag a', { tag: 'a' }, 'a'],
    ['tag b', { tag: 'b' }, 'b'],
    ['digest of b', { digest: 'b' }, 'b'],
    ['tag and matching digest', { tag: 'a', digest: 'a' }, 'a'],
  ])('%s', async (_name, ref, want) => {
    const digest = ref.digest === undefined ? undefined : images[ref.digest]!.manifest.digest
    const source = ociLayoutSource({
      path: layout,
      ...(ref.tag ? { tag: ref.tag } : {}),
      ...(digest ? { digest } : {}),
    })
    const m = await source.manifest()
    expect(m.digest).toBe(images[want]!.manifest.digest)
    expect(Buffer.from(m.bytes)).toEqual(images[want]!.manifestBytes)
    await source.close()
  })

  test.each<[string, Ref, string, RegExp]>([
    [
      'no tag with two manifests',
      {},
      'ERR_OPTIONS_INVALID',
      /index\.json lists 2 manifests, choose one .*available tags: "a", "b"$/,
    ],
    [
      'unknown tag',
      { tag: 'zzz' },
      'ERR_NOT_FOUND',
      /: tag "zzz" not found in index\.json; available tags: "a", "b"$/,
    ],
    [
      'tag naming another digest',
      { tag: 'a', digest: 'b' },
      'ERR_DIGEST_MISMATCH',
      /tag "a" names sha256:\w+, not the requested sha256:/,
    ],
    [
      'digest absent from the layout',
      { digest: `sha256:${'0'.repeat(64)}` },
      'ERR_NOT_FOUND',
      /manifest sha256:0{64}: not in the layout/,
    ],
  ])('%s', async (_name, ref, code, message) => {
    const digest = ref.digest?.startsWith('sha256:')
      ? ref.digest
      : ref.digest && images[ref.digest]!.manifest.digest
    const source = ociLayoutSource({
      path: layout,
      ...(ref.tag ? { tag: ref.tag } : {}),
      ...(digest ? { digest } : {}),
    })
    const err = await failure(source.manifest())
    expect(err.code).toBe(code)
    expect(err.message).toMatch(message)
    expect(err.message.startsWith(`oci:${layout}`)).toBe(true)
  })

  test('a digest not listed in index.json is read and verified (a child of an index)', async () => {
    const source = ociLayoutSource({ path: layout, digest: unlisted.manifest.digest })
    expect(Buffer.from((await source.manifest()).bytes)).toEqual(unlisted.manifestBytes)
    const viaRequest = ociLayoutSource({ path: layout, tag: 'a' })
    expect((await viaRequest.manifest({ digest: unlisted.manifest.digest })).digest).toBe(
      unlisted.manifest.digest,
    )
  })

  test('the only manifest is the default, tagged or not', async () => {
    const dir = await makeTempDir()
    const image = await writeImage(dir)
    await writeLayoutFiles(dir, { schemaVersion: 2, manifests: [image.manifest] })
    const source = ociLayoutSource({ path: dir })
    expect(source.name).toBe(`oci:${dir}`)
    expect((await source.manifest()).digest).toBe(image.manifest.digest)
  })

  test('an index, its children, and a sha512 digest', async () => {
    const dir = await makeTempDir()
    const image = await writeImage(dir)
    const child = { ...image.manifest, platform: { os: 'linux', architecture: 'amd64' } }
    const indexBytes = json({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [child] })
    const hex = createHash('sha512').update(indexBytes).digest('hex')
    await mkdir(join(dir, 'blobs', 'sha512'))
    await writeFile(join(dir, 'blobs', 'sha512', hex), indexBytes)
    const top = { mediaType: MediaType.OciIndex, digest: `sha512:${hex}`, size: indexBytes.length }
    await writeLayoutFiles(dir, {
      schemaVersion: 2,
      manifests: [{ ...top, annotations: { [REF_NAME]: 'multi' } }],
    })
    const source = ociLayoutSource({ path: dir, tag: 'multi' })
    const index = await source.manifest()
    expect(index).toMatchObject({ kind: 'index', digest: `sha512:${hex}`, mediaType: MediaType.OciIndex })
    const manifest = await source.manifest({ digest: image.manifest.digest })
    expect(manifest.kind).toBe('manifest')
    expect(Buffer.from(manifest.bytes)).toEqual(image.manifestBytes)
  })

  test('tags are quoted in messages, control characters escaped, long lists capped', async () => {
    const dir = await makeTempDir()
    const image = await writeImage(dir)
    const tags = ['\u001b[31mred', ...Array.from({ length: 30 }, (_, i) => `t${i}`)]
    const manifests = tags.map((t) => ({ ...image.manifest, annotations: { [REF_NAME]: t } }))
    await writeLayoutFiles(dir, { schemaVersion: 2, manifests })
    const err = await failure(ociLayoutSource({ path: dir, tag: 'nope' }).manifest())
    expect(err.message).toContain('"\\u001b[31mred", "t0"')
    expect(err.message).toMatch(/"t18" and 11 more$/)
    expect(err.message).not.toContain('\u001b')
  })
})

describe('ociLayoutSource: content', () => {
  let layout: string
  let image: TestImage
  beforeAll(async () => {
    layout = await makeTempDir()
    image = (await writeTaggedLayout(layout, ['latest']))['latest']!
  })

  test('config and layer bytes, verified', async () => {
    const source = ociLayoutSource({ path: layout, tag: 'latest' })
    const m = await source.manifest()
    if (m.kind !== 'manifest') throw new Error('want a manifest')
    expect(await readBlob(source, m.manifest.config, { maxSize: 1 << 20 })).toEqual(image.configBytes)
    expect(Buffer.concat(await (await source.blob(image.layer)).toArray())).toEqual(image.layerBytes)
    await source.close()
  })

  test('honours the signal', async () => {
    const source = ociLayoutSource({ path: layout })
    await expect(source.manifest({ signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    })
    const controller = new AbortController()
    const stream = await source.blob(image.layer, { signal: controller.signal })
    controller.abort()
    await expect(stream.toArray()).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect((await source.manifest()).digest).toBe(image.manifest.digest)
    await source.close()
  })

  test('close() ends open streams and refuses later calls', async () => {
    const source = ociLayoutSource({ path: layout })
    const stream = await source.blob(image.layer)
    await source.close()
    await expect(stream.toArray()).rejects.toThrow(/source closed/)
    await expect(source.manifest()).rejects.toThrow(/source is closed/)
  })

  test.each([
    ['empty path', { path: '' }, /oci: path: want a non-empty string/],
    ['bad digest', { path: 'x', digest: 'sha256:XYZ' }, /oci: .*64 lowercase hex/],
    ['md5 digest', { path: 'x', digest: 'md5:abc' }, /unsupported digest algorithm/],
    ['empty tag', { path: 'x', tag: '' }, /tag: want a non-empty string/],
    ['zero manifest cap', { path: 'x', maxManifestSize: 0 }, /maxManifestSize: want a positive integer/],
  ])('options: %s', (_name, options, message) => {
    expect(() => ociLayoutSource(options)).toThrow(message)
    try {
      ociLayoutSource(options)
    } catch (err) {
      expect(isOcipullError(err, 'ERR_OPTIONS_INVALID')).toBe(true)
    }
  })
})

describe('ociLayoutSource: hostile layouts', () => {
  /** A fresh tagged layout, changed by `mutate`, and the error `act` fails with. */
  async function hostile(
    mutate: (dir: string, image: TestImage) => Promise<void>,
    act: (source: ReturnType<typeof ociLayoutSource>, image: TestImage) => Promise<unknown> = (s) =>
      s.manifest(),
    options: { maxManifestSize?: number } = {},
  ) {
    const dir = await makeTempDir()
    const image = (await writeTaggedLayout(dir, ['latest']))['latest']!
    await mutate(dir, image)
    const source = ociLayoutSource({ path: dir, ...options })
    const err = await failure(act(source, image))
    await source.close()
    return { ...err, dir }
  }

  const readLayer = async (s: ReturnType<typeof ociLayoutSource>, i: TestImage) =>
    (await s.blob(i.layer)).toArray()

  test('a blob symlinked to /etc/passwd, named by its real digest, is refused', async () => {
    const passwd = await readFile('/etc/passwd')
    const err = await hostile(
      async (dir) => {
        const target = await writeBlob(dir, Buffer.from('placeholder'), 'x')
        await rm(join(dir, blobPath(target.digest)))
      },
      async (s) => {
        const digest = `sha256:${createHash('sha256').update(passwd).digest('hex')}`
        const dir = s.name.slice('oci:'.length)
        await symlink('/etc/passwd', join(dir, blobPath(digest)))
        return (await s.blob({ mediaType: MediaType.OciLayerTar, digest, size: passwd.length })).toArray()
      },
    )
    expect(err.code).toBe('ERR_SOURCE_INVALID')
    expect(err.message).toMatch(/^oci:.*: blobs\/sha256\/[0-9a-f]{64}: is a symlink, refusing to follow it$/)
  })

  test.each<[string, (dir: string, image: TestImage) => Promise<void>, string, RegExp]>([
    [
      'manifest blob is a symlink',
      async (dir, i) => {
        await rename(join(dir, blobPath(i.manifest.digest)), join(dir, 'elsewhere'))
        await symlink('../../elsewhere', join(dir, blobPath(i.manifest.digest)))
      },
      'ERR_SOURCE_INVALID',
      /is a symlink/,
    ],
    [
      'blobs/sha256 is a symlink to a directory',
      async (dir) => {
        await rename(join(dir, 'blobs', 'sha256'), join(dir, 'real'))
        await symlink('../real', join(dir, 'blobs', 'sha256'))
      },
      'ERR_SOURCE_INVALID',
      /: blobs\/sha256: not a directory$/,
    ],
    [
      'index.json is a symlink',
      async (dir) => {
        await rename(join(dir, 'index.json'), join(dir, 'real.json'))
        await symlink('real.json', join(dir, 'index.json'))
      },
      'ERR_SOURCE_INVALID',
      /index\.json: is a symlink/,
    ],
    [
      'manifest blob is a FIFO (must not hang)',
      async (dir, i) => {
        await rm(join(dir, blobPath(i.manifest.digest)))
        await run('mkfifo', [join(dir, blobPath(i.manifest.digest))])
      },
      'ERR_SOURCE_INVALID',
      /: blobs\/sha256\/\w+: not a regular file$/,
    ],
    [
      'manifest blob is a directory',
      async (dir, i) => {
        await rm(join(dir, blobPath(i.manifest.digest)))
        await mkdir(join(dir, blobPath(i.manifest.digest)))
      },
      'ERR_SOURCE_INVALID',
      /not a regular file/,
    ],
    [
      'manifest content does not match its digest',
      async (dir, i) => {
        const evil = Buffer.from(
          i.manifestBytes.toString().replace('"schemaVersion":2', '"schemaVersion":2 '),
        )
        await writeFile(join(dir, blobPath(i.manifest.digest)), evil.subarray(0, i.manifestBytes.length))
      },
      'ERR_DIGEST_MISMATCH',
      /manifest sha256:\w{12}: digest mismatch: want sha256:\w{64}, got sha256:\w{64}$/,
    ],
    [
      'manifest size differs from index.json',
      async (dir, i) =>
        writeFile(join(dir, blobPath(i.manifest.digest)), Buffer.concat([i.manifestBytes, Buffer.from(' ')])),
      'ERR_SIZE_MISMATCH',
      /index\.json says \d+ bytes, blob has \d+/,
    ],
    [
      'manifest of 8 GiB (sparse) is refused before reading',
      async (dir, i) => truncate(join(dir, blobPath(i.manifest.digest)), 8 * 1024 ** 3),
      'ERR_MANIFEST_TOO_LARGE',
      /manifest of 8589934592 bytes exceeds the limit of 4194304/,
    ],
    [
      'index.json is not JSON',
      async (dir) => writeFile(join(dir, 'index.json'), '{"schemaVersion":2,'),
      'ERR_MANIFEST_INVALID',
      /^oci:\S+: index\.json: not valid JSON/,
    ],
    [
      'index.json with a bad digest',
      async (dir) =>
        writeLayoutFiles(dir, {
          schemaVersion: 2,
          manifests: [{ mediaType: 'x', digest: 'sha256:../../etc', size: 1 }],
        }),
      'ERR_MANIFEST_INVALID',
      /^oci:\S+: index\.json: manifests\[0\]\.digest: "sha256:\.\.\/\.\.\/etc" is not 64 lowercase hex digits$/,
    ],
    [
      'index.json that is an image manifest',
      async (dir, i) => writeFile(join(dir, 'index.json'), i.manifestBytes),
      'ERR_SOURCE_INVALID',
      /index\.json: mediaType: "application\/vnd\.oci\.image\.manifest\.v1\+json" is not an image index/,
    ],
    [
      'index.json of 5 MiB',
      async (dir) => writeFile(join(dir, 'index.json'), Buffer.alloc(5 * 1024 * 1024, 0x20)),
      'ERR_MANIFEST_TOO_LARGE',
      /index\.json: 5242880 bytes exceeds the limit of 4194304/,
    ],
    [
      'index.json missing',
      async (dir) => rm(join(dir, 'index.json')),
      'ERR_SOURCE_INVALID',
      /index\.json: missing/,
    ],
    [
      'oci-layout missing',
      async (dir) => rm(join(dir, 'oci-layout')),
      'ERR_SOURCE_INVALID',
      /oci-layout: missing \(not an OCI image layout\)/,
    ],
    [
      'oci-layout with another version',
      async (dir) => writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}'),
      'ERR_SOURCE_INVALID',
      /oci-layout: imageLayoutVersion: unsupported version "2\.0\.0"/,
    ],
    [
      'oci-layout not JSON',
      async (dir) => writeFile(join(dir, 'oci-layout'), 'nope'),
      'ERR_SOURCE_INVALID',
      /oci-layout: not valid JSON/,
    ],
    [
      'blobs is a file',
      async (dir) =>
        rm(join(dir, 'blobs'), { recursive: true }).then(() => writeFile(join(dir, 'blobs'), '')),
      'ERR_SOURCE_INVALID',
      /: blobs: not a directory/,
    ],
  ])('%s', async (_name, mutate, code, message) => {
    const err = await hostile(mutate)
    expect(err.code).toBe(code)
    expect(err.message).toMatch(message)
    expect(err.message.startsWith(`oci:${err.dir}: `)).toBe(true)
  })

  test('a manifest over maxManifestSize is refused', async () => {
    const err = await hostile(async () => {}, undefined, { maxManifestSize: 100 })
    expect(err.code).toBe('ERR_MANIFEST_TOO_LARGE')
  })

  test.each<[string, (dir: string, image: TestImage) => Promise<void>, string, RegExp]>([
    [
      'layer content does not match its digest',
      async (dir, i) => writeFile(join(dir, blobPath(i.layer.digest)), Buffer.alloc(i.layer.size, 1)),
      'ERR_DIGEST_MISMATCH',
      /blob sha256:\w{12}: digest mismatch/,
    ],
    [
      'layer of another size than its descriptor',
      async (dir, i) => writeFile(join(dir, blobPath(i.layer.digest)), Buffer.alloc(3)),
      'ERR_SIZE_MISMATCH',
      /want \d+ bytes, blob has 3/,
    ],
    [
      'layer missing',
      async (dir, i) => rm(join(dir, blobPath(i.layer.digest))),
      'ERR_NOT_FOUND',
      /blob sha256:\w{64}: not in the layout/,
    ],
  ])('blob: %s', async (_name, mutate, code, message) => {
    const err = await hostile(mutate, readLayer)
    expect(err.code).toBe(code)
    expect(err.message).toMatch(message)
  })

  test('a missing directory is ERR_NOT_FOUND', async () => {
    const err = await failure(ociLayoutSource({ path: '/nonexistent/layout' }).manifest())
    expect(err).toEqual({ code: 'ERR_NOT_FOUND', message: 'oci:/nonexistent/layout: no such directory' })
  })
})
