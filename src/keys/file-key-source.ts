import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { abortError, OcipullError } from '../errors.js'
import type { KeySource } from './key-source.js'

export interface FileKeySourceOptions {
  /** The largest file read (default 4 MiB: keys, policies, auth files). */
  maxBytes?: number
}

const MAX_FILE_BYTES = 4 * 1024 * 1024

/**
 * A KeySource for `file:///absolute/path` URIs (host empty or `localhost`, no query or fragment):
 * a regular file, read whole up to `maxBytes`. A missing or unreadable file is
 * ERR_KEY_UNAVAILABLE; any other URI is ERR_RESOURCE_URI_INVALID.
 */
export function fileKeySource(options: FileKeySourceOptions = {}): KeySource {
  const maxBytes = options.maxBytes ?? MAX_FILE_BYTES
  return {
    async getResource(uri, opts = {}) {
      const path = filePath(uri)
      const what = `file ${path}`
      if (opts.signal?.aborted) throw abortError(opts.signal, what)
      let handle: Awaited<ReturnType<typeof open>>
      try {
        handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
      } catch (err) {
        throw unavailable(what, err)
      }
      try {
        const st = await handle.stat()
        if (!st.isFile()) throw new OcipullError('ERR_KEY_UNAVAILABLE', `${what}: not a regular file`)
        if (st.size > maxBytes) {
          throw new OcipullError(
            'ERR_KEY_UNAVAILABLE',
            `${what}: ${st.size} bytes, over the limit of ${maxBytes}`,
          )
        }
        const buf = Buffer.alloc(st.size)
        const { bytesRead } = await handle.read(buf, 0, st.size, 0)
        if (opts.signal?.aborted) throw abortError(opts.signal, what)
        return new Uint8Array(buf.buffer, buf.byteOffset, bytesRead)
      } catch (err) {
        throw err instanceof OcipullError ? err : unavailable(what, err)
      } finally {
        await handle.close()
      }
    },
  }
}

/** The absolute path of a `file://` URI; ERR_RESOURCE_URI_INVALID for anything else. */
export function filePath(uri: string): string {
  const bad = (problem: string): never => {
    throw new OcipullError(
      'ERR_RESOURCE_URI_INVALID',
      `resource uri ${JSON.stringify(uri.slice(0, 200))}: ${problem}`,
    )
  }
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return bad('not a URI')
  }
  if (url.protocol !== 'file:') bad('want file://')
  if (!uri.startsWith('file://')) bad('want file:///absolute/path')
  if (url.host !== '' && url.host !== 'localhost') bad('want no host (file:///path) or localhost')
  if (url.search !== '' || url.hash !== '') bad('a query or fragment is not allowed')
  try {
    return fileURLToPath(url)
  } catch (err) {
    return bad((err as Error).message)
  }
}

function unavailable(what: string, err: unknown): OcipullError {
  const code = (err as { code?: string }).code
  const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(err)
  return new OcipullError('ERR_KEY_UNAVAILABLE', `${what}: ${reason}`, { cause: err })
}
