import { fileURLToPath } from 'node:url'
import { abortError, OcipullError } from '../errors.js'
import { readCappedFile } from '../fs/read-capped-file.js'
import type { KeySource } from '../keys/key-source.js'
import { configError, DEFAULT_MAX_CONFIG_BYTES } from './parse-toml.js'

export interface ReadConfigResourceOptions {
  /** Serves every URI when given (the KBS for `kbs:///…`, and `file://` too). */
  keySource?: KeySource | undefined
  /** Names the setting in errors, e.g. `cdh.toml: registry_configuration_uri`. */
  what: string
  maxBytes?: number
  signal?: AbortSignal | undefined
}

/**
 * Fetches what a `*_uri` setting names. With a KeySource, every URI goes through it (its errors
 * pass through: ERR_KEY_UNAVAILABLE, ERR_KBS_DENIED, ERR_RESOURCE_URI_INVALID). Without one, only
 * `file:///path` and absolute paths (image-rs reads a URI without a scheme as a file) can be
 * read; `kbs:` URIs are ERR_RESOURCE_URI_INVALID. Files are read with a size cap (default
 * 1 MiB), must be regular files, and are opened non-blocking so that a FIFO cannot hang us.
 * File problems are ERR_CONFIG_FILE_INVALID naming the setting and the path.
 */
export async function readConfigResource(
  uri: string,
  options: ReadConfigResourceOptions,
): Promise<Uint8Array> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_CONFIG_BYTES
  const what = `${options.what} ${uri.startsWith('/') || /^file:/i.test(uri) ? uri : redactUri(uri)}`
  if (options.signal?.aborted) throw abortError(options.signal, what)
  if (options.keySource !== undefined && !uri.startsWith('/')) {
    const bytes = await options.keySource.getResource(
      uri,
      options.signal === undefined ? {} : { signal: options.signal },
    )
    if (bytes.byteLength > maxBytes) throw configError(what, `larger than ${maxBytes} bytes`)
    return bytes
  }
  let path = uri
  if (!uri.startsWith('/')) {
    if (!/^file:/i.test(uri)) {
      throw new OcipullError(
        'ERR_RESOURCE_URI_INVALID',
        `${what}: no key source is configured to fetch it (only file:///path can be read without one)`,
      )
    }
    try {
      path = fileURLToPath(uri)
    } catch (err) {
      throw new OcipullError('ERR_RESOURCE_URI_INVALID', `${what}: not a local file URI`, { cause: err })
    }
  }
  return await readCappedFile(path, maxBytes, (problem, cause) => {
    throw configError(what, problem, cause)
  })
}

/** A URI for messages: no user information, no query (KBS URIs may carry parameters). */
function redactUri(uri: string): string {
  const text = uri.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1').replace(/\?.*$/, '?…')
  return text.length > 200 ? `${text.slice(0, 197)}...` : text
}
