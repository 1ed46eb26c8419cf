import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import type { Descriptor } from '../../src/manifest.js'
import { MediaType } from '../../src/media-types.js'
import { tarOfFiles } from './tar-builder.js'

/**
 * Writes OCI image layouts in code, file by file, so tests control every byte (including the
 * broken ones) and do not depend on fixtures or external tools.
 */

export const REF_NAME = 'org.opencontainers.image.ref.name'

export function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

export function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value))
}

/** The relative path of a sha256 blob: `blobs/sha256/<hex>`. */
export function blobPath(digest: string): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`
}

/** Writes `bytes` as a blob and returns its descriptor. */
export async function writeBlob(layout: string, bytes: Buffer, mediaType: string): Promise<Descriptor> {
  const digest = sha256(bytes)
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true })
  await writeFile(join(layout, blobPath(digest)), bytes)
  return { mediaType, digest, size: bytes.length }
}

/** Writes `oci-layout` and `index.json` (a value is JSON-encoded; a Buffer is written as is). */
export async function writeLayoutFiles(
  layout: string,
  index: unknown,
  ociLayout: unknown = { imageLayoutVersion: '1.0.0' },
) {
  await mkdir(layout, { recursive: true })
  await writeFile(join(layout, 'oci-layout'), Buffer.isBuffer(ociLayout) ? ociLayout : json(ociLayout))
  await writeFile(join(layout, 'index.json'), Buffer.isBuffer(index) ? index : json(index))
}

export interface TestImage {
  manifest: Descriptor
  manifestBytes: Buffer
  config: Descriptor
  configBytes: Buffer
  layer: Descriptor
  layerBytes: Buffer
}

/** The bytes of a small image: a config, one gzipped layer holding `hello.txt`, a manifest. */
export function imageBytes(text = 'hello'): {
  config: Buffer
  layer: Buffer
  manifest: (c: Descriptor, l: Descriptor) => Buffer
} {
  const layerTar = tarOfFiles({ 'hello.txt': text })
  const config = json({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] },
    config: {},
  })
  return {
    config,
    layer: gzipSync(layerTar),
    manifest: (c, l) => json({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: c, layers: [l] }),
  }
}

/** Writes the blobs of a small image into `layout` (no index.json). */
export async function writeImage(layout: string, text = 'hello'): Promise<TestImage> {
  const b = imageBytes(text)
  const config = await writeBlob(layout, b.config, MediaType.OciConfig)
  const layer = await writeBlob(layout, b.layer, MediaType.OciLayerGzip)
  const manifestBytes = b.manifest(config, layer)
  const manifest = await writeBlob(layout, manifestBytes, MediaType.OciManifest)
  return { manifest, manifestBytes, config, configBytes: b.config, layer, layerBytes: b.layer }
}

/** A complete layout with one image per tag; returns the images by tag. */
export async function writeTaggedLayout(layout: string, tags: string[]): Promise<Record<string, TestImage>> {
  const images: Record<string, TestImage> = {}
  for (const tag of tags) images[tag] = await writeImage(layout, `hello from ${tag}`)
  const manifests = tags.map((tag) => ({ ...images[tag]!.manifest, annotations: { [REF_NAME]: tag } }))
  await writeLayoutFiles(layout, { schemaVersion: 2, manifests })
  return images
}
