import type { LayerRecord } from '../store/layer-store.js'
import type { Warn } from '../unpack/xattrs.js'

/** A committed layer of the store, with the directory holding its files. */
export interface StoredLayer {
  record: LayerRecord
  dir: string
}

/** A bundle's root filesystem, made by a snapshotter. */
export interface Rootfs {
  path: string
  /** For a mount: unmounts it and removes its writable layer. For a directory: nothing. */
  release(options?: { signal?: AbortSignal }): Promise<void>
}

export interface MaterializeOptions {
  warn: Warn
  signal?: AbortSignal
}

/**
 * Turns a chain of stored layers into a root filesystem at a path. Two implementations: `dir`
 * (a flattened copy, anyone, anywhere) and `overlay` (an overlayfs mount of the layer
 * directories; root only). Lifecycle: the pull unpacks and commits the layers (`layerFormat`
 * says how the store keeps whiteouts), then calls `materialize(layers, target)` once, bottom
 * layer first, on a path that does not exist yet; the caller owns the result and calls
 * `release()` before removing it.
 */
export interface Snapshotter {
  readonly name: 'dir' | 'overlay'
  materialize(layers: readonly StoredLayer[], target: string, options: MaterializeOptions): Promise<Rootfs>
}
