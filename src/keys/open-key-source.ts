import { createKbsClient, type KbsClientOptions } from '../kbs/kbs-client.js'
import { type FileKeySourceOptions, fileKeySource } from './file-key-source.js'
import type { KeySource } from './key-source.js'
import { keySourceByScheme } from './key-source-by-scheme.js'
import { type OfflineFsKeySourceOptions, offlineFsKeySource } from './offline-fs-key-source.js'
import { type Pkcs11KeySourceOptions, pkcs11KeySource } from './pkcs11-key-source.js'

/** Where `kbs://` URIs are served from: at most one of `kbs`, `offlineFs`, `pkcs11`. */
export interface OpenKeySourceOptions {
  /** A KBS over RCAR (cdh.toml `cc_kbc`). */
  kbs?: KbsClientOptions
  /** Local JSON maps (cdh.toml `offline_fs_kbc`). */
  offlineFs?: OfflineFsKeySourceOptions
  /** Generic secrets on a PKCS#11 token. */
  pkcs11?: Pkcs11KeySourceOptions
  /** `file://` URIs (served by default); `false` refuses them. */
  file?: FileKeySourceOptions | false
}

/** A KeySource that owns resources (the KBS client's agents and key cache): close it when done. */
export interface OpenedKeySource extends KeySource {
  close(): Promise<void>
}

/**
 * Builds the key source a pull uses from plain options: `kbs://` to the one configured backend,
 * `file://` to local files. Throws TypeError when more than one `kbs://` backend is given.
 */
export function openKeySource(options: OpenKeySourceOptions): OpenedKeySource {
  const backends = [options.kbs, options.offlineFs, options.pkcs11].filter((b) => b !== undefined)
  if (backends.length > 1) throw new TypeError('openKeySource: give at most one of kbs, offlineFs, pkcs11')
  const client = options.kbs === undefined ? undefined : createKbsClient(options.kbs)
  const kbs =
    client ??
    (options.offlineFs !== undefined
      ? offlineFsKeySource(options.offlineFs)
      : options.pkcs11 !== undefined
        ? pkcs11KeySource(options.pkcs11)
        : undefined)
  const source = keySourceByScheme({
    ...(kbs === undefined ? {} : { kbs }),
    file: options.file === false ? null : fileKeySource(options.file ?? {}),
  })
  return {
    getResource: (uri, o) => source.getResource(uri, o),
    close: async () => client?.close(),
  }
}
