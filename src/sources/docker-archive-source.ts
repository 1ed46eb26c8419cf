import type { Readable } from 'node:stream'
import { type Digest, parseDigest, shortDigest } from '../digest.js'
import { OcipullError } from '../errors.js'
import { FieldReader, parseJson } from '../json-fields.js'
import {
  DEFAULT_MAX_MANIFEST_SIZE,
  type Descriptor,
  type ParsedManifest,
  parseManifest,
} from '../manifest.js'
import { MediaType } from '../media-types.js'
import { formatReference, parseReference } from '../reference.js'
import type { BlobRequest, ImageSource, ManifestRequest } from './image-source.js'
import { quoteList } from './layout-index.js'
import {
  hashRange,
  LiveStreams,
  lazyOpen,
  rangeStream,
  readRange,
  verifiedStream,
} from './local-source-io.js'
import { findTarFile, normalizeTarPath, openTarArchive, type TarArchive } from './tar-index.js'

export interface DockerArchiveSourceOptions {
  /** The tar written by `docker save` or `skopeo copy … docker-archive:f.tar`. */
  path: string
  /** A RepoTags entry, normalized like Docker (`busybox` = `docker.io/library/busybox:latest`). */
  tag?: string | undefined
  /** The position in manifest.json, instead of a tag. */
  index?: number | undefined
  /** Refuse archives with more entries than this (ERR_SOURCE_INVALID). Default 100 000. */
  maxEntries?: number | undefined
}

const MAX_MANIFEST_JSON = 4 * 1024 * 1024

interface ArchiveImage {
  archive: TarArchive
  manifest: ParsedManifest
  /** The files the synthesized manifest names, by digest. */
  blobs: Map<Digest, { offset: number; size: number; path: string }>
}

/**
 * A `docker-archive:` tar as an ImageSource, named `docker-archive:<path>[:tag]` (or `:@<index>`).
 * On first use it reads manifest.json, picks the image by tag or index (default: the only one)
 * and hashes its config and layer files once, streaming, to synthesize a Docker v2 schema 2
 * manifest: config `application/vnd.docker.container.image.v1+json`, layers
 * `…rootfs.diff.tar` (`.tar.gzip` when the file starts with the gzip magic; zstd files get the
 * OCI zstd layer type), each with the sha256 and size of the file in the archive. The manifest's
 * bytes are our canonical JSON (JSON.stringify, fixed key order, no whitespace) and its digest
 * is over those bytes: it is NOT the digest the image had in a registry, and `manifest({digest})`
 * only knows that one digest. Blob reads are verified again against the synthesized digests.
 */
export function dockerArchiveSource(options: DockerArchiveSourceOptions): ImageSource {
  const fail = (problem: string): never => {
    throw new OcipullError('ERR_OPTIONS_INVALID', `docker-archive: ${problem}`)
  }
  if (typeof options.path !== 'string' || options.path === '') fail('path: want a non-empty string')
  if (options.tag !== undefined && options.index !== undefined) fail('give a tag or an index, not both')
  if (options.tag !== undefined && (typeof options.tag !== 'string' || options.tag === ''))
    fail('tag: want a non-empty string')
  if (options.index !== undefined && !(Number.isSafeInteger(options.index) && options.index >= 0)) {
    fail('index: want a non-negative integer')
  }
  if (
    options.maxEntries !== undefined &&
    !(Number.isSafeInteger(options.maxEntries) && options.maxEntries > 0)
  ) {
    fail('maxEntries: want a positive integer')
  }
  const suffix =
    options.tag !== undefined ? `:${options.tag}` : options.index !== undefined ? `:@${options.index}` : ''
  const name = `docker-archive:${options.path}${suffix}`
  const streams = new LiveStreams()
  const state = lazyOpen(
    name,
    async (signal): Promise<ArchiveImage> => {
      const archive = await openTarArchive(options.path, {
        what: name,
        signal,
        ...(options.maxEntries === undefined ? {} : { maxEntries: options.maxEntries }),
      })
      try {
        return await loadImage(archive, name, options, signal)
      } catch (err) {
        await archive.close()
        throw err
      }
    },
    ({ archive }) => archive.close(),
  )

  return {
    name,

    async manifest(request: ManifestRequest = {}): Promise<ParsedManifest> {
      const { manifest } = await state.get(request.signal)
      if (request.digest !== undefined && request.digest !== manifest.digest) {
        parseDigest(request.digest, `${name}: manifest request digest`)
        throw new OcipullError(
          'ERR_NOT_FOUND',
          `${name}: manifest ${request.digest}: not in the archive (its only manifest is the synthesized ${manifest.digest})`,
        )
      }
      return manifest
    },

    async blob(descriptor: Descriptor, request: BlobRequest = {}): Promise<Readable> {
      parseDigest(descriptor.digest, `${name}: blob descriptor digest`)
      const what = `${name}: blob ${shortDigest(descriptor.digest)}`
      const { archive, blobs } = await state.get(request.signal)
      const file = blobs.get(descriptor.digest)
      if (file === undefined) throw new OcipullError('ERR_NOT_FOUND', `${what}: not in the archive's image`)
      if (file.size !== descriptor.size) {
        throw new OcipullError(
          'ERR_SIZE_MISMATCH',
          `${what}: size mismatch: want ${descriptor.size} bytes, ${file.path} has ${file.size}`,
        )
      }
      const input = rangeStream(archive.handle, file.offset, file.size, false)
      const stream = verifiedStream(input, {
        digest: descriptor.digest,
        size: file.size,
        what,
        signal: request.signal,
        hash: request.hash,
      })
      return streams.add(stream)
    },

    async close(): Promise<void> {
      streams.destroyAll(new OcipullError('ERR_ABORTED', `${name}: source closed`))
      await state.close()
    },
  }
}

interface ManifestEntry {
  config: string
  repoTags: string[]
  layers: string[]
}

async function loadImage(
  archive: TarArchive,
  name: string,
  options: DockerArchiveSourceOptions,
  signal: AbortSignal | undefined,
): Promise<ArchiveImage> {
  const what = `${name}: manifest.json`
  const file = findTarFile(archive.index, 'manifest.json', { followLinks: true, what: name })
  if (file === undefined)
    throw new OcipullError('ERR_SOURCE_INVALID', `${what}: missing (not a docker-archive)`)
  if (file.size > MAX_MANIFEST_JSON) {
    throw new OcipullError(
      'ERR_SOURCE_INVALID',
      `${what}: ${file.size} bytes exceeds the limit of ${MAX_MANIFEST_JSON}`,
    )
  }
  const bytes = await readRange(archive.handle, file.offset, file.size, { what, signal })
  const entries = parseManifestJson(parseJson(bytes, 'ERR_SOURCE_INVALID', what), what)
  const position = pickEntry(entries, options, name)
  const entry = entries[position]!
  const at = `manifest.json: [${position}]`

  const blobs = new Map<Digest, { offset: number; size: number; path: string }>()
  const hashed = new Map<string, Descriptor>()
  const describe = async (path: string, field: string, layer: boolean): Promise<Descriptor> => {
    const normalized = checkArchivePath(path, `${name}: ${at}.${field}`)
    const cached = hashed.get(normalized)
    if (cached !== undefined) return cached
    const found = findTarFile(archive.index, normalized, { followLinks: true, what: name })
    if (found === undefined) {
      throw new OcipullError(
        'ERR_SOURCE_INVALID',
        `${name}: ${at}.${field}: ${JSON.stringify(path)} is not in the archive`,
      )
    }
    const { digest, head } = await hashRange(archive.handle, found.offset, found.size, {
      what: `${name}: ${normalized}`,
      signal,
    })
    const mediaType = layer ? layerMediaType(head) : MediaType.DockerConfig
    const descriptor: Descriptor = { mediaType, digest, size: found.size }
    hashed.set(normalized, descriptor)
    blobs.set(digest, { ...found, path: normalized })
    return descriptor
  }
  const config = await describe(entry.config, 'Config', false)
  const layers: Descriptor[] = []
  for (const [i, layer] of entry.layers.entries()) layers.push(await describe(layer, `Layers[${i}]`, true))

  const synthesized = { schemaVersion: 2, mediaType: MediaType.DockerManifest, config, layers }
  const manifestBytes = new TextEncoder().encode(JSON.stringify(synthesized))
  const manifest = parseManifest(manifestBytes, {
    maxSize: DEFAULT_MAX_MANIFEST_SIZE,
    what: `${name}: synthesized manifest`,
  })
  return { archive, manifest, blobs }
}

function parseManifestJson(doc: unknown, what: string): ManifestEntry[] {
  const r = new FieldReader('ERR_SOURCE_INVALID', what)
  if (!Array.isArray(doc)) return r.fail('(document)', 'want an array of images')
  return doc.map((value, i) => {
    const path = `[${i}]`
    const o = r.object(value, path)
    const layers = r.array(o, 'Layers', path).map((l, j): string => {
      if (typeof l !== 'string') return r.fail(`${path}.Layers[${j}]`, 'want a string')
      return l
    })
    return {
      config: r.string(o, 'Config', path),
      repoTags: r.optionalStringArray(o, 'RepoTags', path) ?? [],
      layers,
    }
  })
}

function pickEntry(entries: ManifestEntry[], options: DockerArchiveSourceOptions, name: string): number {
  const allTags = entries.flatMap((e) => e.repoTags)
  const listing = allTags.length > 0 ? `available tags: ${quoteList(allTags)}` : 'no image has a tag'
  if (options.index !== undefined) {
    if (options.index >= entries.length) {
      throw new OcipullError(
        'ERR_NOT_FOUND',
        `${name}: manifest.json has ${entries.length} images, no index ${options.index}`,
      )
    }
    return options.index
  }
  if (options.tag !== undefined) {
    const want = normalizeTag(options.tag)
    const matches = entries.flatMap((e, i) => (e.repoTags.some((t) => normalizeTag(t) === want) ? [i] : []))
    if (matches.length > 1) {
      throw new OcipullError(
        'ERR_SOURCE_INVALID',
        `${name}: manifest.json: tag ${JSON.stringify(options.tag)} names ${matches.length} images`,
      )
    }
    if (matches[0] === undefined) {
      throw new OcipullError(
        'ERR_NOT_FOUND',
        `${name}: tag ${JSON.stringify(options.tag)} not found in manifest.json; ${listing}`,
      )
    }
    return matches[0]
  }
  if (entries.length === 0) throw new OcipullError('ERR_NOT_FOUND', `${name}: manifest.json lists no images`)
  if (entries.length > 1) {
    throw new OcipullError(
      'ERR_OPTIONS_INVALID',
      `${name}: manifest.json lists ${entries.length} images, choose one with a tag or index; ${listing}`,
    )
  }
  return 0
}

/** `busybox` and `busybox:latest` → `docker.io/library/busybox:latest`; unparsable tags stay as they are. */
function normalizeTag(tag: string): string {
  try {
    const ref = parseReference(tag)
    return ref.digest === undefined ? formatReference(ref) : tag
  } catch {
    return tag
  }
}

/** A plain relative path inside the archive: not absolute, no `..`, no NUL. Returns it normalized. */
function checkArchivePath(path: string, what: string): string {
  const normalized = normalizeTarPath(path)
  if (normalized === undefined || normalized === '' || path.length > 4096) {
    throw new OcipullError(
      'ERR_SOURCE_INVALID',
      `${what}: ${JSON.stringify(path.slice(0, 80))} is not a plain relative path inside the archive`,
    )
  }
  return normalized
}

function layerMediaType(head: Buffer): string {
  if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.DockerLayerGzip
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return MediaType.OciLayerZstd
  return MediaType.DockerLayerTar
}
