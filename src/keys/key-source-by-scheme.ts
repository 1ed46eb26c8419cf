import { OcipullError } from '../errors.js'
import { fileKeySource } from './file-key-source.js'
import type { KeySource } from './key-source.js'

export interface KeySourcesByScheme {
  /** Serves `kbs://` and `kbs+<plugin>://`: a KBS client, offline-fs maps or a PKCS#11 token. */
  kbs?: KeySource
  /** Serves `file://` (default `fileKeySource()`); `null` refuses file URIs. */
  file?: KeySource | null
}

/**
 * One KeySource that hands each URI to the source for its scheme. A `kbs` URI without a KBS
 * source is ERR_KEY_UNAVAILABLE (nothing configured can fetch it); a scheme nobody serves is
 * ERR_RESOURCE_URI_INVALID.
 */
export function keySourceByScheme(sources: KeySourcesByScheme): KeySource {
  const file = sources.file === undefined ? fileKeySource() : sources.file
  return {
    getResource(uri, options) {
      const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri)?.[1]?.toLowerCase()
      if (scheme === 'kbs' || scheme?.startsWith('kbs+')) {
        if (sources.kbs === undefined) {
          return Promise.reject(
            new OcipullError(
              'ERR_KEY_UNAVAILABLE',
              `${uri.slice(0, 200)}: no KBS or offline key source is configured`,
            ),
          )
        }
        return sources.kbs.getResource(uri, options)
      }
      if (scheme === 'file' && file !== null) return file.getResource(uri, options)
      return Promise.reject(
        new OcipullError(
          'ERR_RESOURCE_URI_INVALID',
          `resource uri ${JSON.stringify(uri.slice(0, 200))}: want ${file === null ? 'kbs://' : 'kbs:// or file://'}`,
        ),
      )
    },
  }
}
