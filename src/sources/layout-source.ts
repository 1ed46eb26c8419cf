import type { Readable } from 'node:stream'
import { type Digest, digestOf, type ParsedDigest, parseDigest, shortDigest } from '../digest.js'
import { OcipullError } from '../errors.js'
import { FieldReader, parseJson } from '../json-fields.js'
import {
  DEFAULT_MAX_MANIFEST_SIZE,
  type Descriptor,
  type ParsedManifest,
  parseManifest,
} from '../manifest.js'
import { MediaType } from '../media-types.js'
import type { BlobRequest, ImageSource, ManifestRequest } from './image-source.js'
import { type LayoutTarget, resolveLayoutTarget } from './layout-index.js'
import { LiveStreams, lazyOpen, verifiedStream } from './local-source-io.js'

/**
 * The part of an OCI image layout that does not care where the files live: a directory
 * (`oci:`) or a tar of one (`oci-archive:`). Both give a `LayoutFiles`; this turns it into an
 * ImageSource that checks `oci-layout`, reads and resolves `index.json`, and serves manifests
 * and blobs from `blobs/<alg>/<hex>`, with paths built only from validated digests.
 */

/** A regular file of the layout, opened. */
export interface LayoutFile {
  readonly size: number
  /** Reads all `size` bytes; callers check `size` against their limits first. */
  read(signal?: AbortSignal): Promise<Buffer>
  /** Streams all `size` bytes; the file is released when the stream closes. */
  stream(): Readable
  /** Releases the file when neither `read` nor `stream` is wanted (harmless after `read`). */
  close(): Promise<void>
}

export interface LayoutFiles {
  /**
   * Opens `oci-layout`, `index.json` or `blobs/<alg>/<hex>`; undefined when it does not exist.
   * Throws ERR_SOURCE_INVALID when the path is a link or not a regular file.
   */
  open(path: string, signal?: AbortSignal): Promise<LayoutFile | undefined>
  close(): Promise<void>
}

export interface LayoutSourceOptions extends LayoutReferenceOptions {
  /** The source name, e.g. `oci:fixtures/x:latest`; prefixes every error message. */
  name: string
  /** Opens the layout's files (called once, on first use). */
  open(signal: AbortSignal | undefined): Promise<LayoutFiles>
}

/** How a caller names an image inside a layout (shared by `oci:` and `oci-archive:`). */
export interface LayoutReferenceOptions {
  /** The `org.opencontainers.image.ref.name` annotation in index.json. */
  tag?: string | undefined
  /** The manifest digest; with `tag` too, the tag must name this digest. */
  digest?: Digest | undefined
  /** Refuse index.json and manifests larger than this (ERR_MANIFEST_TOO_LARGE). Default 4 MiB. */
  maxManifestSize?: number | undefined
}

const MAX_OCI_LAYOUT_SIZE = 64 * 1024

/** Validates the factory options (ERR_OPTIONS_INVALID), so mistakes surface at creation. */
export function checkLayoutOptions(
  options: LayoutReferenceOptions & { path: string },
  transport: string,
): void {
  const fail = (problem: string): never => {
    throw new OcipullError('ERR_OPTIONS_INVALID', `${transport}: ${problem}`)
  }
  if (typeof options.path !== 'string' || options.path === '') fail('path: want a non-empty string')
  if (
    options.tag !== undefined &&
    (typeof options.tag !== 'string' || options.tag === '' || options.tag.includes('\0'))
  ) {
    fail('tag: want a non-empty string')
  }
  if (options.digest !== undefined) {
    try {
      parseDigest(options.digest)
    } catch (err) {
      fail((err as Error).message)
    }
  }
  const max = options.maxManifestSize
  if (max !== undefined && !(Number.isSafeInteger(max) && max > 0))
    fail('maxManifestSize: want a positive integer')
}

/** `<transport>:<path>[:tag][@digest]`, e.g. `oci:fixtures/x:latest`. */
export function layoutName(transport: string, options: LayoutReferenceOptions & { path: string }): string {
  const tag = options.tag === undefined ? '' : `:${options.tag}`
  const digest = options.digest === undefined ? '' : `@${options.digest}`
  return `${transport}:${options.path}${tag}${digest}`
}

export function layoutSource(options: LayoutSourceOptions): ImageSource {
  const { name } = options
  const maxSize = options.maxManifestSize ?? DEFAULT_MAX_MANIFEST_SIZE
  const streams = new LiveStreams()
  const state = lazyOpen(
    name,
    async (signal) => {
      const files = await options.open(signal)
      try {
        await checkOciLayout(files, name, signal)
        const index = await readIndex(files, name, maxSize, signal)
        const top = resolveLayoutTarget(index, { what: name, tag: options.tag, digest: options.digest })
        return { files, top }
      } catch (err) {
        await files.close()
        throw err
      }
    },
    ({ files }) => files.close(),
  )

  async function openBlob(
    files: LayoutFiles,
    parsed: ParsedDigest,
    digest: Digest,
    kind: string,
    signal?: AbortSignal,
  ) {
    const file = await files.open(`blobs/${parsed.algorithm}/${parsed.hex}`, signal)
    if (file === undefined) {
      throw new OcipullError(
        'ERR_NOT_FOUND',
        `${name}: ${kind} ${digest}: not in the layout (no blobs/${parsed.algorithm}/${parsed.hex})`,
      )
    }
    return file
  }

  return {
    name,

    async manifest(request: ManifestRequest = {}): Promise<ParsedManifest> {
      const { files, top } = await state.get(request.signal)
      const target: LayoutTarget =
        request.digest === undefined || request.digest === top.digest ? top : { digest: request.digest }
      const parsed = parseDigest(target.digest, `${name}: manifest request digest`)
      const what = `${name}: manifest ${shortDigest(target.digest)}`
      const file = await openBlob(files, parsed, target.digest, 'manifest', request.signal)
      try {
        if (file.size > maxSize) {
          throw new OcipullError(
            'ERR_MANIFEST_TOO_LARGE',
            `${what}: manifest of ${file.size} bytes exceeds the limit of ${maxSize}`,
          )
        }
        if (target.size !== undefined && file.size !== target.size) {
          throw new OcipullError(
            'ERR_SIZE_MISMATCH',
            `${what}: size mismatch: index.json says ${target.size} bytes, blob has ${file.size}`,
          )
        }
        const bytes = await file.read(request.signal)
        const got = digestOf(bytes, parsed.algorithm)
        if (got !== target.digest) {
          throw new OcipullError(
            'ERR_DIGEST_MISMATCH',
            `${what}: digest mismatch: want ${target.digest}, got ${got}`,
          )
        }
        const mediaType = request.mediaType ?? target.mediaType
        const result = parseManifest(bytes, {
          maxSize,
          what,
          ...(mediaType === undefined ? {} : { mediaType }),
        })
        return { ...result, digest: target.digest }
      } finally {
        await file.close()
      }
    },

    async blob(descriptor: Descriptor, request: BlobRequest = {}): Promise<Readable> {
      const parsed = parseDigest(descriptor.digest, `${name}: blob descriptor digest`)
      const what = `${name}: blob ${shortDigest(descriptor.digest)}`
      if (!Number.isSafeInteger(descriptor.size) || descriptor.size < 0) {
        throw new OcipullError(
          'ERR_OPTIONS_INVALID',
          `${what}: descriptor size ${String(descriptor.size)} is not valid`,
        )
      }
      const { files } = await state.get(request.signal)
      const file = await openBlob(files, parsed, descriptor.digest, 'blob', request.signal)
      if (file.size !== descriptor.size) {
        await file.close()
        throw new OcipullError(
          'ERR_SIZE_MISMATCH',
          `${what}: size mismatch: want ${descriptor.size} bytes, blob has ${file.size}`,
        )
      }
      const stream = verifiedStream(file.stream(), {
        digest: descriptor.digest,
        size: descriptor.size,
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

async function checkOciLayout(files: LayoutFiles, name: string, signal?: AbortSignal): Promise<void> {
  const what = `${name}: oci-layout`
  const file = await files.open('oci-layout', signal)
  if (file === undefined)
    throw new OcipullError('ERR_SOURCE_INVALID', `${what}: missing (not an OCI image layout)`)
  let bytes: Buffer
  try {
    if (file.size > MAX_OCI_LAYOUT_SIZE) {
      throw new OcipullError(
        'ERR_SOURCE_INVALID',
        `${what}: ${file.size} bytes exceeds the limit of ${MAX_OCI_LAYOUT_SIZE}`,
      )
    }
    bytes = await file.read(signal)
  } finally {
    await file.close()
  }
  const r = new FieldReader('ERR_SOURCE_INVALID', what)
  const version = r.string(
    r.object(parseJson(bytes, 'ERR_SOURCE_INVALID', what), '(document)'),
    'imageLayoutVersion',
    '',
  )
  if (version !== '1.0.0')
    r.fail('imageLayoutVersion', `unsupported version ${JSON.stringify(version.slice(0, 40))} (want "1.0.0")`)
}

async function readIndex(files: LayoutFiles, name: string, maxSize: number, signal?: AbortSignal) {
  const what = `${name}: index.json`
  const file = await files.open('index.json', signal)
  if (file === undefined)
    throw new OcipullError('ERR_SOURCE_INVALID', `${what}: missing (not an OCI image layout)`)
  let bytes: Buffer
  try {
    if (file.size > maxSize) {
      throw new OcipullError(
        'ERR_MANIFEST_TOO_LARGE',
        `${what}: ${file.size} bytes exceeds the limit of ${maxSize}`,
      )
    }
    bytes = await file.read(signal)
  } finally {
    await file.close()
  }
  // The layout's index.json often has no mediaType; parseManifest then infers an index from `manifests`.
  const parsed = parseManifest(bytes, { maxSize, what, mediaType: MediaType.OciIndex })
  if (parsed.kind !== 'index') {
    throw new OcipullError(
      'ERR_SOURCE_INVALID',
      `${what}: mediaType: ${JSON.stringify(parsed.mediaType)} is not an image index`,
    )
  }
  return parsed.index
}
