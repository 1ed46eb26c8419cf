import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { mkdir, open, rename, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Resources laid out like Trustee's LocalFs repository: `<dir>/<repository>/<type>/<tag>`.
 * Paths are three segments matching `^[A-Za-z0-9_-][A-Za-z0-9_.-]*$` (checked again here, so no
 * segment can be `..` or hold a `/`). Writes are atomic (temp file + rename, mode 0600).
 */
export interface LocalFsRepository {
  readonly dir: string
  /** The bytes, or undefined when there is no such resource. */
  read(path: readonly string[]): Promise<Buffer | undefined>
  write(path: readonly string[], bytes: Uint8Array): Promise<void>
  /** True when something was deleted. */
  delete(path: readonly string[]): Promise<boolean>
}

const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/

/** True for a valid `repository/type/tag` resource path. */
export function isResourcePath(path: readonly string[]): boolean {
  return path.length === 3 && path.every((s) => SEGMENT.test(s))
}

export function localFsRepository(dir: string, options: { maxBytes: number }): LocalFsRepository {
  const file = (path: readonly string[]) => {
    if (!isResourcePath(path)) throw new TypeError(`bad resource path ${JSON.stringify(path.join('/'))}`)
    return join(dir, ...path)
  }
  return {
    dir,
    async read(path) {
      let handle: Awaited<ReturnType<typeof open>>
      try {
        handle = await open(file(path), constants.O_RDONLY | constants.O_NOFOLLOW)
      } catch (err) {
        if (isMissing(err)) return undefined
        throw err
      }
      try {
        const st = await handle.stat()
        if (!st.isFile()) return undefined
        if (st.size > options.maxBytes)
          throw new Error(`resource ${path.join('/')} is over ${options.maxBytes} bytes`)
        const buf = Buffer.alloc(st.size)
        const { bytesRead } = await handle.read(buf, 0, st.size, 0)
        return buf.subarray(0, bytesRead)
      } finally {
        await handle.close()
      }
    },
    async write(path, bytes) {
      const target = file(path)
      const parent = join(dir, path[0] as string, path[1] as string)
      await mkdir(parent, { recursive: true, mode: 0o700 })
      // Names starting with '.' are never resource tags, so the temp file cannot be read as one.
      const temp = join(parent, `.${path[2]}.${randomBytes(6).toString('hex')}.tmp`)
      try {
        const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
        try {
          await handle.writeFile(bytes)
          await handle.sync()
        } finally {
          await handle.close()
        }
        await rename(temp, target)
      } catch (err) {
        await rm(temp, { force: true })
        throw err
      }
    },
    async delete(path) {
      try {
        await unlink(file(path))
        return true
      } catch (err) {
        if (isMissing(err)) return false
        throw err
      }
    },
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as { code?: string }).code
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP'
}
