import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'

const created: string[] = []

/** A fresh directory under the OS temp dir, removed by `removeTempDirs()` (call it in afterAll). */
export async function makeTempDir(prefix = 'ocipull-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  created.push(dir)
  return dir
}

export async function removeTempDirs(): Promise<void> {
  const dirs = created.splice(0)
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
}

export interface TempFiles {
  /** The directory (available from beforeAll on). */
  readonly dir: string
  /** Writes `bytes` to a new file `<dir>/<prefix><n><suffix>` and returns its path. */
  write(bytes: Buffer): Promise<string>
}

/**
 * A temp dir for a test file's files (archives, tars…): call at the top level of the file. It
 * registers a beforeAll that creates the dir and an afterAll that runs `removeTempDirs()`.
 */
export function useTempFiles(prefix: string, suffix = '.tar'): TempFiles {
  let dir: string | undefined
  let counter = 0
  beforeAll(async () => {
    dir = await makeTempDir()
  })
  afterAll(removeTempDirs)
  const files: TempFiles = {
    get dir() {
      if (dir === undefined) throw new Error('useTempFiles: the dir exists from beforeAll on')
      return dir
    },
    async write(bytes) {
      const path = join(files.dir, `${prefix}${counter++}${suffix}`)
      await writeFile(path, bytes)
      return path
    },
  }
  return files
}
