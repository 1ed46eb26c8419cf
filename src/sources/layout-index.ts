import type { Digest } from '../digest.js'
import { OcipullError } from '../errors.js'
import type { Descriptor, ImageIndex } from '../manifest.js'

/** The annotation an OCI layout's index.json uses to tag a manifest. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name'

/** What a layout reference resolves to: a descriptor from index.json, or just a digest. */
export interface LayoutTarget {
  digest: Digest
  /** Known when index.json lists the manifest; the blob must then have this size. */
  size?: number
  mediaType?: string
}

export interface ResolveLayoutOptions {
  tag?: string | undefined
  digest?: Digest | undefined
  /** Names the layout in errors, e.g. `oci:fixtures/x`. */
  what: string
}

/**
 * Picks the manifest an OCI layout reference names from the layout's index.json:
 * - `tag`: the manifest whose `org.opencontainers.image.ref.name` is the tag (ERR_NOT_FOUND
 *   listing the tags when none is); with `digest` too, that manifest must have the digest.
 * - `digest` alone: that digest, with the descriptor from index.json when it is listed there.
 *   An unlisted digest is allowed (a child of an index): the blob is verified against it anyway.
 * - neither: the only manifest; ERR_OPTIONS_INVALID listing the tags when there are several.
 */
export function resolveLayoutTarget(index: ImageIndex, options: ResolveLayoutOptions): LayoutTarget {
  const { what, tag, digest } = options
  const manifests = index.manifests
  if (tag !== undefined) {
    const tagged = manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] === tag)
    const first = tagged[0]
    if (first === undefined) {
      throw new OcipullError(
        'ERR_NOT_FOUND',
        `${what}: tag ${JSON.stringify(tag)} not found in index.json; ${available(manifests)}`,
      )
    }
    if (tagged.some((d) => d.digest !== first.digest)) {
      throw new OcipullError(
        'ERR_SOURCE_INVALID',
        `${what}: index.json: tag ${JSON.stringify(tag)} names ${tagged.length} different manifests`,
      )
    }
    if (digest !== undefined && first.digest !== digest) {
      throw new OcipullError(
        'ERR_DIGEST_MISMATCH',
        `${what}: tag ${JSON.stringify(tag)} names ${first.digest}, not the requested ${digest}`,
      )
    }
    return target(first)
  }
  if (digest !== undefined) {
    const listed = manifests.find((d) => d.digest === digest)
    return listed === undefined ? { digest } : target(listed)
  }
  const only = manifests[0]
  if (only === undefined) throw new OcipullError('ERR_NOT_FOUND', `${what}: index.json lists no manifests`)
  if (manifests.length > 1) {
    throw new OcipullError(
      'ERR_OPTIONS_INVALID',
      `${what}: index.json lists ${manifests.length} manifests, choose one with a tag or digest; ${available(manifests)}`,
    )
  }
  return target(only)
}

/** The tags in index.json, in order, without duplicates. */
export function layoutTags(manifests: readonly Descriptor[]): string[] {
  const tags = manifests.map((d) => d.annotations?.[REF_NAME_ANNOTATION]).filter((t) => t !== undefined)
  return [...new Set(tags)]
}

/** `available tags: "a", "b"` (or the digests when nothing is tagged), capped for hostile input. */
function available(manifests: readonly Descriptor[]): string {
  const tags = layoutTags(manifests)
  if (tags.length > 0) return `available tags: ${quoteList(tags)}`
  if (manifests.length > 0) return `no tags; digests: ${quoteList(manifests.map((d) => d.digest))}`
  return 'index.json lists no manifests'
}

/** Quotes (escaping control characters), clips and caps a list for an error message. */
export function quoteList(values: readonly string[], max = 20): string {
  const shown = values.slice(0, max).map((v) => JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v))
  return values.length > max ? `${shown.join(', ')} and ${values.length - max} more` : shown.join(', ')
}

function target(d: Descriptor): LayoutTarget {
  return { digest: d.digest, size: d.size, mediaType: d.mediaType }
}
