import {
  closeSync,
  constants,
  lchownSync,
  linkSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs'
import { OcipullError } from '../errors.js'
import { fsPath } from '../fs/resolve-in-root.js'
import { applyWhiteout, type WhiteoutContext } from './apply-whiteout.js'
import { DirTimes } from './dir-times.js'
import { cleanEntryPath, display, entryLabel, parseWhiteout, splitParent, unsafe } from './entry-path.js'
import { lstatOrUndefined, resolveHardlinkTarget } from './hardlink-target.js'
import { type LayerChange, xattrRecord } from './layer-changes.js'
import { makeNode } from './make-node.js'
import { applyFileMetadata, applyNodeMetadata, atimeOf } from './metadata.js'
import { ParentDirs } from './parent-dirs.js'
import type { TarEntry, TarEvent } from './tar-parser.js'
import { UpperPaths } from './upper-paths.js'
import { type Warn, XattrWriter } from './xattrs.js'

export interface EntryWriterOptions {
  /** Absolute host byte-string path of the root, without a trailing '/'. */
  root: string
  whiteouts: 'apply' | 'overlay' | 'record'
  what: string
  maxEntries: number
  warn: Warn
  signal: AbortSignal | undefined
  onChange: ((change: LayerChange) => void) | undefined
  deferMissingLinks: boolean
}

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW
/** Errors an archive can cause on a healthy filesystem: reported as ERR_LAYER_INVALID. */
const LAYER_ERRNOS = new Set(['EEXIST', 'EISDIR', 'ELOOP', 'EMLINK', 'ENAMETOOLONG', 'ENOENT', 'ENOTDIR'])

/**
 * Writes archive members into the root, one parser event at a time (see unpack-tar.ts).
 * Every path goes through ParentDirs (parents resolved inside the root, symlinks followed only
 * there); the last component is never followed: whatever is there is removed first (unless a
 * directory meets a directory, which keeps its children, like umoci) and the new object is
 * created with O_EXCL|O_NOFOLLOW, symlink(2), link(2) or mknod, so no write, chmod or chown can
 * land outside the root or on an object of a lower layer shared through a hardlink.
 * Regular files use synchronous calls (perf-limits.md: ~4× faster than fs.promises per file)
 * and data is written as it arrives, so memory does not grow with file size.
 */
export class EntryWriter {
  readonly stats = { entries: 0, bytes: 0 }
  private readonly o: EntryWriterOptions
  private readonly isRoot = process.getuid?.() === 0
  private readonly times = new DirTimes()
  private readonly upper = new UpperPaths()
  private readonly dirs: ParentDirs
  private readonly xattrs: XattrWriter
  private readonly ctx: WhiteoutContext
  /** Device nodes skipped (not root), so hardlinks to them are skipped too. */
  private readonly skipped = new Set<string>()
  private file: { fd: number; entry: TarEntry; host: string; label: string } | undefined
  /** Directories made only to hold children (reported as `implicit-dir` changes at the end). */
  private readonly implicit = new Set<string>()
  private rootSeen = false

  constructor(options: EntryWriterOptions) {
    this.o = options
    this.dirs = new ParentDirs(
      options.root,
      this.times,
      this.upper,
      options.onChange ? (rel) => this.implicit.add(rel) : undefined,
    )
    this.xattrs = new XattrWriter({ warn: options.warn, overlay: options.whiteouts === 'overlay' })
    this.ctx = {
      mode: options.whiteouts,
      dirs: this.dirs,
      times: this.times,
      upper: this.upper,
      warn: options.warn,
      isRoot: this.isRoot,
      signal: options.signal,
    }
  }

  /** Handles events in order; returns a promise only when one of them had to wait (spawns). */
  run(events: TarEvent[], from = 0): undefined | Promise<void> {
    for (let i = from; i < events.length; i++) {
      const ev = events[i] as TarEvent
      if (ev.kind === 'data') {
        if (this.file !== undefined) this.write(ev.data)
        continue
      }
      const r = ev.kind === 'entry' ? this.entry(ev.entry) : this.end()
      if (r !== undefined) return r.then(() => this.run(events, i + 1))
    }
    return undefined
  }

  /** After the last event: directory modes and times, and the implicit directories. */
  finish(): void {
    this.times.apply()
    const report = this.o.onChange
    if (report === undefined) return
    if (!this.rootSeen) report({ kind: 'implicit-dir', path: '' })
    for (const path of this.implicit) report({ kind: 'implicit-dir', path })
  }

  /** Closes the file being written, if any (on failure). */
  close(): void {
    if (this.file !== undefined) closeSync(this.file.fd)
    this.file = undefined
  }

  private entry(e: TarEntry): undefined | Promise<void> {
    if (++this.stats.entries > this.o.maxEntries) {
      throw new OcipullError('ERR_LIMIT_EXCEEDED', `${this.o.what}: more than ${this.o.maxEntries} entries`)
    }
    const label = entryLabel(this.o.what, e.name)
    try {
      const r = this.place(e, label)
      return r?.catch((err: unknown) => Promise.reject(fsError(err, label)))
    } catch (err) {
      throw fsError(err, label)
    }
  }

  private place(e: TarEntry, label: string): undefined | Promise<void> {
    const rel = cleanEntryPath(e.name, this.o.what)
    if (rel === '') return this.rootEntry(e)
    const { parent, base } = splitParent(rel)
    const wh = parseWhiteout(base, this.o.what, e.name)
    if (wh !== undefined) {
      if (wh.kind !== 'meta') {
        const path = wh.kind === 'opaque' ? parent : parent === '' ? wh.target : `${parent}/${wh.target}`
        this.o.onChange?.({ kind: wh.kind === 'opaque' ? 'opaque' : 'whiteout', path })
      }
      return this.o.whiteouts === 'record' ? undefined : applyWhiteout(this.ctx, parent, wh, label)
    }
    let target: string | undefined
    if (e.type === 'hardlink') {
      let missing = false
      target = resolveHardlinkTarget(e, {
        dirs: this.dirs,
        skipped: this.skipped,
        what: this.o.what,
        label,
        warn: this.o.warn,
        ...(this.o.deferMissingLinks ? { onMissing: () => (missing = true) } : {}),
      })
      if (missing) {
        this.o.onChange?.({ kind: 'link', path: rel, target: cleanEntryPath(e.linkname, this.o.what) })
        return undefined
      }
      if (target === undefined) return undefined
    }
    const dir = this.dirs.resolve(parent, true, label) as string
    const host = `${dir}/${base}`
    if (target === host) return undefined // a hardlink to itself: already there
    this.times.touch(dir)
    const p = fsPath(host)
    switch (e.type) {
      case 'file': {
        const fd = this.create(host, () => openSync(p, CREATE, 0o600), false) as number
        this.file = { fd, entry: e, host, label }
        break
      }
      case 'directory':
        this.create(host, () => mkdirSync(p, 0o700), true)
        this.implicit.delete(this.dirs.relative(host))
        if (this.isRoot) lchownSync(p, e.uid, e.gid)
        this.times.set(host, { mode: e.mode, atime: atimeOf(e), mtime: e.mtime })
        break
      case 'symlink':
        this.create(host, () => symlinkSync(fsPath(e.linkname), p), false)
        applyNodeMetadata(host, e, this.isRoot)
        break
      case 'hardlink':
        // Hardlinks carry no metadata of their own (umoci applies none either).
        this.create(host, () => linkSync(fsPath(target as string), p), false)
        break
      default:
        this.clobber(host, false)
        return this.node(e, dir, base, label)
    }
    this.upper.add(this.dirs.relative(host))
    if (e.xattrs)
      this.o.onChange?.({ kind: 'xattrs', path: this.dirs.relative(host), xattrs: xattrRecord(e.xattrs) })
    return e.type !== 'file' && e.xattrs
      ? this.xattrs.apply(host, display(e.name), e.xattrs, this.o.signal)
      : undefined
  }

  /** The `.` entry: its metadata goes to the root, whose type it must not change. */
  private rootEntry(e: TarEntry): undefined | Promise<void> {
    if (e.type !== 'directory') {
      throw unsafe(this.o.what, e.name, 'refusing to change the type of the root directory')
    }
    const root = this.o.root
    this.rootSeen = true
    if (e.xattrs) this.o.onChange?.({ kind: 'xattrs', path: '', xattrs: xattrRecord(e.xattrs) })
    if (this.isRoot) lchownSync(fsPath(root), e.uid, e.gid)
    this.times.set(root, { mode: e.mode, atime: atimeOf(e), mtime: e.mtime })
    return e.xattrs ? this.xattrs.apply(root, display(e.name), e.xattrs, this.o.signal) : undefined
  }

  /**
   * Runs `make` (which creates `host` and never follows a final symlink: O_EXCL, mkdir, symlink,
   * link); when something is already there (EEXIST), removes it unless both it and the new entry
   * are directories (kept with its children, like umoci), then tries again. Trying first saves an
   * lstat per entry in the common case, a fresh name.
   */
  private create<T>(host: string, make: () => T, isDir: boolean): T | undefined {
    try {
      return make()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    if (this.clobber(host, isDir)) return undefined
    return make()
  }

  /** Removes whatever is at `host`, unless both it and the new entry are directories (returns true). */
  private clobber(host: string, isDir: boolean): boolean {
    const st = lstatOrUndefined(host)
    if (st === undefined) return false
    if (st.isDirectory() && isDir) return true
    rmSync(fsPath(host), { recursive: st.isDirectory(), force: true })
    if (st.isDirectory() || st.isSymbolicLink()) this.dirs.invalidate()
    return false
  }

  /**
   * Devices (root only: skipped with WARN_DEVICE_SKIPPED otherwise, or when mknod is refused,
   * e.g. in a user namespace) and fifos (anyone), made by `mknod` (make-node.ts).
   */
  private async node(e: TarEntry, dir: string, base: string, label: string): Promise<void> {
    const host = `${dir}/${base}`
    const name = display(e.name)
    if (e.type !== 'fifo' && !this.isRoot) {
      this.o.warn(
        'WARN_DEVICE_SKIPPED',
        name,
        `${e.type} device ${e.devmajor}:${e.devminor} skipped (not root)`,
      )
      this.skipped.add(host)
      return
    }
    const kind = e.type as 'char' | 'block' | 'fifo'
    const r = await makeNode(dir, base, kind, { major: e.devmajor, minor: e.devminor }, this.o.signal)
    if (r.status !== 0) {
      if (r.errno !== 'EPERM' && r.errno !== 'ENOENT') {
        throw new OcipullError('ERR_LAYER_INVALID', `${label}: mknod failed: ${r.stderr}`)
      }
      this.o.warn('WARN_DEVICE_SKIPPED', name, `${e.type} skipped: ${r.stderr}`)
      this.skipped.add(host)
      return
    }
    applyNodeMetadata(host, e, this.isRoot)
    this.upper.add(this.dirs.relative(host))
    if (e.xattrs)
      this.o.onChange?.({ kind: 'xattrs', path: this.dirs.relative(host), xattrs: xattrRecord(e.xattrs) })
    if (e.xattrs) await this.xattrs.apply(host, name, e.xattrs, this.o.signal)
  }

  private write(data: Buffer): void {
    const f = this.file as NonNullable<typeof this.file>
    try {
      let off = 0
      while (off < data.length) off += writeSync(f.fd, data, off, data.length - off)
    } catch (err) {
      throw fsError(err, f.label)
    }
  }

  /** End of an entry's data: a regular file gets its metadata and is closed. */
  private end(): undefined | Promise<void> {
    const f = this.file
    if (f === undefined) return undefined
    this.file = undefined
    try {
      applyFileMetadata(f.fd, f.entry, this.isRoot)
    } catch (err) {
      throw fsError(err, f.label)
    } finally {
      closeSync(f.fd)
    }
    this.stats.bytes += f.entry.size
    const x = f.entry.xattrs
    return x ? this.xattrs.apply(f.host, display(f.entry.name), x, this.o.signal) : undefined
  }
}

/** Names the entry in a filesystem error; errors the archive itself causes become ERR_LAYER_INVALID. */
function fsError(err: unknown, label: string): unknown {
  if (err instanceof OcipullError || !(err instanceof Error)) return err
  const e = err as NodeJS.ErrnoException
  if (e.code !== undefined && LAYER_ERRNOS.has(e.code)) {
    return new OcipullError('ERR_LAYER_INVALID', `${label}: ${e.syscall ?? 'fs'} failed: ${e.code}`, {
      cause: err,
    })
  }
  if (e.code !== undefined && !e.message.startsWith(label)) e.message = `${label}: ${e.message}`
  return err
}
