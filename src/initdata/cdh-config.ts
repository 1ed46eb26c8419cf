import { FieldReader } from '../json-fields.js'
import { type ConfigParseOptions, kbsUrlField } from './aa-config.js'
import { parseToml } from './parse-toml.js'

/** What ocipull reads of the confidential data hub's cdh.toml. */
export interface CdhConfig {
  /** `[kbc]`: `name` is `cc_kbc` (a KBS over RCAR) or `offline_fs_kbc` (local JSON maps). */
  kbc?: { name: string; url?: string; kbsCert?: string }
  /** `[[credentials]]`: resources to fetch at start and where CDH puts them. */
  credentials: { resourceUri: string; path: string }[]
  /** The `[image]` table (image-rs ImageConfig) as parsed; the configuration loader maps it. */
  image?: Record<string, unknown>
}

/**
 * Parses cdh.toml: `[kbc] name, url, kbs_cert`, `[[credentials]] resource_uri, path`, and returns
 * `[image]` unmapped. `url` is required for `cc_kbc`. Other settings (`socket`, `[aa]`, `[log]`)
 * are ignored. Fails with `code` (default ERR_CONFIG_FILE_INVALID).
 */
export function parseCdhConfig(text: string, options: ConfigParseOptions): CdhConfig {
  const code = options.code ?? 'ERR_CONFIG_FILE_INVALID'
  const r = new FieldReader(code, options.what)
  const doc = r.object(parseToml(text, code, options.what), '')
  const out: CdhConfig = { credentials: [] }
  if (doc['kbc'] !== undefined) {
    const kbc = r.object(doc['kbc'], 'kbc')
    const name = r.string(kbc, 'name', 'kbc')
    const url = name === 'cc_kbc' || kbc['url'] !== undefined ? kbsUrlField(r, kbc, 'kbc') : undefined
    const kbsCert = r.optionalString(kbc, 'kbs_cert', 'kbc')
    out.kbc = {
      name,
      ...(url === undefined ? {} : { url }),
      ...(kbsCert === undefined || kbsCert === '' ? {} : { kbsCert }),
    }
  }
  const credentials = r.optionalArray(doc, 'credentials', '') ?? []
  credentials.forEach((c, i) => {
    const o = r.object(c, `credentials[${i}]`)
    out.credentials.push({
      resourceUri: r.string(o, 'resource_uri', `credentials[${i}]`),
      path: r.string(o, 'path', `credentials[${i}]`),
    })
  })
  if (doc['image'] !== undefined) out.image = r.object(doc['image'], 'image')
  return out
}
