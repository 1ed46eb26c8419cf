import { constants } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'

/** Makes the caller's error for a problem (`cannot open: ENOENT`, `not a regular file`, …). */
export type ReadFailure = (problem: string, cause?: unknown) => never

/**
 * Reads a configuration or credential file that the host may have tampered with: opened with
 * O_NONBLOCK (a FIFO planted at the path must not hang the open), refused unless it is a regular
 * file, and never read past `maxBytes`, even if it grows while being read. With `missingOk`, a
 * file that does not exist is `undefined` instead of a failure.
 */
export async function readCappedFile(
  path: string,
  maxBytes: number,
  fail: ReadFailure,
  options: { missingOk: true },
): Promise<Buffer | undefined>
export async function readCappedFile(path: string, maxBytes: number, fail: ReadFailure): Promise<Buffer>
export async function readCappedFile(
  path: string,
  maxBytes: number,
  fail: ReadFailure,
  options: { missingOk?: boolean } = {},
): Promise<Buffer | undefined> {
  let handle: FileHandle
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (options.missingOk && (code === 'ENOENT' || code === 'ENOTDIR')) return undefined
    return fail(`cannot open: ${code ?? 'error'}`, err)
  }
  const io = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op()
    } catch (err) {
      return fail(`cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, err)
    }
  }
  try {
    const info = await io(() => handle.stat())
    if (!info.isFile()) fail('not a regular file')
    if (info.size > maxBytes) fail(`larger than ${maxBytes} bytes`)
    const buffer = Buffer.alloc(Math.min(maxBytes, info.size) + 1)
    let length = 0
    for (;;) {
      const { bytesRead } = await io(() => handle.read(buffer, length, buffer.length - length, null))
      if (bytesRead === 0) break
      length += bytesRead
      if (length > maxBytes) fail(`larger than ${maxBytes} bytes`)
      if (length === buffer.length) break // grew while read: the extra byte is checked above
    }
    return buffer.subarray(0, length)
  } finally {
    await handle.close()
  }
}
