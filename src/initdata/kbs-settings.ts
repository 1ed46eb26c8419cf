import { OcipullError } from '../errors.js'
import type { TeeKeyAlgorithm } from '../kbs/tee-key.js'
import { parseAaConfig } from './aa-config.js'
import { type CdhConfig, parseCdhConfig } from './cdh-config.js'
import type { InitData } from './parse-initdata.js'

/** How to reach the KBS, as Init-Data (or explicit options) says. */
export interface KbsSettings {
  /** `cc_kbc` (RCAR to `url`) or `offline_fs_kbc` (no network), from cdh.toml; `cc_kbc` by default. */
  kbc: string
  url?: string
  cert?: string
  teeKeyAlgorithm?: TeeKeyAlgorithm
  /** cdh.toml's `[image]` table, unmapped. */
  image?: Record<string, unknown>
}

/**
 * Reads the KBS settings from Init-Data's `aa.toml` and `cdh.toml`. The attestation agent's
 * `[token_configs.kbs]` (where RCAR happens) wins over cdh.toml's `[kbc]`; both are usually the
 * same URL. Fails with ERR_INITDATA_INVALID for a malformed aa.toml or cdh.toml.
 */
export function kbsSettingsFromInitData(initData: InitData): KbsSettings {
  const aaText = initData.data['aa.toml']
  const cdhText = initData.data['cdh.toml']
  const aa =
    aaText === undefined
      ? {}
      : parseAaConfig(aaText, { what: 'initdata data."aa.toml"', code: 'ERR_INITDATA_INVALID' })
  const cdh: CdhConfig | undefined =
    cdhText === undefined
      ? undefined
      : parseCdhConfig(cdhText, { what: 'initdata data."cdh.toml"', code: 'ERR_INITDATA_INVALID' })
  const url = aa.kbs?.url ?? cdh?.kbc?.url
  const cert = aa.kbs?.cert ?? cdh?.kbc?.kbsCert
  return {
    kbc: cdh?.kbc?.name ?? 'cc_kbc',
    ...(url === undefined ? {} : { url }),
    ...(cert === undefined ? {} : { cert }),
    ...(aa.kbs?.teeKeyAlgorithm === undefined ? {} : { teeKeyAlgorithm: aa.kbs.teeKeyAlgorithm }),
    ...(cdh?.image === undefined ? {} : { image: cdh.image }),
  }
}

/** The KBS URL of `settings`, or ERR_INITDATA_INVALID saying where it should have been. */
export function requireKbsUrl(settings: KbsSettings, what: string): string {
  if (settings.url === undefined) {
    throw new OcipullError(
      'ERR_INITDATA_INVALID',
      `${what}: no KBS URL (want aa.toml [token_configs.kbs] url or cdh.toml [kbc] url)`,
    )
  }
  return settings.url
}
