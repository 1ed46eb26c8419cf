import { lstatSync } from 'node:fs'
import { resolve } from 'node:path'
import { type Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { abortError, OcipullError } from '../errors.js'
import type { LayerChange } from './layer-changes.js'
import { resolveLimits, type UnpackLimits } from './limits.js'
import { type TarEvent, TarParser } from './tar-parser.js'
import { EntryWriter } from './write-entry.js'

export type { LayerChange } from './layer-changes.js'
export type { UnpackLimits } from './limits.js'

const WRITE_AHEAD = 4 << 20

export interface UnpackWarning {
  /** WARN_DEVICE_SKIPPED, WARN_XATTR_UNSUPPORTED, WARN_XATTR_FORBIDDEN, WARN_XATTR_INVALID,
   *  WARN_XATTR_FAILED, WARN_WHITEOUT_CONFLICT, WARN_PAX_GLOBAL_IGNORED. */
  code: string
  /** The entry's name as in the archive (UTF-8, lossy for other bytes); '' when about no entry. */
  path: string
  /** A full message: `layer sha256:ab12…: entry "dev/null": char device 1:3 skipped (not root)`. */
  message: string
}

export interface UnpackOptions {
  /**
   * 'apply': extract onto an existing tree (a flattened rootfs), applying whiteouts by deleting.
   * 'overlay': produce an overlayfs layer dir: whiteouts become char 0/0 devices, opaque dirs get
   * the xattr trusted.overlay.opaque=y (as root; user.overlay.opaque otherwise; ERR_IMAGE_UNSUPPORTED
   * if neither works).
   * 'record': leave whiteouts off the disk; report them through `onChange` (a layer-store layer
   * unpacked without root, stacked later by the dir snapshotter).
   */
  whiteouts: 'apply' | 'overlay' | 'record'
  /**
   * Reports what the files of a layer unpacked on its own cannot show (layer-changes.ts):
   * whiteouts, opaque directories, implicit directories, xattrs, deferred hardlinks.
   */
  onChange?: (change: LayerChange) => void
  /**
   * A hardlink whose target is missing is reported as a `link` change instead of failing with
   * ERR_LAYER_INVALID: its target is in a lower layer, which is not there when a layer is
   * unpacked on its own.
   */
  deferMissingLinks?: boolean
  limits?: UnpackLimits
  /** Harmless oddities: devices skipped when not root, xattrs the filesystem refuses, … */
  onWarning?: (w: UnpackWarning) => void
  signal?: AbortSignal
  /** Names the layer in messages, e.g. `layer sha256:ab12…`. Default 'layer'. */
  what?: string
}

export interface UnpackStats {
  /** Archive members handled (whiteouts included). */
  entries: number
  /** Bytes of regular-file data written. */
  bytes: number
}

/**
 * Consumes a plain (already decompressed) tar stream into `root`, umoci-style (see write-entry.ts
 * for what is created how, apply-whiteout.ts for layering, entry-path.ts for names). Resolves when
 * the tar is fully consumed, including any bytes after the end-of-archive marker, which are read
 * and ignored so a digest stream upstream sees every byte; directory modes and times are applied
 * last. Costs a few syscalls per entry (sync: the event loop is blocked for ~20 µs per small file)
 * plus a spawn of `mknod` or `setfattr` for each device, fifo or xattr; memory is one chunk, one
 * PAX header at most and one string per created path. Backpressure reaches `input`.
 *
 * Rejects with ERR_PATH_UNSAFE (a name or hardlink target climbing out of the root, a root entry
 * of another type), ERR_LIMIT_EXCEEDED, ERR_LAYER_INVALID (bad or truncated archive, impossible
 * entries), ERR_IMAGE_UNSUPPORTED (overlay whiteouts that cannot be made), ERR_ABORTED, or a
 * filesystem error (ENOSPC, EIO, …) naming the entry. `input` is destroyed with the error.
 * On failure `root` holds a partial tree: the caller extracts into a staging directory and removes
 * it (this function does not clean up).
 */
export async function unpackTar(input: Readable, root: string, options: UnpackOptions): Promise<UnpackStats> {
  const what = options.what ?? 'layer'
  const { signal } = options
  let limits: ReturnType<typeof resolveLimits>
  let rootPath: string
  try {
    if (!['apply', 'overlay', 'record'].includes(options.whiteouts)) {
      throw new TypeError(
        `whiteouts must be 'apply', 'overlay' or 'record', got ${String(options.whiteouts)}`,
      )
    }
    limits = resolveLimits(options.limits)
    if (signal?.aborted) throw abortError(signal, what)
    rootPath = checkRoot(root, what)
  } catch (err) {
    // Nobody else will read `input`: destroy it so the stages upstream stop too. The listener
    // keeps that error from being unhandled when the caller has none on `input`.
    input.on('error', () => {})
    input.destroy(err as Error)
    throw err
  }
  const warn = (code: string, path: string, message: string) => {
    const at = path === '' ? '' : `entry ${JSON.stringify(path)}: `
    options.onWarning?.({ code, path, message: `${what}: ${at}${message}` })
  }
  const parser = new TarParser({ what, maxPathLength: limits.maxPathLength, maxBytes: limits.maxBytes, warn })
  const writer = new EntryWriter({
    root: Buffer.from(rootPath, 'utf8').toString('latin1'),
    whiteouts: options.whiteouts,
    what,
    maxEntries: limits.maxEntries,
    warn,
    signal,
    onChange: options.onChange,
    deferMissingLinks: options.deferMissingLinks === true,
  })
  const events: TarEvent[] = []
  const sink = new Writable({
    // Up to 4 MiB may wait here, so the inflater upstream keeps working on the thread pool while
    // this stream writes files; setImmediate moves the writing out of the inflater's callback.
    highWaterMark: WRITE_AHEAD,
    write(chunk: Buffer, _encoding, callback) {
      setImmediate(() => {
        let pending: Promise<void> | undefined
        try {
          events.length = 0
          parser.write(chunk, events)
          pending = writer.run(events)
        } catch (err) {
          callback(err as Error)
          return
        }
        if (pending === undefined) callback()
        else pending.then(() => callback(), callback)
      })
    },
    destroy(err, callback) {
      writer.close()
      callback(err)
    },
  })
  try {
    await pipeline(input, sink, signal ? { signal } : {})
    parser.finish()
    writer.finish()
  } catch (err) {
    writer.close()
    if (signal?.aborted) throw abortError(signal, what)
    throw err
  }
  return { ...writer.stats }
}

/** The root as an absolute path; it must be an existing directory (not a symlink). */
function checkRoot(root: string, what: string): string {
  const abs = resolve(root)
  if (abs === '/') throw new TypeError(`${what}: refusing to unpack into /`)
  let isDir = false
  try {
    isDir = lstatSync(abs).isDirectory()
  } catch {}
  if (!isDir) throw new OcipullError('ERR_OPTIONS_INVALID', `${what}: ${abs}: not a directory`)
  return abs
}
