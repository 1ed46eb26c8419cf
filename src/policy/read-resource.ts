import { open } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { abortError, type ErrorCode, OcipullError } from '../errors.js'
import type { KeySource } from '../keys/key-source.js'

export interface ReadResourceOptions {
  maxBytes: number
  /** Names the resource in errors, e.g. `policy /etc/containers/policy.json`. */
  what: string
  /** The code for a missing, unreadable or oversized resource. */
  code: ErrorCode
  /** Serves URIs other than `file://` (e.g. `kbs:///default/cosign-public-key/test`). */
  keySource?: KeySource
  signal?: AbortSignal
}

const uriPattern = /^[a-z][a-z0-9+.-]*:\/\//i

/**
 * Reads a policy, key or certificate named by a file path, a `file://` URI, or any other resource
 * URI through `keySource`. Refuses anything larger than `maxBytes` and non-regular files.
 */
export async function readResource(location: string, options: ReadResourceOptions): Promise<Uint8Array> {
  if (options.signal?.aborted) throw abortError(options.signal, options.what)
  if (uriPattern.test(location) && !location.toLowerCase().startsWith('file://')) {
    if (options.keySource === undefined) {
      throw new OcipullError(
        'ERR_RESOURCE_URI_INVALID',
        `${options.what}: no key source is configured to read ${location.slice(0, location.indexOf('://') + 3)} URIs`,
      )
    }
    const bytes = await options.keySource.getResource(
      location,
      options.signal === undefined ? {} : { signal: options.signal },
    )
    if (bytes.byteLength > options.maxBytes) throw tooLarge(options, bytes.byteLength)
    return bytes
  }
  let path = location
  if (uriPattern.test(location)) {
    try {
      path = fileURLToPath(location)
    } catch (err) {
      throw new OcipullError(options.code, `${options.what}: not a valid file URI`, { cause: err })
    }
  }
  let handle: Awaited<ReturnType<typeof open>> | undefined
  try {
    handle = await open(path, 'r')
    const stat = await handle.stat()
    if (!stat.isFile()) throw new OcipullError(options.code, `${options.what}: not a regular file`)
    if (stat.size > options.maxBytes) throw tooLarge(options, stat.size)
    const buffer = Buffer.alloc(Math.min(stat.size, options.maxBytes) + 1)
    let total = 0
    for (;;) {
      const { bytesRead } = await handle.read(buffer, total, buffer.length - total, null)
      if (bytesRead === 0) break
      total += bytesRead
      if (total === buffer.length)
        throw new OcipullError(options.code, `${options.what}: changed while being read`)
    }
    return new Uint8Array(buffer.buffer, buffer.byteOffset, total)
  } catch (err) {
    if (err instanceof OcipullError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw new OcipullError(options.code, `${options.what}: ${code ?? (err as Error).message}`, { cause: err })
  } finally {
    await handle?.close()
  }
}

function tooLarge(options: ReadResourceOptions, size: number | string): OcipullError {
  return new OcipullError(
    options.code,
    `${options.what}: ${size} bytes exceeds the limit of ${options.maxBytes}`,
  )
}
