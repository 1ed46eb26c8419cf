import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { type RuntimeConfigOptions, toRuntimeConfig } from './bundle/runtime-config.js'
import { writeBundle } from './bundle/write-bundle.js'
import { type LayerDecryptor, unwrapManifestKeys } from './decrypt/layer-decryptor.js'
import { abortError } from './errors.js'
import { eventSink, layerEvents, type PullEvent, phaseRunner } from './events.js'
import { replaceDirectory } from './fs/replace-directory.js'
import { applyLayer } from './layer/apply-layer.js'
import type { PlatformSpec } from './platform.js'
import { assertLinuxImage, type ResolvedImage, resolvedEvent, resolveImage } from './resolve-image.js'
import type { ImageSource } from './sources/image-source.js'
import type { UnpackOptions } from './unpack/unpack-tar.js'

export interface UnpackImageOptions {
  /** The bundle directory: `rootfs/` and `config.json` are written there. */
  bundle: string
  platform?: PlatformSpec
  /** Limits for each layer's tar (entries, bytes, path length). */
  limits?: UnpackOptions['limits']
  /** Overrides for config.json (args, entrypoint, env, cwd, user, …). */
  runtime?: Omit<RuntimeConfigOptions, 'rootfs'>
  /** Progress, per-layer bytes and timings, warnings (also published on the `ocipull:pull` channel). */
  onEvent?: (event: PullEvent) => void
  /** Minimum milliseconds between two `layer-progress` events of a layer (default 250). */
  progressIntervalMs?: number
  /** Unwraps the keys of encrypted layers (see `createLayerDecryptor`). */
  decryptor?: LayerDecryptor
  signal?: AbortSignal
}

export interface UnpackedImage {
  image: ResolvedImage
  bundle: string
  rootfs: string
  configPath: string
}

/**
 * Unpacks an image into an OCI runtime bundle, the way `umoci unpack` does: the layers are
 * applied in order onto one flattened rootfs, each streamed once and verified (blob digest and
 * size, media type magic, diff_id), in a staging directory inside the bundle. Only when every
 * layer has passed is the staging directory renamed to `rootfs` (replacing an earlier one) and
 * config.json written; on any failure the staging directory is removed and an existing bundle
 * is left as it was. Non-Linux images are refused before any layer is fetched.
 */
export async function unpackImage(source: ImageSource, options: UnpackImageOptions): Promise<UnpackedImage> {
  const { signal } = options
  const emit = eventSink(options.onEvent)
  const interval = options.progressIntervalMs ?? 250
  const started = performance.now()
  const phase = phaseRunner(emit)
  const image = await phase('resolve', async () => {
    const resolved = await resolveImage(source, {
      ...(options.platform ? { platform: options.platform } : {}),
      ...(signal ? { signal } : {}),
    })
    emit(resolvedEvent(source, resolved, started))
    return resolved
  })
  assertLinuxImage(source, image)
  // Every layer key first, so that a missing or wrong key fails before anything is fetched.
  if (image.manifest.layers.some((l) => l.mediaType.endsWith('+encrypted'))) {
    await phase('keys', () =>
      unwrapManifestKeys(options.decryptor, image.manifest.layers, {
        what: source.name,
        ...(signal ? { signal } : {}),
      }),
    )
  }
  await mkdir(options.bundle, { recursive: true })
  const staging = await mkdtemp(join(options.bundle, '.rootfs-staging-'))
  const rootfs = join(options.bundle, 'rootfs')
  try {
    await phase('layers', () => applyLayers(staging))
    const config = toRuntimeConfig(image, { ...options.runtime, rootfs: staging })
    const configPath = await phase('bundle', async () => {
      await replaceDirectory(staging, rootfs)
      return writeBundle(options.bundle, config, signal ? { signal } : {})
    })
    emit({ type: 'committed', bundle: options.bundle, ms: performance.now() - started })
    return { image, bundle: options.bundle, rootfs, configPath }
  } catch (err) {
    await rm(staging, { recursive: true, force: true })
    throw err
  }

  async function applyLayers(staging: string): Promise<void> {
    for (const [index, descriptor] of image.manifest.layers.entries()) {
      if (signal?.aborted) throw abortError(signal, source.name)
      const events = layerEvents(emit, index, descriptor, interval)
      const stats = await applyLayer({
        source,
        descriptor,
        diffId: image.config.rootfs.diff_ids[index] as string,
        root: staging,
        whiteouts: 'apply',
        ...(options.limits ? { limits: options.limits } : {}),
        ...(options.decryptor ? { decryptor: options.decryptor } : {}),
        onWarning: (w) => emit({ type: 'warning', ...w }),
        onProgress: events.progress,
        ...(signal ? { signal } : {}),
      })
      events.done(stats)
    }
  }
}
