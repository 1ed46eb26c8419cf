import { describe, expect, test } from 'vitest'
import { parseImageConfig } from '../../src/image-config.js'
import { parseManifest } from '../../src/manifest.js'
import { MediaType } from '../../src/media-types.js'

const D1 = `sha256:${'1'.repeat(64)}`
const D2 = `sha256:${'2'.repeat(64)}`
const enc = (o: unknown) => Buffer.from(JSON.stringify(o))

const ociManifest = {
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  config: { mediaType: MediaType.OciConfig, digest: D1, size: 10 },
  layers: [{ mediaType: MediaType.OciLayerGzip, digest: D2, size: 20, annotations: { a: 'b' } }],
}
const dockerManifest = {
  schemaVersion: 2,
  mediaType: MediaType.DockerManifest,
  config: { mediaType: MediaType.DockerConfig, digest: D1, size: 10 },
  layers: [{ mediaType: MediaType.DockerLayerGzip, digest: D2, size: 20 }],
}
const ociIndex = {
  schemaVersion: 2,
  mediaType: MediaType.OciIndex,
  manifests: [
    {
      mediaType: MediaType.OciManifest,
      digest: D1,
      size: 1,
      platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
    },
  ],
}
const dockerList = { ...ociIndex, mediaType: MediaType.DockerManifestList }

describe('parseManifest', () => {
  test.each([
    ['oci manifest', ociManifest, 'manifest', MediaType.OciManifest],
    ['docker v2s2', dockerManifest, 'manifest', MediaType.DockerManifest],
    ['oci index', ociIndex, 'index', MediaType.OciIndex],
    ['docker list', dockerList, 'index', MediaType.DockerManifestList],
    [
      'oci manifest without mediaType',
      { ...ociManifest, mediaType: undefined },
      'manifest',
      MediaType.OciManifest,
    ],
    ['oci index without mediaType', { ...ociIndex, mediaType: undefined }, 'index', MediaType.OciIndex],
  ])('%s', (_name, doc, kind, mediaType) => {
    const parsed = parseManifest(enc(doc))
    expect(parsed.kind).toBe(kind)
    expect(parsed.mediaType).toBe(mediaType)
    expect(parsed.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
  })

  test('keeps platform, annotations and urls', () => {
    const p = parseManifest(enc(ociIndex))
    expect(p.kind === 'index' && p.index.manifests[0]?.platform).toEqual({
      os: 'linux',
      architecture: 'arm',
      variant: 'v7',
    })
  })

  test('uses the header media type when the document has none', () => {
    const p = parseManifest(enc({ ...dockerManifest, mediaType: undefined }), {
      mediaType: `${MediaType.DockerManifest}; charset=utf-8`,
    })
    expect(p.mediaType).toBe(MediaType.DockerManifest)
  })

  const bad: [string, unknown, string, RegExp][] = [
    ['not JSON', '{', 'ERR_MANIFEST_INVALID', /not valid JSON/],
    ['an array', [], 'ERR_MANIFEST_INVALID', /\(document\): want an object/],
    [
      'no schemaVersion',
      { ...ociManifest, schemaVersion: undefined },
      'ERR_MANIFEST_INVALID',
      /schemaVersion: missing/,
    ],
    ['schema 1', { ...ociManifest, schemaVersion: 1 }, 'ERR_MANIFEST_UNSUPPORTED', /schema 1/],
    [
      'schema 3',
      { ...ociManifest, schemaVersion: 3 },
      'ERR_MANIFEST_UNSUPPORTED',
      /schemaVersion: unsupported value 3/,
    ],
    ['schema "2"', { ...ociManifest, schemaVersion: '2' }, 'ERR_MANIFEST_UNSUPPORTED', /schemaVersion/],
    [
      'unknown media type',
      { ...ociManifest, mediaType: 'text/html' },
      'ERR_MANIFEST_UNSUPPORTED',
      /mediaType/,
    ],
    ['no config', { ...ociManifest, config: undefined }, 'ERR_MANIFEST_INVALID', /config: missing/],
    ['no layers', { ...ociManifest, layers: undefined }, 'ERR_MANIFEST_INVALID', /layers: missing/],
    ['layers not array', { ...ociManifest, layers: {} }, 'ERR_MANIFEST_INVALID', /layers: want an array/],
    [
      'size as string',
      { ...ociManifest, layers: [{ mediaType: 'x', digest: D2, size: '20' }] },
      'ERR_MANIFEST_INVALID',
      /layers\[0\]\.size: want a non-negative integer, got "20"/,
    ],
    [
      'negative size',
      { ...ociManifest, layers: [{ mediaType: 'x', digest: D2, size: -1 }] },
      'ERR_MANIFEST_INVALID',
      /layers\[0\]\.size/,
    ],
    [
      'bad digest',
      { ...ociManifest, config: { mediaType: 'x', digest: 'sha256:abc', size: 1 } },
      'ERR_MANIFEST_INVALID',
      /config\.digest/,
    ],
    [
      'mediaType wrong type',
      { ...ociManifest, layers: [{ mediaType: 5, digest: D2, size: 1 }] },
      'ERR_MANIFEST_INVALID',
      /layers\[0\]\.mediaType: want a string, got number 5/,
    ],
    [
      'annotation not string',
      { ...ociManifest, annotations: { a: 1 } },
      'ERR_MANIFEST_INVALID',
      /annotations\.a: want a string/,
    ],
    [
      'index with layers',
      { ...ociIndex, layers: [] },
      'ERR_MANIFEST_INVALID',
      /must not have config or layers/,
    ],
    [
      'manifest with manifests',
      { ...ociManifest, manifests: [] },
      'ERR_MANIFEST_INVALID',
      /must not have manifests/,
    ],
    [
      'platform missing os',
      {
        ...ociIndex,
        manifests: [{ mediaType: 'x', digest: D1, size: 1, platform: { architecture: 'amd64' } }],
      },
      'ERR_MANIFEST_INVALID',
      /manifests\[0\]\.platform\.os: missing/,
    ],
  ]
  test.each(bad)('rejects %s', (_name, doc, code, message) => {
    const bytes = typeof doc === 'string' ? Buffer.from(doc) : enc(doc)
    expect(() => parseManifest(bytes, { what: 'docker://r/x:t' })).toThrow(
      expect.objectContaining({ code, message: expect.stringMatching(message) }),
    )
  })

  test('refuses a manifest over the size cap before parsing', () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20)
    expect(() => parseManifest(big)).toThrow(expect.objectContaining({ code: 'ERR_MANIFEST_TOO_LARGE' }))
    expect(() => parseManifest(enc(ociManifest), { maxSize: 10 })).toThrow(
      expect.objectContaining({ code: 'ERR_MANIFEST_TOO_LARGE' }),
    )
  })
})

describe('parseImageConfig', () => {
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'], Cmd: ['sh'], Labels: { a: 'b' }, Volumes: { '/data': {} } },
    rootfs: { type: 'layers', diff_ids: [D1] },
    history: [{ created_by: 'x', empty_layer: false }],
  }
  test('parses a config', () => {
    const c = parseImageConfig(enc(config))
    expect(c.config?.Cmd).toEqual(['sh'])
    expect(c.rootfs.diff_ids).toEqual([D1])
  })
  test('accepts a null config section', () => {
    expect(parseImageConfig(enc({ ...config, config: null })).config).toBeUndefined()
  })
  test.each([
    ['no rootfs', { ...config, rootfs: undefined }, /rootfs: missing/],
    ['rootfs type', { ...config, rootfs: { type: 'x', diff_ids: [] } }, /rootfs\.type/],
    ['bad diff_id', { ...config, rootfs: { type: 'layers', diff_ids: ['md5:x'] } }, /rootfs\.diff_ids\[0\]/],
    ['no os', { ...config, os: undefined }, /os: missing/],
    ['Cmd string', { ...config, config: { Cmd: 'sh' } }, /config\.Cmd: want an array/],
    ['Env number', { ...config, config: { Env: [1] } }, /config\.Env\[0\]/],
    ['Volumes wrong', { ...config, config: { Volumes: { '/a': 1 } } }, /config\.Volumes\./],
    ['history wrong', { ...config, history: [{ empty_layer: 'yes' }] }, /history\[0\]\.empty_layer/],
  ])('rejects %s', (_n, doc, message) => {
    expect(() => parseImageConfig(enc(doc))).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID', message: expect.stringMatching(message) }),
    )
  })
})
