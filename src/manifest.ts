import { checkDigest, type Digest, digestOf, shortDigest } from './digest.js'
import { OcipullError } from './errors.js'
import { FieldReader, parseJson } from './json-fields.js'
import { isIndexMediaType, MediaType } from './media-types.js'

/** Manifests larger than this are refused before parsing (containers/image uses the same 4 MiB). */
export const DEFAULT_MAX_MANIFEST_SIZE = 4 * 1024 * 1024

export interface Platform {
  os: string
  architecture: string
  variant?: string
  'os.version'?: string
  'os.features'?: string[]
}

export interface Descriptor {
  mediaType: string
  digest: Digest
  size: number
  urls?: string[]
  annotations?: Record<string, string>
  platform?: Platform
  artifactType?: string
}

export interface ImageManifest {
  schemaVersion: 2
  mediaType: string
  config: Descriptor
  layers: Descriptor[]
  subject?: Descriptor
  artifactType?: string
  annotations?: Record<string, string>
}

export interface ImageIndex {
  schemaVersion: 2
  mediaType: string
  manifests: Descriptor[]
  subject?: Descriptor
  artifactType?: string
  annotations?: Record<string, string>
}

/** A manifest or index as fetched: the exact bytes, their digest and the parsed form. */
export type ParsedManifest =
  | { kind: 'manifest'; digest: Digest; mediaType: string; bytes: Uint8Array; manifest: ImageManifest }
  | { kind: 'index'; digest: Digest; mediaType: string; bytes: Uint8Array; index: ImageIndex }

export interface ParseManifestOptions {
  /** The media type the source reported (Content-Type, or the referring descriptor). */
  mediaType?: string | undefined
  /** Refuse larger documents with ERR_MANIFEST_TOO_LARGE. Default 4 MiB. */
  maxSize?: number
  /** Names the manifest in errors, e.g. the reference. */
  what?: string
}

/**
 * Parses an OCI image manifest, OCI index, Docker v2s2 manifest or Docker manifest list.
 * The media type comes from the document's own `mediaType` field when it has one (it is
 * covered by the digest, unlike a header), else from `options.mediaType`, else from its shape.
 * Throws ERR_MANIFEST_TOO_LARGE, ERR_MANIFEST_UNSUPPORTED or ERR_MANIFEST_INVALID naming the field.
 */
export function parseManifest(bytes: Uint8Array, options: ParseManifestOptions = {}): ParsedManifest {
  const digest = digestOf(bytes)
  const what = options.what ?? `manifest ${shortDigest(digest)}`
  const maxSize = options.maxSize ?? DEFAULT_MAX_MANIFEST_SIZE
  if (bytes.byteLength > maxSize) {
    throw new OcipullError(
      'ERR_MANIFEST_TOO_LARGE',
      `${what}: manifest of ${bytes.byteLength} bytes exceeds the limit of ${maxSize}`,
    )
  }
  const r = new FieldReader('ERR_MANIFEST_INVALID', what)
  const doc = r.object(parseJson(bytes, 'ERR_MANIFEST_INVALID', what), '(document)')
  const schemaVersion = doc['schemaVersion']
  if (schemaVersion !== 2) {
    if (schemaVersion === 1) {
      throw new OcipullError(
        'ERR_MANIFEST_UNSUPPORTED',
        `${what}: Docker schema 1 manifests are not supported (deprecated and unverifiable)`,
      )
    }
    if (schemaVersion === undefined) r.fail('schemaVersion', 'missing')
    throw new OcipullError(
      'ERR_MANIFEST_UNSUPPORTED',
      `${what}: schemaVersion: unsupported value ${JSON.stringify(schemaVersion)} (want 2)`,
    )
  }
  const declared = r.optionalString(doc, 'mediaType', '')
  const mediaType =
    declared ??
    nonEmpty(options.mediaType) ??
    (doc['manifests'] !== undefined ? MediaType.OciIndex : MediaType.OciManifest)
  const common = {
    subject: doc['subject'] === undefined ? undefined : parseDescriptor(r, doc['subject'], 'subject'),
    artifactType: r.optionalString(doc, 'artifactType', ''),
    annotations: r.optionalStringMap(doc, 'annotations', ''),
  }
  if (isIndexMediaType(mediaType)) {
    if (doc['config'] !== undefined || doc['layers'] !== undefined) {
      r.fail('manifests', `an index (${mediaType}) must not have config or layers`)
    }
    const manifests = r.array(doc, 'manifests', '').map((d, i) => parseDescriptor(r, d, `manifests[${i}]`))
    const index: ImageIndex = { schemaVersion: 2, mediaType, manifests, ...defined(common) }
    return { kind: 'index', digest, mediaType, bytes, index }
  }
  if (mediaType !== MediaType.OciManifest && mediaType !== MediaType.DockerManifest) {
    throw new OcipullError(
      'ERR_MANIFEST_UNSUPPORTED',
      `${what}: mediaType: unsupported ${JSON.stringify(mediaType)}`,
    )
  }
  if (doc['manifests'] !== undefined)
    r.fail('manifests', `an image manifest (${mediaType}) must not have manifests`)
  const config = parseDescriptor(r, doc['config'], 'config')
  const layers = r.array(doc, 'layers', '').map((d, i) => parseDescriptor(r, d, `layers[${i}]`))
  const manifest: ImageManifest = { schemaVersion: 2, mediaType, config, layers, ...defined(common) }
  return { kind: 'manifest', digest, mediaType, bytes, manifest }
}

/** Validates one descriptor at `path` (used for manifests, indexes and OCI layouts). */
export function parseDescriptor(r: FieldReader, value: unknown, path: string): Descriptor {
  if (value === undefined) r.fail(path, 'missing')
  const o = r.object(value, path)
  const mediaType = r.string(o, 'mediaType', path)
  const digestText = r.string(o, 'digest', path)
  try {
    checkDigest(digestText)
  } catch (err) {
    r.fail(`${path}.digest`, (err as Error).message.replace(/^digest: /, ''))
  }
  const size = r.size(o, 'size', path)
  const platform =
    o['platform'] === undefined ? undefined : parsePlatformField(r, o['platform'], `${path}.platform`)
  return {
    mediaType,
    digest: digestText,
    size,
    ...defined({
      urls: r.optionalStringArray(o, 'urls', path),
      annotations: r.optionalStringMap(o, 'annotations', path),
      platform,
      artifactType: r.optionalString(o, 'artifactType', path),
    }),
  }
}

function parsePlatformField(r: FieldReader, value: unknown, path: string): Platform {
  const o = r.object(value, path)
  return {
    os: r.string(o, 'os', path),
    architecture: r.string(o, 'architecture', path),
    ...defined({
      variant: r.optionalString(o, 'variant', path),
      'os.version': r.optionalString(o, 'os.version', path),
      'os.features': r.optionalStringArray(o, 'os.features', path),
    }),
  }
}

function nonEmpty(s: string | undefined): string | undefined {
  if (s === undefined) return undefined
  const base = s.split(';')[0]?.trim()
  return base === '' || base === 'application/json' || base === 'text/plain' ? undefined : base
}

/** Drops keys whose value is undefined, for `exactOptionalPropertyTypes`. */
export function defined<T extends Record<string, unknown>>(
  o: T,
): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v
  return out as { [K in keyof T]?: Exclude<T[K], undefined> }
}
