import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, lchown, lstat, mkdir, readFile, rm, utimes } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { promisify } from 'node:util'
import { shortDigest } from '../digest.js'
import { OcipullError } from '../errors.js'
import type { MaterializeOptions, Rootfs, Snapshotter, StoredLayer } from './snapshotter.js'

const run = promisify(execFile)
/** The kernel takes at most one page of mount options. */
const MAX_MOUNT_DATA = 4096 - 256

/**
 * Mounts the chain as overlayfs: the stored layer directories as read-only lowers (top first),
 * with a fresh upper and work directory beside the rootfs (`<bundle>/.overlay-<random>/`), so
 * nothing is copied and a container's writes go to its own upper. Needs root and overlay support
 * (ERR_SNAPSHOTTER_UNSUPPORTED otherwise), and layers unpacked as root, which keeps whiteouts the
 * overlayfs way. `release()` unmounts and removes the upper. The lowers are named relative to
 * the store's `layers/` directory (mount runs there), so about 50 layers fit in the one page the
 * kernel takes for mount options; more is ERR_SNAPSHOTTER_UNSUPPORTED.
 */
export function overlaySnapshotter(): Snapshotter {
  return {
    name: 'overlay',
    async materialize(
      layers: readonly StoredLayer[],
      target: string,
      options: MaterializeOptions,
    ): Promise<Rootfs> {
      await checkOverlaySupport()
      const top = layers.at(-1)
      if (top === undefined)
        throw new OcipullError('ERR_IMAGE_UNSUPPORTED', `${target}: an image with no layers`)
      for (const layer of layers) {
        if (layer.record.format !== 'overlay') {
          throw new OcipullError(
            'ERR_SNAPSHOTTER_UNSUPPORTED',
            `layer ${shortDigest(layer.record.digest)} was stored without root, with whiteouts overlayfs cannot read; remove its image from the store and pull again as root`,
          )
        }
      }
      const cwd = dirname(dirname(top.dir)) // <store>/layers
      const lowers = layers
        .map((l) => relative(cwd, l.dir))
        .reverse()
        .join(':')
      const scratch = join(dirname(target), `.overlay-${randomBytes(6).toString('hex')}`)
      const upper = join(scratch, 'upper')
      const work = join(scratch, 'work')
      const data = `lowerdir=${lowers},upperdir=${upper},workdir=${work}`
      if (data.length > MAX_MOUNT_DATA || /[,:]/.test(upper + cwd)) {
        throw new OcipullError(
          'ERR_SNAPSHOTTER_UNSUPPORTED',
          `overlay: ${layers.length} layers do not fit in the mount options (or a path has ',' or ':')`,
        )
      }
      await mkdir(upper, { recursive: true, mode: 0o755 })
      // overlayfs shows a merged directory with the upper one's metadata: the root starts as the
      // top layer's root.
      const st = await lstat(top.dir)
      await lchown(upper, st.uid, st.gid)
      await chmod(upper, st.mode & 0o7777)
      await utimes(upper, st.atimeMs / 1000, st.mtimeMs / 1000)
      await mkdir(work, { mode: 0o700 })
      await mkdir(target, { mode: 0o755 })
      try {
        await run('mount', ['-t', 'overlay', 'overlay', '-o', data, target], {
          cwd,
          ...(options.signal ? { signal: options.signal } : {}),
        })
      } catch (err) {
        await rm(target, { recursive: true, force: true })
        await rm(scratch, { recursive: true, force: true })
        const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim()
        throw new OcipullError(
          'ERR_SNAPSHOTTER_UNSUPPORTED',
          `overlay: mount on ${target} failed: ${stderr}`,
          {
            cause: err,
          },
        )
      }
      let released = false
      return {
        path: target,
        async release() {
          if (released) return
          await run('umount', [target])
          released = true
          await rm(scratch, { recursive: true, force: true })
        },
      }
    },
  }
}

async function checkOverlaySupport(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new OcipullError('ERR_SNAPSHOTTER_UNSUPPORTED', 'overlay: mounting overlayfs needs root')
  }
  const filesystems = await readFile('/proc/filesystems', 'utf8').catch(() => '')
  if (!/\toverlay$/m.test(filesystems)) {
    // Not registered yet: the module may load on first mount, so only a missing /proc says no.
    if (filesystems === '')
      throw new OcipullError('ERR_SNAPSHOTTER_UNSUPPORTED', 'overlay: no /proc/filesystems')
  }
}
