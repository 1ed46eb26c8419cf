import { lstatSync, mkdirSync } from 'node:fs'
import { OcipullError } from '../errors.js'
import { fsPath, resolveInRoot } from '../fs/resolve-in-root.js'
import type { DirTimes } from './dir-times.js'
import type { UpperPaths } from './upper-paths.js'

/**
 * Turns an entry's parent (cleaned, relative to the root) into a host directory inside the root,
 * creating missing directories (mode 0755, like umoci's MkdirAll) and following symlinks only
 * within the root (resolveInRoot). Results are cached: a layer writes thousands of files into
 * the same few directories, and an uncached walk costs one lstat per component per entry.
 *
 * The cache holds only paths that were real directories when resolved, reached through existing
 * components. Only removing a directory or a symlink can change what such a path resolves to
 * (creating a name cannot: no cached path went through a name that did not exist), so the
 * extractor calls `invalidate()` whenever it removes one.
 */
export class ParentDirs {
  private cache = new Map<string, string>()
  private readonly root: string
  private readonly times: DirTimes
  private readonly upper: UpperPaths
  private readonly onCreate: ((rel: string) => void) | undefined

  /**
   * `root`: an absolute host byte-string path, without a trailing '/'. `onCreate` hears of each
   * directory made here (relative to the root).
   */
  constructor(root: string, times: DirTimes, upper: UpperPaths, onCreate?: (rel: string) => void) {
    this.root = root
    this.times = times
    this.upper = upper
    this.onCreate = onCreate
  }

  /**
   * The host directory for `rel` ('' is the root). With `create` false, undefined when it does
   * not exist or is not a directory; with `create` true, missing directories are made and a
   * non-directory in the way is ERR_LAYER_INVALID.
   */
  resolve(rel: string, create: boolean, label: string): string | undefined {
    if (rel === '') return this.root
    const cached = this.cache.get(rel)
    if (cached !== undefined) return cached
    const host = resolveInRoot(this.root, rel, { followLast: true, encoding: 'latin1' })
    this.assertInside(host, label)
    const kind = kindOf(host)
    if (kind === 'dir') {
      this.cache.set(rel, host)
      return host
    }
    if (!create) return undefined
    if (kind !== 'missing') {
      throw new OcipullError('ERR_LAYER_INVALID', `${label}: a parent is not a directory`)
    }
    this.makeDirs(host, label)
    this.cache.set(rel, host)
    return host
  }

  invalidate(): void {
    if (this.cache.size > 0) this.cache = new Map()
  }

  /** `host` relative to the root ('' for the root). */
  relative(host: string): string {
    return host === this.root ? '' : host.slice(this.root.length + 1)
  }

  /** Defence in depth: resolveInRoot cannot return a path outside the root. */
  assertInside(host: string, label: string): void {
    if (host !== this.root && !host.startsWith(`${this.root}/`)) {
      throw new OcipullError('ERR_PATH_UNSAFE', `${label}: path escapes the root`)
    }
  }

  /** mkdir -p below the root. Every existing component was checked by resolveInRoot. */
  private makeDirs(host: string, label: string): void {
    const slash = host.lastIndexOf('/')
    const parent = host.slice(0, slash)
    if (parent !== this.root) {
      const kind = kindOf(parent)
      if (kind === 'missing') this.makeDirs(parent, label)
      else if (kind !== 'dir') {
        throw new OcipullError('ERR_LAYER_INVALID', `${label}: a parent is not a directory`)
      }
    }
    this.times.touch(parent)
    mkdirSync(fsPath(host), 0o755)
    this.upper.add(this.relative(host))
    this.onCreate?.(this.relative(host))
  }
}

function kindOf(host: string): 'dir' | 'missing' | 'other' {
  try {
    return lstatSync(fsPath(host)).isDirectory() ? 'dir' : 'other'
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing'
    throw err
  }
}
