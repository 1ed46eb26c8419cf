import { lstatSync, type Stats } from 'node:fs'
import { OcipullError } from '../errors.js'
import { fsPath } from '../fs/resolve-in-root.js'
import { cleanEntryPath, display, splitParent, unsafe } from './entry-path.js'
import type { ParentDirs } from './parent-dirs.js'
import type { TarEntry } from './tar-entry.js'
import type { Warn } from './xattrs.js'

export interface HardlinkContext {
  dirs: ParentDirs
  /** Device nodes skipped because we are not root: a hardlink to one is skipped too. */
  skipped: Set<string>
  what: string
  /** `<what>: entry "<name>"`, for messages. */
  label: string
  warn: Warn
  /** When set, a missing target calls this and yields undefined instead of ERR_LAYER_INVALID. */
  onMissing?: () => void
}

/**
 * The host path a hardlink entry links to, or undefined when it links to a skipped device.
 * Its name is cleaned like an entry name ('..' above the root is ERR_PATH_UNSAFE); its parent is
 * resolved inside the root (contained, like umoci: a target reached through an escaping symlink,
 * or an absolute one, names the file inside the root, never the host's); its last component is
 * not followed (a link to a symlink links the symlink, as link(2) does). In 'apply' mode this
 * reaches files of lower layers too. It must exist and not be a directory (ERR_LAYER_INVALID);
 * other types (file, symlink, fifo, device) are fine, as for umoci and GNU tar.
 */
export function resolveHardlinkTarget(e: TarEntry, ctx: HardlinkContext): string | undefined {
  const target = JSON.stringify(display(e.linkname))
  let rel: string
  try {
    rel = cleanEntryPath(e.linkname, ctx.what)
  } catch {
    throw unsafe(ctx.what, e.name, `hardlink target ${target} escapes the root`)
  }
  const invalid = (message: string) => new OcipullError('ERR_LAYER_INVALID', `${ctx.label}: ${message}`)
  if (rel === '') throw invalid('hardlink to the root directory')
  const { parent, base } = splitParent(rel)
  const dir = ctx.dirs.resolve(parent, false, ctx.label)
  const host = dir === undefined ? undefined : `${dir}/${base}`
  const st = host === undefined ? undefined : lstatOrUndefined(host)
  if (host === undefined || st === undefined) {
    if (host !== undefined && ctx.skipped.has(host)) {
      ctx.warn('WARN_DEVICE_SKIPPED', display(e.name), `hardlink to skipped device ${target} skipped`)
      return undefined
    }
    if (ctx.onMissing !== undefined) {
      ctx.onMissing()
      return undefined
    }
    throw invalid(`hardlink target ${target} does not exist`)
  }
  if (st.isDirectory()) throw invalid(`hardlink target ${target} is a directory`)
  return host
}

export function lstatOrUndefined(host: string): Stats | undefined {
  try {
    return lstatSync(fsPath(host))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw err
  }
}
