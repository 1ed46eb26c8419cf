import { chmodSync, fchmodSync, fchownSync, futimesSync, lchownSync, lutimesSync } from 'node:fs'
import { fsPath } from '../fs/resolve-in-root.js'
import type { TarEntry } from './tar-parser.js'

/**
 * Ownership, mode and times from a tar header, in umoci's order: owner first (when root: chown
 * clears setuid/setgid, so the mode comes after it), then mode (never on symlinks, which have
 * none), then times (atime defaults to mtime). xattrs come after all three, elsewhere: chown and
 * writes clear security.capability.
 */

export function atimeOf(e: TarEntry): number {
  return e.atime ?? e.mtime
}

/**
 * A time in seconds as Node's utimes functions take it. They read a negative number as "now";
 * a Date carries times before 1970 through (GNU tar and umoci set those too).
 */
export function fsTime(seconds: number): number | Date {
  return seconds < 0 ? new Date(seconds * 1000) : seconds
}

/** For a regular file we created and still hold open. */
export function applyFileMetadata(fd: number, e: TarEntry, isRoot: boolean): void {
  if (isRoot) fchownSync(fd, e.uid, e.gid)
  fchmodSync(fd, e.mode)
  futimesSync(fd, fsTime(atimeOf(e)), fsTime(e.mtime))
}

/**
 * For a symlink, device or fifo we just created at `host` (a byte-string host path whose parents
 * are real directories). lchown and lutimes never follow; chmod does, so it is only used on
 * devices and fifos, which are not links.
 */
export function applyNodeMetadata(host: string, e: TarEntry, isRoot: boolean): void {
  const p = fsPath(host)
  if (isRoot) lchownSync(p, e.uid, e.gid)
  if (e.type !== 'symlink') chmodSync(p, e.mode)
  lutimesSync(p, fsTime(atimeOf(e)), fsTime(e.mtime))
}
