import { lstatSync, readdirSync, rmSync } from 'node:fs'
import { OcipullError } from '../errors.js'
import { fsPath } from '../fs/resolve-in-root.js'
import type { DirTimes } from './dir-times.js'
import type { Whiteout } from './entry-path.js'
import { makeNode } from './make-node.js'
import type { ParentDirs } from './parent-dirs.js'
import type { UpperPaths } from './upper-paths.js'
import { setXattr, type Warn } from './xattrs.js'

export interface WhiteoutContext {
  mode: 'apply' | 'overlay' | 'record'
  dirs: ParentDirs
  times: DirTimes
  upper: UpperPaths
  warn: Warn
  isRoot: boolean
  signal: AbortSignal | undefined
}

/**
 * Handles a whiteout entry found in directory `parent` (cleaned, relative to the root).
 * The directory is resolved inside the root like any entry's parent, and the name removed is
 * never followed: a whiteout through a symlink removes inside the root, never outside.
 *
 * 'apply': `.wh.NAME` removes NAME (recursively) and `.wh..wh..opq` empties the directory, in
 * both cases sparing what this layer created (UpperPaths), so entry order does not matter.
 * 'overlay': `.wh.NAME` becomes a 0/0 character device and `.wh..wh..opq` the xattr
 * trusted.overlay.opaque=y (user.overlay.opaque=y when that fails or when not root);
 * ERR_IMAGE_UNSUPPORTED when neither can be made, since silently dropping them would resurrect
 * deleted files.
 */
export async function applyWhiteout(
  ctx: WhiteoutContext,
  parent: string,
  wh: Whiteout,
  label: string,
): Promise<void> {
  if (wh.kind === 'meta') return
  if (ctx.mode === 'apply') {
    const dir = ctx.dirs.resolve(parent, false, label)
    if (dir === undefined) return
    if (wh.kind === 'opaque') removeLower(ctx, dir, true)
    else if (exists(`${dir}/${wh.target}`)) removeLower(ctx, `${dir}/${wh.target}`, false)
    return
  }
  const dir = ctx.dirs.resolve(parent, true, label) as string
  if (wh.kind === 'opaque') {
    await markOpaque(ctx, dir, label)
    ctx.upper.add(ctx.dirs.relative(dir))
    return
  }
  const host = `${dir}/${wh.target}`
  if (exists(host)) {
    if (ctx.upper.has(ctx.dirs.relative(host))) {
      ctx.warn('WARN_WHITEOUT_CONFLICT', label, 'whiteout for an entry of the same layer ignored')
      return
    }
    ctx.times.touch(dir)
    remove(ctx, host)
  }
  ctx.times.touch(dir)
  const r = await makeNode(dir, wh.target, 'char', { major: 0, minor: 0 }, ctx.signal)
  if (r.status !== 0) {
    throw new OcipullError(
      'ERR_IMAGE_UNSUPPORTED',
      `${label}: cannot create an overlay whiteout: ${r.stderr}`,
    )
  }
  ctx.upper.add(ctx.dirs.relative(host))
}

/** Removes `host` unless this layer created it; for a directory it created, recurses. */
function removeLower(ctx: WhiteoutContext, host: string, keepTop: boolean): void {
  if (!keepTop && !ctx.upper.has(ctx.dirs.relative(host))) {
    ctx.times.touch(host.slice(0, host.lastIndexOf('/')))
    remove(ctx, host)
    return
  }
  if (!lstatSync(fsPath(host)).isDirectory()) return
  for (const name of readdirSync(fsPath(host), { encoding: 'latin1' })) {
    removeLower(ctx, `${host}/${name}`, false)
  }
}

/** rm -rf without following symlinks; forgets cached resolutions that may have gone through it. */
function remove(ctx: WhiteoutContext, host: string): void {
  rmSync(fsPath(host), { recursive: true, force: true })
  ctx.dirs.invalidate()
}

async function markOpaque(ctx: WhiteoutContext, dir: string, label: string): Promise<void> {
  const names = ctx.isRoot ? ['trusted.overlay.opaque', 'user.overlay.opaque'] : ['user.overlay.opaque']
  const failures: string[] = []
  for (const name of names) {
    const r = await setXattr(dir, name, Buffer.from('y'), ctx.signal)
    if (r.status === 0) return
    failures.push(`${name}: ${r.stderr}`)
  }
  throw new OcipullError(
    'ERR_IMAGE_UNSUPPORTED',
    `${label}: cannot mark an opaque directory for overlayfs (${failures.join('; ')})`,
  )
}

function exists(host: string): boolean {
  try {
    lstatSync(fsPath(host))
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return false
    throw err
  }
}
