import type { ErrorCode } from '../errors.js'
import { FieldReader } from '../json-fields.js'
import { type TeeKeyAlgorithm, TeeKeyAlgorithms } from '../kbs/tee-key.js'
import { parseToml } from './parse-toml.js'

/** What ocipull reads of the attestation agent's aa.toml: `[token_configs.kbs]`. */
export interface AaConfig {
  kbs?: {
    /** The KBS base URL. */
    url: string
    /** PEM of the KBS's HTTPS root. */
    cert?: string
    teeKeyAlgorithm?: TeeKeyAlgorithm
  }
}

export interface ConfigParseOptions {
  /** Names the file in messages, e.g. `initdata data."aa.toml"`. */
  what: string
  /** The error code (ERR_CONFIG_FILE_INVALID for a file, ERR_INITDATA_INVALID inside Init-Data). */
  code?: ErrorCode
}

/**
 * Parses aa.toml: `[token_configs.kbs] url`, `cert`, `tee_key_algorithm`; other settings
 * (`[token_configs.coco_as]`, `[eventlog_config]`, `[log]`) are ignored. Checked: types, an
 * http(s) URL. Fails with `code` (default ERR_CONFIG_FILE_INVALID).
 */
export function parseAaConfig(text: string, options: ConfigParseOptions): AaConfig {
  const code = options.code ?? 'ERR_CONFIG_FILE_INVALID'
  const r = new FieldReader(code, options.what)
  const doc = r.object(parseToml(text, code, options.what), '')
  if (doc['token_configs'] === undefined) return {}
  const tokenConfigs = r.object(doc['token_configs'], 'token_configs')
  if (tokenConfigs['kbs'] === undefined) return {}
  const kbs = r.object(tokenConfigs['kbs'], 'token_configs.kbs')
  const url = kbsUrlField(r, kbs, 'token_configs.kbs')
  const cert = r.optionalString(kbs, 'cert', 'token_configs.kbs')
  const alg = r.optionalString(kbs, 'tee_key_algorithm', 'token_configs.kbs')
  if (alg !== undefined && !(TeeKeyAlgorithms as readonly string[]).includes(alg)) {
    r.fail('token_configs.kbs.tee_key_algorithm', `want one of ${TeeKeyAlgorithms.join(', ')}`)
  }
  return {
    kbs: {
      url,
      ...(cert === undefined || cert === '' ? {} : { cert }),
      ...(alg === undefined ? {} : { teeKeyAlgorithm: alg as TeeKeyAlgorithm }),
    },
  }
}

/** A required `url` that is an http(s) URL without credentials. */
export function kbsUrlField(r: FieldReader, o: Record<string, unknown>, path: string): string {
  const url = r.string(o, 'url', path)
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {}
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    r.fail(`${path}.url`, 'want an http:// or https:// URL')
  }
  if (parsed.username !== '' || parsed.password !== '') r.fail(`${path}.url`, 'credentials are not allowed')
  return url
}
