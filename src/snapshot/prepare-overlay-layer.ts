import {
  chmodSync,
  copyFileSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  type Stats,
  symlinkSync,
} from 'node:fs'
import { resolve } from 'node:path'
import { shortDigest } from '../digest.js'
import { OcipullError } from '../errors.js'
import { fsPath } from '../fs/resolve-in-root.js'
import type { LayerRecord } from '../store/layer-store.js'
import { DirTimes } from '../unpack/dir-times.js'
import { display, splitParent } from '../unpack/entry-path.js'
import { fsTime } from '../unpack/metadata.js'
import type { StoredLayer } from './snapshotter.js'

/**
 * Completes a layer unpacked on its own in overlay format so that overlayfs, which looks at each
 * layer directory separately, shows what a flattening unpack would: before it is committed, with
 * its lower layers known (they are committed first):
 *
 * - a directory the layer only implied takes the metadata of the same directory in the nearest
 *   lower layer that has it (overlayfs shows the upper one's, which would otherwise be 0755 root);
 * - a hardlink to a file of a lower layer becomes a copy of that file (overlayfs cannot share an
 *   inode across layers; this is what its copy-up does when a container links a lower file).
 *
 * Lookups in the lowers take paths literally and never follow a symlink; a lower layer that
 * whites out the path (or an ancestor) ends the search.
 */
export function prepareOverlayLayer(diff: string, record: LayerRecord, lowers: readonly StoredLayer[]): void {
  const what = `layer ${shortDigest(record.digest)}`
  const top = latin1(resolve(diff))
  const times = new DirTimes()
  // Implied directories reached through a lower symlink move to where the symlink leads.
  const implicit = record.changes
    .filter((c) => c.kind === 'implicit-dir' && c.path !== '')
    .map((c) => c.path)
    .sort((a, b) => a.split('/').length - b.split('/').length)
  const moved = new Map<string, string>()
  for (const path of implicit) {
    const at = movedPath(path, moved)
    if (lstatOrUndefined(`${top}/${at}`)?.isDirectory() !== true) continue
    const real = resolveMerged(at, lowers)
    if (real === undefined || real === at) continue
    const { parent } = splitParent(at)
    times.touch(parent === '' ? top : `${top}/${parent}`)
    ensureDir(top, real, lowers, times)
    mergeInto(`${top}/${at}`, `${top}/${real}`, times)
    moved.set(at, real)
  }
  if (moved.size > 0) {
    record.changes = record.changes.map((c) =>
      c.kind === 'implicit-dir' || c.kind === 'xattrs' ? { ...c, path: movedPath(c.path, moved) } : c,
    )
  }
  for (const c of record.changes) {
    if (c.kind === 'implicit-dir' && c.path === '') {
      const below = lowers.at(-1)
      if (below !== undefined) copyMetadata(top, lstatSync(fsPath(latin1(resolve(below.dir)))))
    } else if (c.kind === 'implicit-dir') {
      const lower = findInLowers(c.path, lowers)
      if (lower?.isDirectory()) copyMetadata(`${top}/${c.path}`, lower)
    } else if (c.kind === 'link') {
      const real = resolveMerged(c.target, lowers, false)
      const lower = real === undefined ? undefined : findInLowers(real, lowers)
      if (lower === undefined || lower.isDirectory()) {
        throw new OcipullError(
          'ERR_LAYER_INVALID',
          `${what}: entry ${JSON.stringify(display(c.path))}: hardlink target ${JSON.stringify(display(c.target))} is not a file of a lower layer`,
        )
      }
      const dest = resolveMerged(c.path, lowers, false) ?? c.path
      const { parent } = splitParent(dest)
      if (parent !== '') ensureDir(top, parent, lowers, times)
      times.touch(parent === '' ? top : `${top}/${parent}`)
      rmSync(fsPath(`${top}/${dest}`), { recursive: true, force: true })
      if (lower.isFile()) copyFileSync(fsPath(lower.host), fsPath(`${top}/${dest}`))
      else if (lower.isSymbolicLink())
        symlinkSync(readlinkSync(fsPath(lower.host), { encoding: 'buffer' }), fsPath(`${top}/${dest}`))
      else
        throw new OcipullError(
          'ERR_SNAPSHOTTER_UNSUPPORTED',
          `${what}: entry ${JSON.stringify(display(c.path))}: hardlink to a lower device or fifo`,
        )
      copyMetadata(`${top}/${dest}`, lower)
    }
  }
  times.apply()
}

/** `path` after the moves made so far (a moved directory takes its descendants along). */
function movedPath(path: string, moved: Map<string, string>): string {
  for (const [from, to] of moved) {
    if (path === from) return to
    if (path.startsWith(`${from}/`)) return `${to}${path.slice(from.length)}`
  }
  return path
}

/** mkdir -p of `rel` in the layer, each new directory with the lower one's metadata. */
function ensureDir(top: string, rel: string, lowers: readonly StoredLayer[], times: DirTimes): void {
  let at = ''
  for (const part of rel.split('/')) {
    const parentHost = at === '' ? top : `${top}/${at}`
    at = at === '' ? part : `${at}/${part}`
    const st = lstatOrUndefined(`${top}/${at}`)
    if (st?.isDirectory()) continue
    if (st !== undefined) rmSync(fsPath(`${top}/${at}`), { recursive: true, force: true })
    times.touch(parentHost)
    mkdirSync(fsPath(`${top}/${at}`), 0o755)
    const lower = findInLowers(at, lowers)
    if (lower?.isDirectory()) copyMetadata(`${top}/${at}`, lower)
  }
}

/** Moves the children of directory `from` into directory `to`, merging directories; removes `from`. */
function mergeInto(from: string, to: string, times: DirTimes): void {
  times.touch(to)
  for (const name of readdirSync(fsPath(from), { encoding: 'latin1' })) {
    const src = `${from}/${name}`
    const dst = `${to}/${name}`
    const there = lstatOrUndefined(dst)
    if (there?.isDirectory() && lstatSync(fsPath(src)).isDirectory()) {
      mergeInto(src, dst, times)
      continue
    }
    if (there !== undefined) rmSync(fsPath(dst), { recursive: true, force: true })
    renameSync(fsPath(src), fsPath(dst))
  }
  rmSync(fsPath(from), { recursive: true, force: true })
}

/**
 * `path` with every symlink of the lower layers on the way resolved, inside the root (absolute
 * targets and '..' are taken from the root, as resolveInRoot does); the last component is followed
 * only with `followLast`. Undefined after 255 links.
 */
function resolveMerged(path: string, lowers: readonly StoredLayer[], followLast = true): string | undefined {
  const resolved: string[] = []
  const pending = path
    .split('/')
    .filter((p) => p !== '' && p !== '.')
    .reverse()
  let links = 0
  while (pending.length > 0) {
    const part = pending.pop() as string
    if (part === '..') {
      resolved.pop()
      continue
    }
    const candidate = [...resolved, part].join('/')
    const st = findInLowers(candidate, lowers)
    if (st?.isSymbolicLink() && (pending.length > 0 || followLast)) {
      if (++links > 255) return undefined
      const target = readlinkSync(fsPath(st.host), { encoding: 'latin1' })
      if (target.startsWith('/')) resolved.length = 0
      pending.push(
        ...target
          .split('/')
          .filter((p) => p !== '' && p !== '.')
          .reverse(),
      )
      continue
    }
    resolved.push(part)
  }
  return resolved.join('/')
}

function lstatOrUndefined(host: string): Stats | undefined {
  try {
    return lstatSync(fsPath(host))
  } catch {
    return undefined
  }
}

type Found = Stats & { host: string }

function findInLowers(path: string, lowers: readonly StoredLayer[]): Found | undefined {
  for (let i = lowers.length - 1; i >= 0; i--) {
    const layer = lowers[i] as StoredLayer
    const base = latin1(resolve(layer.dir))
    const st = literalLstat(base, path)
    if (st !== undefined) return Object.assign(st, { host: `${base}/${path}` })
    if (whitedOut(layer.record, path)) return undefined
  }
  return undefined
}

/** lstat of `base/path` only when no component on the way is a symlink (else undefined). */
function literalLstat(base: string, path: string): Stats | undefined {
  let at = base
  const parts = path.split('/')
  for (const [i, part] of parts.entries()) {
    at = `${at}/${part}`
    let st: Stats
    try {
      st = lstatSync(fsPath(at))
    } catch {
      return undefined
    }
    if (i === parts.length - 1) return st.isCharacterDevice() && st.rdev === 0 ? undefined : st
    if (!st.isDirectory()) return undefined
  }
  return undefined
}

function whitedOut(record: LayerRecord, path: string): boolean {
  return record.changes.some(
    (c) =>
      (c.kind === 'whiteout' && (path === c.path || path.startsWith(`${c.path}/`))) ||
      (c.kind === 'opaque' && path.startsWith(`${c.path}/`)),
  )
}

function copyMetadata(host: string, from: Stats): void {
  lchownSync(fsPath(host), from.uid, from.gid)
  if (!from.isSymbolicLink()) chmodSync(fsPath(host), from.mode & 0o7777)
  lutimesSync(fsPath(host), from.atimeMs / 1000, fsTime(from.mtimeMs / 1000))
}

function latin1(path: string): string {
  return Buffer.from(path, 'utf8').toString('latin1')
}
