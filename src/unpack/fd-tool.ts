import { spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'

/**
 * Node has no mknod(2) and no xattr calls, so the rare entries that need them (devices, fifos,
 * entries with xattrs, overlay whiteouts) run a tool: `mknod` (coreutils) or `setfattr` (attr).
 * A spawn costs about 1.5–2 ms here, against ~20 µs for a regular file, which is fine because
 * such entries are rare: a few device nodes in old base images, file capabilities on a handful
 * of binaries.
 *
 * The tool never sees an image path: we open the object (or its directory) with O_PATH|O_NOFOLLOW
 * and hand the descriptor over as fd 3, and the tool works on `/proc/self/fd/3`. So names that
 * are not UTF-8 (which argv cannot carry) work, nothing is resolved twice, and a symlink is acted
 * on itself, never on its target. Needs /proc, as every Linux guest has.
 */

/** Linux's O_PATH (the same on x86, arm and arm64); not in fs.constants. */
const O_PATH = 0o10000000
const O_NOFOLLOW = 0o400000

export const FD_PATH = '/proc/self/fd/3'

export interface ToolResult {
  /** Exit status, or -1 when the tool could not be started (ENOENT: not installed). */
  status: number
  /** stderr, trimmed (LC_ALL=C, so messages are the C library's). */
  stderr: string
  /** The errno name guessed from stderr: 'ENOTSUP', 'EPERM', 'ENOENT' (tool missing) or ''. */
  errno: string
}

/** Runs `command args…` with `path` (a host path, not followed) open as fd 3. */
export async function runWithFd(
  command: string,
  args: string[],
  path: string | Buffer,
  signal: AbortSignal | undefined,
): Promise<ToolResult> {
  const fd = openSync(path, O_PATH | O_NOFOLLOW)
  try {
    return await new Promise<ToolResult>((resolve, reject) => {
      const child = spawn(command, args, {
        stdio: ['ignore', 'ignore', 'pipe', fd],
        env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
        ...(signal ? { signal } : {}),
      })
      const err: Buffer[] = []
      child.stderr?.on('data', (d: Buffer) => {
        if (err.length < 16) err.push(d)
      })
      child.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') resolve({ status: -1, stderr: `${command}: not found`, errno: 'ENOENT' })
        else reject(e)
      })
      child.on('close', (code) => {
        const stderr = Buffer.concat(err).toString('utf8').trim()
        resolve({ status: code ?? -1, stderr, errno: code === 0 ? '' : errnoOf(stderr) })
      })
    })
  } finally {
    closeSync(fd)
  }
}

function errnoOf(stderr: string): string {
  if (/Operation not supported/.test(stderr)) return 'ENOTSUP'
  if (/Operation not permitted|Permission denied/.test(stderr)) return 'EPERM'
  return 'EIO'
}
