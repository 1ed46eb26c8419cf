import { gzipSync } from 'node:zlib'
import type { Descriptor } from '../../src/manifest.js'
import { MediaType } from '../../src/media-types.js'
import { json, REF_NAME, sha256, writeBlob, writeLayoutFiles } from './layout-writer.js'

export interface LayeredImage {
  manifest: Descriptor
  config: Descriptor
  layers: Descriptor[]
  diffIds: string[]
}

/**
 * Writes an OCI layout at `layout` holding one image, tagged `tag`, whose layers are the given
 * tars (gzipped), bottom first. Options: `config` merged into the image config.
 */
export async function writeLayeredImage(
  layout: string,
  tars: Buffer[],
  options: { tag?: string; config?: Record<string, unknown>; os?: string } = {},
): Promise<LayeredImage> {
  const layers: Descriptor[] = []
  for (const tar of tars) layers.push(await writeBlob(layout, gzipSync(tar), MediaType.OciLayerGzip))
  const diffIds = tars.map((t) => sha256(t))
  const configBytes = json({
    architecture: 'amd64',
    os: options.os ?? 'linux',
    rootfs: { type: 'layers', diff_ids: diffIds },
    config: options.config ?? { Cmd: ['/bin/sh'] },
  })
  const config = await writeBlob(layout, configBytes, MediaType.OciConfig)
  const manifestBytes = json({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers })
  const manifest = await writeBlob(layout, manifestBytes, MediaType.OciManifest)
  await writeLayoutFiles(layout, {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [{ ...manifest, annotations: { [REF_NAME]: options.tag ?? 'latest' } }],
  })
  return { manifest, config, layers, diffIds }
}
