import {
  chmodSync,
  constants,
  copyFileSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  rmSync,
  type Stats,
  symlinkSync,
  utimesSync,
} from 'node:fs'
import { resolve } from 'node:path'
import { shortDigest } from '../digest.js'
import { OcipullError } from '../errors.js'
import { fsPath } from '../fs/resolve-in-root.js'
import type { LayerRecord } from '../store/layer-store.js'
import { DirTimes } from '../unpack/dir-times.js'
import { display, splitParent } from '../unpack/entry-path.js'
import { lstatOrUndefined } from '../unpack/hardlink-target.js'
import { xattrMap } from '../unpack/layer-changes.js'
import { makeNode } from '../unpack/make-node.js'
import { fsTime } from '../unpack/metadata.js'
import { ParentDirs } from '../unpack/parent-dirs.js'
import { UpperPaths } from '../unpack/upper-paths.js'
import { type Warn, XattrWriter } from '../unpack/xattrs.js'

export interface StackLayerOptions {
  warn: Warn
  signal?: AbortSignal
}

const COPY = constants.COPYFILE_EXCL
const CLONE = constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE

/**
 * Copies a stored layer (its `diff/` directory and the changes in its record) onto `root`, the
 * tree of the layers below it, with the result a flattening unpack of its tar would have given
 * (umoci semantics, as in unpack-tar.ts): first its whiteouts and opaque directories remove lower
 * content; then each entry is copied, replacing what is there (a directory meeting a directory
 * keeps its children; a directory the layer only implied keeps the lower one's metadata and is
 * followed if it is a symlink inside the root); then hardlinks to lower files are made, xattrs
 * set, and directory modes and times applied last.
 *
 * Safety: every destination is resolved inside `root` by ParentDirs, which follows symlinks only
 * within it, and the last component is never followed: the old object is removed and the new one
 * made with O_EXCL (copyFileSync with COPYFILE_EXCL), symlink(2), link(2) or mknod.
 * Files are copied with copy_file_range, or shared with a reflink where the filesystem can;
 * hardlinked files of the layer stay hardlinked.
 */
export async function stackLayer(
  layerDir: string,
  record: LayerRecord,
  root: string,
  options: StackLayerOptions,
): Promise<void> {
  const what = `layer ${shortDigest(record.digest)}`
  const rootHost = latin1(resolve(root))
  const layerHost = latin1(resolve(layerDir))
  const isRoot = process.getuid?.() === 0
  const times = new DirTimes()
  const dirs = new ParentDirs(rootHost, times, new UpperPaths())
  const implicit = new Set<string>()
  for (const c of record.changes) if (c.kind === 'implicit-dir') implicit.add(c.path)
  const label = (rel: string) => `${what}: entry ${JSON.stringify(display(rel))}`

  // 1. Whiteouts and opaque directories: remove lower content (this layer's is not here yet).
  for (const c of record.changes) {
    if (c.kind === 'whiteout') {
      const { parent, base } = splitParent(c.path)
      const dir = dirs.resolve(parent, false, label(c.path))
      if (dir === undefined || lstatOrUndefined(`${dir}/${base}`) === undefined) continue
      times.touch(dir)
      remove(`${dir}/${base}`, dirs)
    } else if (c.kind === 'opaque') {
      const dir = dirs.resolve(c.path, false, label(c.path))
      if (dir === undefined) continue
      times.touch(dir)
      for (const name of readdirSync(fsPath(dir), { encoding: 'latin1' })) remove(`${dir}/${name}`, dirs)
    }
  }

  // 2. The layer's entries, parents before children.
  if (!implicit.has('')) {
    const st = lstatSync(fsPath(layerHost))
    if (isRoot) lchownSync(fsPath(rootHost), st.uid, st.gid)
    times.set(rootHost, { mode: st.mode & 0o7777, atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000 })
  }
  const inodes = new Map<number, string>()
  // Reflink when the filesystem can (btrfs, XFS): tried on the first file, then used or not.
  let reflink: boolean | undefined
  const copyFile = (src: string, dst: string): void => {
    if (reflink !== false) {
      try {
        copyFileSync(fsPath(src), fsPath(dst), CLONE)
        reflink = true
        return
      } catch (err) {
        if (reflink === true || (err as NodeJS.ErrnoException).code === 'EEXIST') throw err
        reflink = false
      }
    }
    copyFileSync(fsPath(src), fsPath(dst), COPY)
  }
  /** Makes a new object at `dst` (never following it); what is there is removed only if needed. */
  const create = (dst: string, make: () => void): void => {
    try {
      make()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      clobber(dst, dirs)
      make()
    }
  }
  const walk = async (rel: string): Promise<void> => {
    const names = readdirSync(fsPath(rel === '' ? layerHost : `${layerHost}/${rel}`), { encoding: 'latin1' })
    for (const name of names) {
      if (options.signal?.aborted) throw options.signal.reason
      const child = rel === '' ? name : `${rel}/${name}`
      const src = `${layerHost}/${child}`
      const st = lstatSync(fsPath(src))
      if (record.format === 'overlay' && st.isCharacterDevice() && st.rdev === 0) continue // a whiteout
      if (st.isDirectory()) {
        if (implicit.has(child)) dirs.resolve(child, true, label(child))
        else placeDir(child, st)
        await walk(child)
        continue
      }
      const dir = dirs.resolve(rel, true, label(child)) as string
      const dst = `${dir}/${name}`
      times.touch(dir)
      const first = st.nlink > 1 ? inodes.get(st.ino) : undefined
      if (first !== undefined) {
        create(dst, () => linkSync(fsPath(first), fsPath(dst)))
        continue
      }
      if (st.nlink > 1) inodes.set(st.ino, dst)
      if (st.isFile()) {
        create(dst, () => copyFile(src, dst)) // the copy has the source's mode
        if (isRoot) lchownSync(fsPath(dst), st.uid, st.gid)
        // chown clears setuid and setgid: set the mode again only when it has special bits.
        if ((st.mode & 0o7000) !== 0) chmodSync(fsPath(dst), st.mode & 0o7777)
        utimesSync(fsPath(dst), st.atimeMs / 1000, fsTime(st.mtimeMs / 1000))
      } else if (st.isSymbolicLink()) {
        const target = readlinkSync(fsPath(src), { encoding: 'buffer' })
        create(dst, () => symlinkSync(target, fsPath(dst)))
        if (isRoot) lchownSync(fsPath(dst), st.uid, st.gid)
        lutimesSync(fsPath(dst), st.atimeMs / 1000, fsTime(st.mtimeMs / 1000))
      } else {
        clobber(dst, dirs)
        const kind = st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : 'block'
        const r = await makeNode(dir, name, kind, devNumbers(st.rdev), options.signal)
        if (r.status !== 0) {
          throw new OcipullError('ERR_LAYER_INVALID', `${label(child)}: mknod failed: ${r.stderr}`)
        }
        if (isRoot) lchownSync(fsPath(dst), st.uid, st.gid)
        chmodSync(fsPath(dst), st.mode & 0o7777)
        lutimesSync(fsPath(dst), st.atimeMs / 1000, fsTime(st.mtimeMs / 1000))
      }
    }
  }
  const placeDir = (rel: string, st: Stats) => {
    const { parent, base } = splitParent(rel)
    const dir = dirs.resolve(parent, true, label(rel)) as string
    const dst = `${dir}/${base}`
    const existing = lstatOrUndefined(dst)
    if (existing === undefined || !existing.isDirectory()) {
      times.touch(dir)
      if (existing !== undefined) remove(dst, dirs)
      mkdirSync(fsPath(dst), 0o700)
    }
    if (isRoot) lchownSync(fsPath(dst), st.uid, st.gid)
    times.set(dst, { mode: st.mode & 0o7777, atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000 })
  }
  await walk('')

  // 3. Hardlinks to files of lower layers, then xattrs, then directory metadata.
  for (const c of record.changes) {
    if (c.kind !== 'link') continue
    const t = splitParent(c.target)
    const tdir = dirs.resolve(t.parent, false, label(c.path))
    const target = tdir === undefined ? undefined : `${tdir}/${t.base}`
    const tst = target === undefined ? undefined : lstatOrUndefined(target)
    if (target === undefined || tst === undefined || tst.isDirectory()) {
      throw new OcipullError(
        'ERR_LAYER_INVALID',
        `${label(c.path)}: hardlink target ${JSON.stringify(display(c.target))} is not a file of a lower layer`,
      )
    }
    const p = splitParent(c.path)
    const dir = dirs.resolve(p.parent, true, label(c.path)) as string
    times.touch(dir)
    clobber(`${dir}/${p.base}`, dirs)
    linkSync(fsPath(target), fsPath(`${dir}/${p.base}`))
  }
  const xattrs = new XattrWriter({ warn: options.warn, overlay: false })
  for (const c of record.changes) {
    if (c.kind !== 'xattrs') continue
    let host = rootHost
    if (c.path !== '') {
      const { parent, base } = splitParent(c.path)
      const dir = dirs.resolve(parent, false, label(c.path))
      if (dir === undefined) continue
      host = `${dir}/${base}`
    }
    await xattrs.apply(host, display(c.path), xattrMap(c.xattrs), options.signal)
  }
  times.apply()
}

function latin1(path: string): string {
  return Buffer.from(path, 'utf8').toString('latin1')
}

/** rm -rf without following symlinks; forgets cached resolutions that may have gone through it. */
function remove(host: string, dirs: ParentDirs): void {
  rmSync(fsPath(host), { recursive: true, force: true })
  dirs.invalidate()
}

/** Removes a non-directory or directory at `host` so a new object can take its name. */
function clobber(host: string, dirs: ParentDirs): void {
  const st = lstatOrUndefined(host)
  if (st === undefined) return
  if (st.isDirectory() || st.isSymbolicLink()) remove(host, dirs)
  else rmSync(fsPath(host), { force: true })
}

/** Linux dev_t → major, minor (glibc's gnu_dev_major/minor). */
function devNumbers(rdev: number): { major: number; minor: number } {
  const hi = Math.floor(rdev / 2 ** 32)
  const lo = rdev >>> 0
  return {
    major: ((lo >>> 8) & 0xfff) | (hi & 0xfffff000),
    minor: (lo & 0xff) | ((lo >>> 12) & 0xfff00),
  }
}
