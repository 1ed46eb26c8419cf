import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import pLimit from 'p-limit'
import { type RuntimeConfigOptions, toRuntimeConfig } from './bundle/runtime-config.js'
import { writeBundle } from './bundle/write-bundle.js'
import { type LayerDecryptor, unwrapManifestKeys } from './decrypt/layer-decryptor.js'
import type { Digest } from './digest.js'
import { abortError, OcipullError } from './errors.js'
import { eventSink, layerEvents, type PullEvent, phaseRunner } from './events.js'
import { replaceDirectory } from './fs/replace-directory.js'
import { applyLayer } from './layer/apply-layer.js'
import { layerCodec } from './layer/layer-codec.js'
import { formatPlatform, type PlatformSpec, platformOf } from './platform.js'
import { assertPolicyAccepted, type PolicyVerdict } from './policy/policy-verdict.js'
import type { PolicyVerifier } from './policy/policy-verifier.js'
import { assertLinuxImage, type ResolvedImage, resolvedEvent, resolveImage } from './resolve-image.js'
import { dirSnapshotter } from './snapshot/dir-snapshotter.js'
import { overlaySnapshotter } from './snapshot/overlay-snapshotter.js'
import { prepareOverlayLayer } from './snapshot/prepare-overlay-layer.js'
import type { Rootfs, Snapshotter, StoredLayer } from './snapshot/snapshotter.js'
import type { ImageSource } from './sources/image-source.js'
import { chainIds } from './store/chain-id.js'
import { type ImageRecord, type LayerRecord, LayerStore, type StagedLayer } from './store/layer-store.js'
import type { LayerChange } from './unpack/layer-changes.js'
import type { UnpackOptions } from './unpack/unpack-tar.js'

const run = promisify(execFile)

export interface PullImageOptions {
  /** The bundle directory: `rootfs/` and `config.json` are made there. */
  bundle: string
  /** The layer store's directory (created if missing), shared by pulls of any image. */
  workDir: string
  /** 'dir' (default: a flattened copy) or 'overlay' (an overlayfs mount; root only), or your own. */
  snapshotter?: 'dir' | 'overlay' | Snapshotter
  platform?: PlatformSpec
  /** Layers downloaded and unpacked at once (default 3, like image-rs and containerd). */
  concurrency?: number
  /** Limits for each layer's tar (entries, bytes, path length). */
  limits?: UnpackOptions['limits']
  /** Overrides for config.json (args, entrypoint, env, cwd, user, …). */
  runtime?: Omit<RuntimeConfigOptions, 'rootfs'>
  /**
   * The signature policy: evaluated on the resolved manifest before any layer is fetched, also
   * when every layer is already in the store. A rejection is ERR_POLICY_REJECTED.
   */
  policy?: PolicyVerifier
  /**
   * Unwraps the keys of `+encrypted` layers (src/decrypt: private keys, a KBS or other KeySource,
   * key providers). Keys are unwrapped once each, while the policy is checked and the first
   * layers download; an encrypted layer without a decryptor is ERR_KEY_UNAVAILABLE.
   */
  decryptor?: LayerDecryptor
  /** Progress, phases, per-layer bytes and timings, warnings (also on the `ocipull:pull` channel). */
  onEvent?: (event: PullEvent) => void
  /** Minimum milliseconds between two `layer-progress` events of a layer (default 250). */
  progressIntervalMs?: number
  signal?: AbortSignal
}

export interface PulledImage {
  image: ResolvedImage
  record: ImageRecord
  bundle: string
  rootfs: Rootfs
  configPath: string
  /** Layers taken from the store without downloading anything. */
  cachedLayers: number
  /** The policy's verdict, when a policy was given (always an acceptance here). */
  verdict?: PolicyVerdict
}

/**
 * Pulls an image into the layer store and makes an OCI runtime bundle of it:
 *
 * 1. resolve: the manifest for the platform and its config (a config in the store is not fetched);
 *    then the signature policy, if any, before any layer byte is fetched;
 * 2. layers: each layer missing from the store is streamed once from the source through digest
 *    and size check → decompression → diff_id check → tar extraction into its own staging
 *    directory, up to `concurrency` at a time; layers are committed to the store in order, each
 *    only after all its checks passed (a failure discards its staging directory and stops the
 *    others). Layers already in the store (by ChainID) are not downloaded at all;
 * 3. snapshot: the snapshotter stacks the chain into `<bundle>/rootfs`;
 * 4. bundle: config.json, written atomically, and the image record in the store.
 *
 * Pulling into an existing bundle replaces its rootfs and config.json; nothing is left behind
 * on failure but committed (verified) layers in the store. Non-Linux images are refused before
 * any layer is fetched.
 */
export async function pullImage(source: ImageSource, options: PullImageOptions): Promise<PulledImage> {
  const { signal } = options
  const emit = eventSink(options.onEvent)
  const started = performance.now()
  const phase = phaseRunner(emit)
  const snapshotter = pickSnapshotter(options.snapshotter)
  const store = await LayerStore.open(options.workDir)

  const image = await phase('resolve', async () => {
    const resolved = await resolveImage(source, {
      ...(options.platform ? { platform: options.platform } : {}),
      configCache: { get: (d) => store.getBlob(d), put: (d, b) => store.putBlob(d, b) },
      ...(signal ? { signal } : {}),
    })
    emit(resolvedEvent(source, resolved, started))
    return resolved
  })
  assertLinuxImage(source, image)
  const diffIds = image.config.rootfs.diff_ids
  const chain = chainIds(diffIds)
  const existing = await Promise.all(chain.map((id) => store.getLayer(id)))

  // The keys of the encrypted layers are unwrapped (one KBS session, each key
  // once) while the policy is checked and the first layers download; a failure stops the pull.
  const keysFailed = new AbortController()
  const stopKeys = new AbortController()
  // Also for layers already in the store: holding the key is what entitles a pull to an encrypted
  // layer (as containerd's imgcrypt checks), not that someone else unpacked it before.
  const toDecrypt = image.manifest.layers.filter((d) => codecOf(d).encrypted)
  const keys =
    toDecrypt.length === 0
      ? undefined
      : phase('keys', () =>
          unwrapManifestKeys(options.decryptor, toDecrypt, {
            what: source.name,
            signal: signal ? AbortSignal.any([signal, stopKeys.signal]) : stopKeys.signal,
          }),
        )
  keys?.catch((err: unknown) => keysFailed.abort(err))

  const policy = options.policy
  let verdict: PolicyVerdict | undefined
  if (policy !== undefined) {
    try {
      verdict = await phase('policy', async () => {
        const v = await policy.verify(image, source, signal ? { signal } : {})
        assertPolicyAccepted(v)
        return v
      })
    } catch (err) {
      stopKeys.abort(err) // no KBS round trips for a rejected image
      throw err
    }
  }

  const release = store.lease(chain)
  try {
    let cachedLayers = 0
    const layers = await phase('layers', async () => {
      const layerSignal = signal ? AbortSignal.any([signal, keysFailed.signal]) : keysFailed.signal
      const storing = storeLayers(
        source,
        image,
        chain,
        existing,
        store,
        { ...options, signal: layerSignal },
        emit,
      ).catch((err: unknown) => {
        if (!keysFailed.signal.aborted) stopKeys.abort(err)
        throw err
      })
      // Both settle before the pull fails (so no layer is still writing to staging), and the
      // first failure is the one reported: a key failure aborts the layers, a layer failure
      // stops the key unwrapping.
      const [layersResult, keysResult] = await Promise.allSettled([storing, keys])
      if (keysResult.status === 'rejected' && !stopKeys.signal.aborted) throw keysResult.reason
      if (layersResult.status === 'rejected') throw layersResult.reason
      cachedLayers = layersResult.value.cached
      return layersResult.value.stored
    })
    const rootfs = await phase('snapshot', () =>
      placeRootfs(snapshotter, layers, options.bundle, (w) => emit({ type: 'warning', ...w }), signal),
    )
    const record: ImageRecord = {
      manifestDigest: image.digest,
      mediaType: image.mediaType,
      configDigest: image.manifest.config.digest,
      ...(image.index ? { indexDigest: image.index.digest } : {}),
      source: source.name,
      platform: formatPlatform(platformOf(image.config)),
      layers: image.manifest.layers.map((d, i) => ({
        digest: d.digest,
        mediaType: d.mediaType,
        size: d.size,
        diffId: diffIds[i] as Digest,
        chainId: chain[i] as Digest,
      })),
      created: new Date().toISOString(),
    }
    const configPath = await phase('bundle', async () => {
      try {
        const config = toRuntimeConfig(image, { ...options.runtime, rootfs: rootfs.path })
        const path = await writeBundle(options.bundle, config, signal ? { signal } : {})
        await store.putImage(record)
        return path
      } catch (err) {
        await rootfs.release().catch(() => {})
        throw err
      }
    })
    emit({ type: 'committed', bundle: options.bundle, ms: performance.now() - started })
    return {
      image,
      record,
      bundle: options.bundle,
      rootfs,
      configPath,
      cachedLayers,
      ...(verdict ? { verdict } : {}),
    }
  } finally {
    release()
  }
}

function pickSnapshotter(choice: PullImageOptions['snapshotter']): Snapshotter {
  if (choice === undefined || choice === 'dir') return dirSnapshotter()
  if (choice === 'overlay') return overlaySnapshotter()
  if (typeof choice === 'object' && typeof choice.materialize === 'function') return choice
  throw new OcipullError(
    'ERR_OPTIONS_INVALID',
    `unknown snapshotter ${JSON.stringify(choice)} (want dir or overlay)`,
  )
}

/**
 * Brings every layer of the chain into the store: downloads and unpacks the missing ones
 * concurrently, commits them in order (a layer may need its lower layers to be completed),
 * and returns the chain's stored layers, bottom first.
 */
async function storeLayers(
  source: ImageSource,
  image: ResolvedImage,
  chain: Digest[],
  existing: (LayerRecord | undefined)[],
  store: LayerStore,
  options: PullImageOptions,
  emit: (event: PullEvent) => void,
): Promise<{ stored: StoredLayer[]; cached: number }> {
  const interval = options.progressIntervalMs ?? 250
  const format = process.getuid?.() === 0 ? 'overlay' : 'record'
  const inner = new AbortController()
  const signal = options.signal ? AbortSignal.any([options.signal, inner.signal]) : inner.signal
  const limit = pLimit(Math.max(1, options.concurrency ?? 3))
  const tasks = image.manifest.layers.map((descriptor, index) => {
    if (existing[index] !== undefined) return undefined
    return limit(async (): Promise<{ staged: StagedLayer; record: LayerRecord }> => {
      if (signal.aborted) throw abortError(signal, source.name)
      const events = layerEvents(emit, index, descriptor, interval)
      const staged = await store.stageLayer()
      const changes: LayerChange[] = []
      try {
        const stats = await applyLayer({
          source,
          descriptor,
          diffId: image.config.rootfs.diff_ids[index] as Digest,
          root: staged.diff,
          whiteouts: format,
          deferMissingLinks: true,
          onChange: (c) => changes.push(c),
          ...(options.decryptor ? { decryptor: options.decryptor } : {}),
          ...(options.limits ? { limits: options.limits } : {}),
          onWarning: (w) => emit({ type: 'warning', ...w }),
          onProgress: events.progress,
          signal,
        })
        events.done(stats)
        const chainId = chain[index] as Digest
        const record: LayerRecord = {
          chainId,
          diffId: image.config.rootfs.diff_ids[index] as Digest,
          ...(index > 0 ? { parent: chain[index - 1] as Digest } : {}),
          digest: descriptor.digest,
          mediaType: descriptor.mediaType,
          size: descriptor.size,
          format,
          changes,
          bytes: stats.uncompressedBytes,
          entries: stats.entries,
          created: new Date().toISOString(),
        }
        return { staged, record }
      } catch (err) {
        await store.discard(staged)
        throw err
      }
    })
  })
  // A later layer may fail while an earlier one is awaited: that is handled below, not unhandled.
  for (const task of tasks) task?.catch(() => {})
  const settled = tasks
  const stored: StoredLayer[] = []
  let cached = 0
  try {
    for (const [index, task] of settled.entries()) {
      const chainId = chain[index] as Digest
      const dir = store.layerDir(chainId)
      if (task === undefined) {
        const record = existing[index] as LayerRecord
        emit({ type: 'layer-cached', index, digest: record.digest, size: record.size })
        stored.push({ record, dir })
        cached++
        continue
      }
      const { staged, record } = await task
      try {
        if (record.format === 'overlay') prepareOverlayLayer(staged.diff, record, stored)
        await store.commitLayer(staged, record)
      } catch (err) {
        await store.discard(staged)
        throw err
      }
      stored.push({ record: (await store.getLayer(chainId)) ?? record, dir })
    }
    return { stored, cached }
  } catch (err) {
    inner.abort(err)
    // Tasks that finish after a failure still hold staging directories: discard those too.
    const rest = await Promise.allSettled(settled.map((t) => t ?? Promise.resolve(undefined)))
    for (const r of rest) {
      if (r.status === 'fulfilled' && r.value !== undefined) {
        // Finished but never committed (a lower layer failed): not ours to keep.
        const committed = await store.getLayer(r.value.record.chainId).catch(() => undefined)
        if (committed === undefined) await store.discard(r.value.staged)
      }
    }
    throw err
  }
}

/**
 * Makes `<bundle>/rootfs` with the snapshotter. A directory is built in a staging directory and
 * swapped in only when complete (an earlier rootfs is replaced; on failure it stays); an overlay
 * is mounted in place, after an earlier overlay mount of this bundle is unmounted.
 */
async function placeRootfs(
  snapshotter: Snapshotter,
  layers: StoredLayer[],
  bundle: string,
  warn: (w: { code: string; path: string; message: string }) => void,
  signal: AbortSignal | undefined,
): Promise<Rootfs> {
  await mkdir(bundle, { recursive: true, mode: 0o700 })
  const rootfs = join(bundle, 'rootfs')
  const warnFn = (code: string, path: string, message: string) => warn({ code, path, message })
  const materialize = (target: string) =>
    snapshotter.materialize(layers, target, { warn: warnFn, ...(signal ? { signal } : {}) })
  await unmountOld(bundle, rootfs)
  if (snapshotter.name === 'overlay') {
    await rm(rootfs, { recursive: true, force: true })
    return materialize(rootfs)
  }
  const staging = join(bundle, `.rootfs-staging-${randomBytes(6).toString('hex')}`)
  const made = await materialize(staging)
  try {
    await replaceDirectory(staging, rootfs)
  } catch (err) {
    await rm(staging, { recursive: true, force: true })
    throw err
  }
  return { path: rootfs, release: made.release }
}

/** An overlay mount this bundle got from an earlier pull: unmount it and drop its upper. */
async function unmountOld(bundle: string, rootfs: string): Promise<void> {
  const mounts = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '')
  const target = resolve(rootfs)
  const mounted = mounts.split('\n').some((line) => line.split(' ')[4] === target)
  if (!mounted) return
  await run('umount', [target])
  for (const name of await readdir(bundle)) {
    if (name.startsWith('.overlay-')) await rm(join(bundle, name), { recursive: true, force: true })
  }
}

/** The codec of a layer descriptor; unknown media types count as not encrypted here (applyLayer rejects them). */
function codecOf(descriptor: { mediaType: string }): { encrypted: boolean } {
  try {
    return layerCodec(descriptor.mediaType, 'layer')
  } catch {
    return { encrypted: false }
  }
}
