import { type Digest, digestOf, parseDigest, shortDigest } from './digest.js'
import { abortError, OcipullError } from './errors.js'
import type { PullEvent } from './events.js'
import { DEFAULT_MAX_CONFIG_SIZE, type ImageConfig, parseImageConfig } from './image-config.js'
import type { Descriptor, ImageIndex, ImageManifest, ParsedManifest, Platform } from './manifest.js'
import { isIndexMediaType } from './media-types.js'
import { formatPlatform, hostPlatform, matchPlatform, type PlatformSpec, platformOf } from './platform.js'
import type { ImageSource } from './sources/image-source.js'
import { readBlob } from './sources/read-blob.js'

export interface ResolveImageOptions {
  /** The platform to pick from an index (default: this host's). */
  platform?: PlatformSpec
  /**
   * Where config blobs are kept between pulls (the layer store): a config found here by digest is
   * not fetched. Its bytes are checked against the digest all the same.
   */
  configCache?: {
    get(digest: Digest): Promise<Uint8Array | undefined>
    put(digest: Digest, bytes: Uint8Array): Promise<void>
  }
  signal?: AbortSignal
}

/** One image, resolved for a platform: the manifest, its config, and the index it came from. */
export interface ResolvedImage {
  /** The source it came from, e.g. `docker://localhost:5000/app:1`. */
  source: string
  /** Digest of the platform's image manifest. */
  digest: Digest
  manifest: ImageManifest
  manifestBytes: Uint8Array
  mediaType: string
  config: ImageConfig
  configBytes: Uint8Array
  /** The index (or manifest list) the reference named, when it named one. */
  index?: { digest: Digest; mediaType: string; index: ImageIndex; bytes: Uint8Array }
  /** The platforms the index offers, in its order. */
  platforms?: Platform[]
}

const MAX_INDEX_DEPTH = 4

/**
 * Resolves the source's reference to one image manifest for the platform, and its config.
 * Costs one manifest request, one more per index level, and one config blob request; no layers.
 * Checks that the config's rootfs.diff_ids match the manifest's layers in number.
 */
export async function resolveImage(
  source: ImageSource,
  options: ResolveImageOptions = {},
): Promise<ResolvedImage> {
  const { signal } = options
  const wanted = options.platform ?? hostPlatform()
  let top: ParsedManifest = await source.manifest(signal ? { signal } : {})
  let current = top
  let outer: ResolvedImage['index']
  let platforms: Platform[] | undefined
  for (let depth = 0; current.kind === 'index'; depth++) {
    if (depth >= MAX_INDEX_DEPTH) {
      throw new OcipullError(
        'ERR_MANIFEST_INVALID',
        `${source.name}: indexes nested more than ${MAX_INDEX_DEPTH} deep`,
      )
    }
    const index = current.index
    outer ??= { digest: current.digest, mediaType: current.mediaType, index, bytes: current.bytes }
    const choice = chooseFromIndex(
      index.manifests,
      wanted,
      `${source.name}: index ${shortDigest(current.digest)}`,
    )
    platforms ??= index.manifests.flatMap((d) => (d.platform ? [d.platform] : []))
    if (signal?.aborted) throw abortError(signal, source.name)
    current = await source.manifest({
      digest: choice.digest,
      mediaType: choice.mediaType,
      ...(signal ? { signal } : {}),
    })
    if (current.digest !== choice.digest) {
      throw new OcipullError(
        'ERR_DIGEST_MISMATCH',
        `${source.name}: manifest digest mismatch: want ${choice.digest}, got ${current.digest}`,
      )
    }
  }
  top = current
  const manifest = top.manifest
  const what = `${source.name}: config ${shortDigest(manifest.config.digest)}`
  const cache = options.configCache
  let configBytes = await cache?.get(manifest.config.digest)
  if (
    configBytes !== undefined &&
    digestOf(configBytes, parseDigest(manifest.config.digest).algorithm) !== manifest.config.digest
  ) {
    configBytes = undefined
  }
  if (configBytes === undefined) {
    configBytes = await readBlob(source, manifest.config, {
      maxSize: DEFAULT_MAX_CONFIG_SIZE,
      ...(signal ? { signal } : {}),
    })
    await cache?.put(manifest.config.digest, configBytes)
  }
  const config = parseImageConfig(configBytes, what)
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new OcipullError(
      'ERR_CONFIG_INVALID',
      `${what}: rootfs.diff_ids has ${config.rootfs.diff_ids.length} entries but the manifest has ${manifest.layers.length} layers`,
    )
  }
  const image: ResolvedImage = {
    source: source.name,
    digest: top.digest,
    manifest,
    manifestBytes: top.bytes,
    mediaType: top.mediaType,
    config,
    configBytes,
  }
  if (outer !== undefined) image.index = outer
  if (platforms !== undefined) image.platforms = platforms
  return image
}

/** The index entry for `wanted`; ERR_PLATFORM_NOT_FOUND lists what the index offers. */
export function chooseFromIndex(
  manifests: readonly Descriptor[],
  wanted: PlatformSpec,
  what: string,
): Descriptor {
  const candidates = manifests.filter(
    (d) => isIndexMediaType(d.mediaType) || d.platform !== undefined || manifests.length === 1,
  )
  const withPlatform = candidates.filter((d) => d.platform !== undefined)
  const match = matchPlatform(withPlatform, wanted)
  if (match !== undefined) return match
  // An entry without a platform (e.g. a single-image OCI layout index) is taken when it is the only one.
  const bare = candidates.filter((d) => d.platform === undefined)
  if (withPlatform.length === 0 && bare.length === 1 && bare[0]) return bare[0]
  const offered = withPlatform.map((d) => formatPlatform(platformOf(d.platform as Platform)))
  throw new OcipullError(
    'ERR_PLATFORM_NOT_FOUND',
    `${what}: no manifest for platform ${formatPlatform(wanted)}; available: ${offered.length ? offered.join(', ') : 'none'}`,
  )
}

/** The `resolved` event of a pull or unpack that started at `started` (performance.now()). */
export function resolvedEvent(
  source: ImageSource,
  image: ResolvedImage,
  started: number,
): Extract<PullEvent, { type: 'resolved' }> {
  return {
    type: 'resolved',
    source: source.name,
    digest: image.digest,
    platform: formatPlatform(platformOf(image.config)),
    layers: image.manifest.layers.length,
    bytes: image.manifest.layers.reduce((n, l) => n + l.size, 0),
    ms: performance.now() - started,
  }
}

/** Bundles are for Linux: any other OS is ERR_IMAGE_UNSUPPORTED (before any layer is fetched). */
export function assertLinuxImage(source: ImageSource, image: ResolvedImage): void {
  if (image.config.os !== 'linux') {
    throw new OcipullError(
      'ERR_IMAGE_UNSUPPORTED',
      `${source.name}: image ${shortDigest(image.digest)} is for ${image.config.os}, not linux`,
    )
  }
}
