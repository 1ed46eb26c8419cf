import { gunzipSync } from 'node:zlib'
import { OcipullError } from '../errors.js'
import { base64Bytes } from '../kbs/base64.js'
import { MAX_INITDATA_BYTES } from './parse-initdata.js'

/** The pod annotation Kata passes Init-Data in. */
export const KATA_INITDATA_ANNOTATION = 'io.katacontainers.config.hypervisor.cc_init_data'

/**
 * Decodes the Kata annotation form of Init-Data, base64 (standard, padded) of gzip, to the raw
 * TOML bytes; the inflated size is capped at 1 MiB, so a gzip bomb stops early. Parse the result
 * with parseInitData. Fails with ERR_INITDATA_INVALID.
 */
export function decodeInitDataAnnotation(value: string): Buffer {
  const bad = (problem: string, cause?: unknown): never => {
    throw new OcipullError(
      'ERR_INITDATA_INVALID',
      `annotation ${KATA_INITDATA_ANNOTATION}: ${problem}`,
      cause === undefined ? undefined : { cause },
    )
  }
  const compact = value.trim()
  if (compact.length > (MAX_INITDATA_BYTES * 4) / 3 + 4) bad('too long')
  const gz = base64Bytes(compact)
  if (gz === undefined) return bad('not standard base64')
  if (gz[0] !== 0x1f || gz[1] !== 0x8b) bad('not gzip data')
  try {
    return gunzipSync(gz, { maxOutputLength: MAX_INITDATA_BYTES })
  } catch (err) {
    const e = err as { code?: string; message?: string }
    if (e.code === 'ERR_BUFFER_TOO_LARGE')
      return bad(`inflates to more than ${MAX_INITDATA_BYTES} bytes`, err)
    return bad(`corrupt gzip: ${e.message ?? String(err)}`, err)
  }
}
