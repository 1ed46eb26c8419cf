import { randomBytes } from 'node:crypto'
import { open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * Writes `bytes` to `target` so that a reader (or a run after a crash) sees the old file or the
 * new one, never a partial one: a temp file beside it, fsync, rename, then fsync of the directory
 * (best effort: some filesystems refuse it).
 */
export async function writeFileAtomic(target: string, bytes: Uint8Array, mode = 0o644): Promise<void> {
  const dir = dirname(target)
  const temp = join(dir, `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`)
  let renamed = false
  try {
    const file = await open(temp, 'wx', mode)
    try {
      await file.chmod(mode) // regardless of the umask
      await file.writeFile(bytes)
      await file.sync()
    } finally {
      await file.close()
    }
    await rename(temp, target)
    renamed = true
  } finally {
    if (!renamed) await rm(temp, { force: true })
  }
  await syncDir(dir)
}

export async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch {
    // not fatal: the file itself is complete and in place
  }
}
