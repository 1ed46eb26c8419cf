import { fsPath } from '../fs/resolve-in-root.js'
import { FD_PATH, runWithFd, type ToolResult } from './fd-tool.js'

export type Warn = (code: string, path: string, message: string) => void

/** xattrs that are host-specific: never taken from an image (umoci skips the same ones). */
const FORBIDDEN = new Set(['security.selinux', 'system.nfs4_acl'])
/** Printable ASCII, at most XATTR_NAME_MAX bytes, with a namespace. */
const NAME = /^(user|trusted|security|system)\.[\x21-\x7e]{1,250}$/

/**
 * Applies PAX `SCHILY.xattr.*` records with `setfattr` (Debian's `attr`), one spawn per xattr
 * and only for entries that have any (see fd-tool.ts for the cost and why a tool). umoci's
 * rules: security.selinux and system.nfs4_acl are skipped; a filesystem without xattrs
 * (ENOTSUP) gets one warning per layer, not one per file; EPERM (not root: trusted.*,
 * security.capability) is a warning. In overlay mode `trusted.overlay.*` and `user.overlay.*`
 * from the image are skipped, since overlayfs would obey them (an image could make any directory
 * opaque or redirect it). Lower-layer xattrs on a directory that a layer keeps are not cleared
 * (umoci clears them; without listxattr that would cost a spawn per directory).
 */
export class XattrWriter {
  private readonly warn: Warn
  private readonly overlay: boolean
  private unsupportedWarned = false

  constructor(options: { warn: Warn; overlay: boolean }) {
    this.warn = options.warn
    this.overlay = options.overlay
  }

  /** Sets each xattr on `host` (a byte-string host path, not followed); `label` names the entry. */
  async apply(host: string, label: string, xattrs: Map<string, Buffer>, signal?: AbortSignal): Promise<void> {
    for (const [name, value] of xattrs) {
      if (FORBIDDEN.has(name)) {
        this.warn('WARN_XATTR_FORBIDDEN', label, `xattr ${JSON.stringify(name)} ignored`)
        continue
      }
      if (!NAME.test(name)) {
        this.warn('WARN_XATTR_INVALID', label, `xattr ${JSON.stringify(name)} has an invalid name: ignored`)
        continue
      }
      if (this.overlay && /^(trusted|user)\.overlay\./.test(name)) {
        this.warn('WARN_XATTR_FORBIDDEN', label, `overlayfs xattr ${JSON.stringify(name)} ignored`)
        continue
      }
      const r = await setXattr(host, name, value, signal)
      if (r.status === 0) continue
      if (r.errno === 'ENOTSUP' || r.errno === 'ENOENT') {
        if (this.unsupportedWarned) continue
        this.unsupportedWarned = true
        const why =
          r.errno === 'ENOENT' ? 'setfattr is not installed' : 'the filesystem does not support them'
        this.warn('WARN_XATTR_UNSUPPORTED', label, `xattrs not applied (${why}); further warnings suppressed`)
        continue
      }
      this.warn('WARN_XATTR_FAILED', label, `xattr ${JSON.stringify(name)}: ${r.stderr}`)
    }
  }
}

/** `setfattr -n name -v value` on `host` (byte string, not followed). */
export function setXattr(
  host: string,
  name: string,
  value: Buffer,
  signal?: AbortSignal,
): Promise<ToolResult> {
  // "0s" + base64 is setfattr's binary-safe form; it cannot express an empty value, which '' does.
  const v = value.length === 0 ? '' : `0s${value.toString('base64')}`
  return runWithFd('setfattr', ['-n', name, '-v', v, FD_PATH], fsPath(host), signal)
}
