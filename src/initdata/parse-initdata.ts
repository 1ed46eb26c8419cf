import { OcipullError } from '../errors.js'
import { initDataDigest } from './initdata-digest.js'
import { parseToml, utf8Text } from './parse-toml.js'

export const InitDataAlgorithms = ['sha256', 'sha384', 'sha512'] as const
export type InitDataAlgorithm = (typeof InitDataAlgorithms)[number]

/** A CoCo Init-Data document (version 0.1.0). */
export interface InitData {
  version: '0.1.0'
  algorithm: InitDataAlgorithm
  /** The `data` table: file name → contents (`aa.toml`, `cdh.toml`, `policy.rego`, …). */
  data: Record<string, string>
  /** The document exactly as delivered; the digest covers these bytes, and the KBS gets this text. */
  text: string
  /** `algorithm` over the raw bytes (32, 48 or 64 bytes). */
  digest: Buffer
}

/** Init-Data documents are a few KiB (policies included); refuse anything absurd before parsing. */
export const MAX_INITDATA_BYTES = 1024 * 1024

/**
 * Parses Init-Data TOML: `version = "0.1.0"`, `algorithm` sha256/sha384/sha512 (the serde names;
 * IANA's `sha-384` and `sm3` are refused), and a `data` table of strings; any other top-level key
 * is refused too. The digest is computed over the raw bytes, never over a re-encoding.
 * Fails with ERR_INITDATA_INVALID naming `what` (a file name, "annotation", …).
 */
export function parseInitData(bytes: Uint8Array | string, what = 'initdata'): InitData {
  const raw = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes)
  const bad = (problem: string): never => {
    throw new OcipullError('ERR_INITDATA_INVALID', `${what}: ${problem}`)
  }
  if (raw.length > MAX_INITDATA_BYTES) bad(`larger than ${MAX_INITDATA_BYTES} bytes`)
  const text = utf8Text(raw, 'ERR_INITDATA_INVALID', what)
  const doc = parseToml(text, 'ERR_INITDATA_INVALID', what)
  for (const key of Object.keys(doc)) {
    if (key !== 'version' && key !== 'algorithm' && key !== 'data') bad(`unknown key ${JSON.stringify(key)}`)
  }
  if (doc['version'] !== '0.1.0') bad(`version: want "0.1.0", got ${JSON.stringify(doc['version'] ?? null)}`)
  const algorithm = doc['algorithm']
  if (typeof algorithm !== 'string' || !(InitDataAlgorithms as readonly string[]).includes(algorithm)) {
    bad(`algorithm: want sha256, sha384 or sha512, got ${JSON.stringify(algorithm ?? null)}`)
  }
  const table = doc['data']
  if (typeof table !== 'object' || table === null || Array.isArray(table) || table instanceof Date) {
    bad('data: want a table')
  }
  const data: Record<string, string> = Object.create(null)
  for (const [name, value] of Object.entries(table as Record<string, unknown>)) {
    if (typeof value !== 'string') bad(`data.${JSON.stringify(name)}: want a string`)
    data[name] = value as string
  }
  const alg = algorithm as InitDataAlgorithm
  return { version: '0.1.0', algorithm: alg, data, text, digest: initDataDigest(raw, alg) }
}
