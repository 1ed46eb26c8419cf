import { closeSync, constants, fchmodSync, futimesSync, lstatSync, openSync } from 'node:fs'
import { fsPath } from '../fs/resolve-in-root.js'
import { fsTime } from './metadata.js'

interface DirMetadata {
  /** Set for directories that have an entry in this layer; lower or implicit ones keep theirs. */
  mode?: number
  atime: number
  mtime: number
}

/**
 * Directory modes and times, applied after the last entry. Creating or removing a child changes
 * a directory's mtime, so umoci restores a parent's metadata after each entry; we get the same
 * result more cheaply by applying every directory's final metadata once at the end:
 * - a directory entry of this layer gets its header's mode and times;
 * - an existing directory that this layer changes keeps the times it had (recorded on first touch).
 * Modes wait too, so a read-only directory (0555 `proc/`, say) can still be filled when not root.
 * Times are doubles in seconds (Node's utimes API): precision is about a microsecond.
 */
export class DirTimes {
  private readonly dirs = new Map<string, DirMetadata>()

  /** Call before changing the contents of `dir` (a host byte-string path to an existing directory). */
  touch(dir: string): void {
    if (this.dirs.has(dir)) return
    const st = lstatSync(fsPath(dir))
    this.dirs.set(dir, { atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000 })
  }

  /** The metadata an entry of this layer gives `dir`; the last one wins. */
  set(dir: string, meta: Required<DirMetadata>): void {
    this.dirs.set(dir, meta)
  }

  /**
   * Applies everything through a descriptor opened with O_DIRECTORY|O_NOFOLLOW, so a path that
   * is no longer a directory (removed, or replaced by a file or symlink later in the layer) is
   * skipped, and nothing is followed.
   */
  apply(): void {
    const flags = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW
    for (const [dir, meta] of this.dirs) {
      let fd: number
      try {
        fd = openSync(fsPath(dir), flags)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') continue
        throw err
      }
      try {
        if (meta.mode !== undefined) fchmodSync(fd, meta.mode)
        futimesSync(fd, fsTime(meta.atime), fsTime(meta.mtime))
      } finally {
        closeSync(fd)
      }
    }
    this.dirs.clear()
  }
}
