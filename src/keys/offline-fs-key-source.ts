import { readFile } from 'node:fs/promises'
import { abortError, OcipullError } from '../errors.js'
import { FieldReader, parseJson } from '../json-fields.js'
import { base64Bytes } from '../kbs/base64.js'
import { resourceKey } from '../kbs/resource-uri.js'
import type { KeySource } from './key-source.js'

/** The files the attestation agent's offline_fs_kbc loads, in order (later entries win). */
export const OFFLINE_FS_KBC_FILES = [
  '/etc/aa-offline_fs_kbc-keys.json',
  '/etc/aa-offline_fs_kbc-resources.json',
]

export interface OfflineFsKeySourceOptions {
  /** The JSON maps to load; default OFFLINE_FS_KBC_FILES plus OFFLINE_FS_KBC_EXTRA_FILE_PATH. */
  files?: string[]
  /** Where OFFLINE_FS_KBC_EXTRA_FILE_PATH (comma-separated paths) is read from (default process.env). */
  env?: NodeJS.ProcessEnv
  /** Missing files and duplicate keys are reported here, not thrown. */
  onWarning?: (message: string) => void
}

const MAX_MAP_BYTES = 16 * 1024 * 1024

/**
 * A KeySource for `kbs:///repo/type/tag` without a network, like offline_fs_kbc: JSON maps
 * `{"repo/type/tag": "<base64 of the bytes>"}`, loaded once on first use. A missing file is
 * skipped with a warning; a malformed one (JSON, base64, over 16 MiB) fails the lookup with
 * ERR_CONFIG_FILE_INVALID; a key no map has is ERR_KEY_UNAVAILABLE. The URI's host is ignored.
 */
export function offlineFsKeySource(options: OfflineFsKeySourceOptions = {}): KeySource {
  const env = options.env ?? process.env
  const extra = (env['OFFLINE_FS_KBC_EXTRA_FILE_PATH'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
  const files = options.files ?? [...OFFLINE_FS_KBC_FILES, ...extra]
  const warn = options.onWarning ?? (() => {})
  let loaded: Promise<Map<string, Buffer>> | undefined

  async function load(): Promise<Map<string, Buffer>> {
    const map = new Map<string, Buffer>()
    for (const file of files) {
      let bytes: Buffer
      try {
        bytes = await readFile(file)
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOENT') {
          warn(`offline-fs key map ${file}: not found, skipped`)
          continue
        }
        throw new OcipullError('ERR_KEY_UNAVAILABLE', `offline-fs key map ${file}: ${String(err)}`, {
          cause: err,
        })
      }
      for (const [key, value] of parseKeyMap(bytes, file)) {
        if (map.has(key)) warn(`offline-fs key map ${file}: ${key} overrides an earlier entry`)
        map.set(key, value)
      }
    }
    return map
  }

  return {
    async getResource(uri, opts = {}) {
      const key = resourceKey(uri, 'offline-fs')
      if (opts.signal?.aborted) throw abortError(opts.signal, `offline-fs ${key}`)
      loaded ??= load()
      const p = loaded
      const map = await p.catch((err: unknown) => {
        if (loaded === p) loaded = undefined
        throw err
      })
      const bytes = map.get(key)
      if (bytes === undefined) {
        throw new OcipullError(
          'ERR_KEY_UNAVAILABLE',
          `offline-fs keys: no entry ${key} in ${files.join(', ')}`,
        )
      }
      return Uint8Array.from(bytes)
    },
  }
}

/** Parses one `{"repo/type/tag": base64}` map strictly. */
export function parseKeyMap(bytes: Uint8Array, file: string): Map<string, Buffer> {
  const what = `offline-fs key map ${file}`
  if (bytes.length > MAX_MAP_BYTES) {
    throw new OcipullError('ERR_CONFIG_FILE_INVALID', `${what}: larger than ${MAX_MAP_BYTES} bytes`)
  }
  const r = new FieldReader('ERR_CONFIG_FILE_INVALID', what)
  const o = r.object(parseJson(bytes, 'ERR_CONFIG_FILE_INVALID', what), '')
  const map = new Map<string, Buffer>()
  for (const [key, value] of Object.entries(o)) {
    if (typeof value !== 'string') r.fail(JSON.stringify(key), 'want a base64 string')
    const decoded = base64Bytes(value as string)
    if (decoded === undefined) r.fail(JSON.stringify(key), 'not standard base64')
    map.set(key, decoded as Buffer)
  }
  return map
}
