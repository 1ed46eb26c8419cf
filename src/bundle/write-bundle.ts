import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { abortError } from '../errors.js'
import { writeFileAtomic } from '../fs/write-file-atomic.js'
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
  await writeFileAtomic(target, Buffer.from(`${JSON.stringify(config, null, 2)}\n`))
  return target
}
