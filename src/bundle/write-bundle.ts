import { randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { abortError } from '../errors.js'
import type { RuntimeConfig } from './runtime-spec.js'

export interface WriteBundleOptions {
  signal?: AbortSignal
}

/**
 * Writes `config` as `dir/config.json` (2-space JSON, mode 0644) atomically: a temp file in `dir`,
 * fsync, then rename over any existing config.json, so a reader sees the old file or the new one,
 * never a partial one. Writing the same bundle twice replaces the file (image-rs refuses, which
 * breaks two containers of one image in a pod). Creates `dir` (0700) if missing.
 * Returns the path of config.json.
 */
export async function writeBundle(
  dir: string,
  config: RuntimeConfig,
  options: WriteBundleOptions = {},
): Promise<string> {
  const { signal } = options
  if (signal?.aborted) throw abortError(signal, `bundle ${dir}`)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const target = join(dir, 'config.json')
  const temp = join(dir, `.config.json.${randomBytes(6).toString('hex')}.tmp`)
  const bytes = Buffer.from(`${JSON.stringify(config, null, 2)}\n`)
  let renamed = false
  try {
    const file = await open(temp, 'wx', 0o644)
    try {
      await file.chmod(0o644) // regardless of the umask
      await file.writeFile(bytes)
      await file.sync()
    } finally {
      await file.close()
    }
    if (signal?.aborted) throw abortError(signal, `bundle ${dir}`)
    await rename(temp, target)
    renamed = true
  } finally {
    if (!renamed) await rm(temp, { force: true })
  }
  await syncDir(dir)
  return target
}

/** Makes the rename durable; best effort (some filesystems refuse fsync on a directory). */
async function syncDir(dir: string): Promise<void> {
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
