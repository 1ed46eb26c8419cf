import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync } from 'node:fs'
import { OcipullError } from '../errors.js'

const MAX_LINKS = 255

export interface ResolveInRootOptions {
  /** Follow a symlink in the last component too (default false: the link itself is the result). */
  followLast?: boolean
  /**
   * How `root`, `path` and the result map to bytes. 'utf8' (default): ordinary strings.
   * 'latin1': byte strings, one character per byte (0–255), so names that are not UTF-8 survive
   * byte-exact; see `fsPath` to hand one to `node:fs`.
   */
  encoding?: 'utf8' | 'latin1'
}

/**
 * Resolves `path` (absolute or relative, as found in an image) to a host path inside `root`,
 * as if `root` were `/`: `..` stops at the root, and symlinks met on the way are read and resolved
 * against `root` too, so no path can lead outside it (securejoin semantics: contain, not reject).
 * Components that do not exist are taken literally. At most 255 symlinks are followed
 * (ERR_PATH_UNSAFE beyond that). Costs one lstat per existing component.
 *
 * Every component of the result that exists is a real directory or (for the last one, without
 * `followLast`) whatever is there; none is a symlink, so the kernel follows nothing when the
 * result is used, except a symlink in the last component.
 *
 * This is safe against a hostile image, not against another process changing `root` at the same
 * time: callers own `root` while they resolve in it.
 */
export function resolveInRoot(root: string, path: string, options: ResolveInRootOptions = {}): string {
  const latin1 = options.encoding === 'latin1'
  const resolved: string[] = []
  const pending = splitPath(path).reverse()
  let links = 0
  // Set once a component is missing: everything below it is missing too, so no lstat is needed.
  // `..` climbs back to a directory that exists, where components must be looked at again.
  let missing = false
  while (pending.length > 0) {
    const part = pending.pop() as string
    if (part === '..') {
      resolved.pop()
      missing = false
      continue
    }
    const isLast = pending.length === 0
    if (!missing && (!isLast || options.followLast)) {
      const candidate = joinRoot(root, resolved, part)
      let link: string | undefined
      try {
        const st = lstatSync(latin1 ? fsPath(candidate) : candidate)
        if (st.isSymbolicLink()) {
          link = latin1
            ? readlinkSync(fsPath(candidate), { encoding: 'latin1' })
            : readlinkSync(candidate, 'utf8')
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err
        missing = true
      }
      if (link !== undefined) {
        if (++links > MAX_LINKS) {
          throw new OcipullError('ERR_PATH_UNSAFE', `${display(path)}: too many levels of symbolic links`)
        }
        if (link.startsWith('/')) resolved.length = 0
        pending.push(...splitPath(link).reverse())
        continue
      }
    }
    resolved.push(part)
  }
  return joinRoot(root, resolved)
}

/**
 * A byte string (one character per byte, see `encoding: 'latin1'`) as `node:fs` wants it:
 * unchanged when it is ASCII (the common case, no allocation), else the bytes as a Buffer.
 */
export function fsPath(path: string): string | Buffer {
  return ASCII.test(path) ? path : Buffer.from(path, 'latin1')
}

const ASCII = /^[\x00-\x7f]*$/

/** `root/a/b/part` without normalisation (components never hold `/`, `.` or `..`). */
function joinRoot(root: string, resolved: readonly string[], part?: string): string {
  let out = root.endsWith('/') ? root.slice(0, -1) : root
  for (const r of resolved) out += `/${r}`
  if (part !== undefined) out += `/${part}`
  return out === '' ? '/' : out
}

/** Non-empty components of a path, without `.`. */
function splitPath(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.')
}

/** A path for a message: byte strings that are not ASCII are shown as UTF-8 (lossy). */
function display(path: string): string {
  return ASCII.test(path) ? path : Buffer.from(path, 'latin1').toString('utf8')
}

/**
 * Reads a regular file at `path` inside `root` (symlinks resolved within root), refusing files
 * larger than `maxBytes`. Returns undefined when there is no such file.
 */
export function readFileInRoot(
  root: string,
  path: string,
  options: { maxBytes: number },
): Buffer | undefined {
  const host = resolveInRoot(root, path, { followLast: true })
  let fd: number
  try {
    fd = openSync(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return undefined
    throw err
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) return undefined
    if (st.size > options.maxBytes) {
      throw new OcipullError(
        'ERR_LIMIT_EXCEEDED',
        `${path}: ${st.size} bytes exceeds the limit of ${options.maxBytes}`,
      )
    }
    const buf = Buffer.alloc(st.size)
    let off = 0
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off)
      if (n === 0) break
      off += n
    }
    return buf.subarray(0, off)
  } finally {
    closeSync(fd)
  }
}
