import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
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

/** A small image in memory: a config, one gzipped layer holding `hello.txt`, a manifest. */
export function makeImage(text = 'hello'): TestImage {
  const layerTar = tarOfFiles({ 'hello.txt': text })
  const configBytes = json({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] },
    config: {},
  })
  const layerBytes = gzipSync(layerTar)
  const config = describe(configBytes, MediaType.OciConfig)
  const layer = describe(layerBytes, MediaType.OciLayerGzip)
  const manifestBytes = json({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] })
  return {
    manifest: describe(manifestBytes, MediaType.OciManifest),
    manifestBytes,
    config,
    configBytes,
    layer,
    layerBytes,
  }
}

/** Writes the blobs of a small image into `layout` (no index.json). */
export async function writeImage(layout: string, text = 'hello'): Promise<TestImage> {
  const image = makeImage(text)
  await writeBlob(layout, image.configBytes, MediaType.OciConfig)
  await writeBlob(layout, image.layerBytes, MediaType.OciLayerGzip)
  await writeBlob(layout, image.manifestBytes, MediaType.OciManifest)
  return image
}

/** A complete layout with one image per tag; returns the images by tag. */
export async function writeTaggedLayout(layout: string, tags: string[]): Promise<Record<string, TestImage>> {
  const { files, images } = memoryLayout(tags)
  for (const [path, bytes] of Object.entries(files)) {
    await mkdir(dirname(join(layout, path)), { recursive: true })
    await writeFile(join(layout, path), bytes)
  }
  return images
}

/** The files of a layout with one image per tag (path → bytes), e.g. to put in a tar. */
export function memoryLayout(tags: string[]): {
  files: Record<string, Buffer>
  images: Record<string, TestImage>
} {
  const images: Record<string, TestImage> = {}
  const files: Record<string, Buffer> = { 'oci-layout': json({ imageLayoutVersion: '1.0.0' }) }
  for (const tag of tags) {
    const image = makeImage(`hello from ${tag}`)
    images[tag] = image
    files[blobPath(image.config.digest)] = image.configBytes
    files[blobPath(image.layer.digest)] = image.layerBytes
    files[blobPath(image.manifest.digest)] = image.manifestBytes
  }
  const manifests = tags.map((tag) => ({ ...images[tag]!.manifest, annotations: { [REF_NAME]: tag } }))
  files['index.json'] = json({ schemaVersion: 2, manifests })
  return { files, images }
}

function describe(bytes: Buffer, mediaType: string): Descriptor {
  return { mediaType, digest: sha256(bytes), size: bytes.length }
}
