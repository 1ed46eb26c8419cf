import { rename, rm } from 'node:fs/promises'

/**
 * Puts the complete directory `staging` at `target` (same filesystem), replacing what is there:
 * the old tree is renamed aside, the new one renamed in, then the old one removed. If the second
 * rename fails, the old tree is put back, so `target` holds the old tree or the new one, never a
 * mix; `staging` is left for the caller to remove.
 */
export async function replaceDirectory(staging: string, target: string): Promise<void> {
  const old = `${staging}.old`
  const hadTarget = await rename(target, old).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false
      throw err
    },
  )
  try {
    await rename(staging, target)
  } catch (err) {
    if (hadTarget) await rename(old, target).catch(() => {})
    throw err
  }
  if (hadTarget) await rm(old, { recursive: true, force: true })
}
