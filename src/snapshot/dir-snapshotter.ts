import { mkdir, rm } from 'node:fs/promises'
import type { MaterializeOptions, Rootfs, Snapshotter, StoredLayer } from './snapshotter.js'
import { stackLayer } from './stack-layer.js'

/**
 * The default snapshotter: copies the layers in order into one directory (stack-layer.ts), the
 * tree `umoci unpack` makes. Needs no root and no mounts; costs one more write of the image's
 * files than unpacking straight into the rootfs, and keeps the bundle independent of the store
 * (a container writing its rootfs cannot touch a stored layer, and gc() cannot break a bundle).
 */
export function dirSnapshotter(): Snapshotter {
  return {
    name: 'dir',
    async materialize(
      layers: readonly StoredLayer[],
      target: string,
      options: MaterializeOptions,
    ): Promise<Rootfs> {
      await mkdir(target, { mode: 0o755 })
      try {
        for (const layer of layers) {
          await stackLayer(layer.dir, layer.record, target, {
            warn: options.warn,
            ...(options.signal ? { signal: options.signal } : {}),
          })
        }
      } catch (err) {
        await rm(target, { recursive: true, force: true })
        throw err
      }
      return { path: target, release: async () => {} }
    },
  }
}
