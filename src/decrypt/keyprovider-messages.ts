import { OcipullError } from '../errors.js'
import { describe, FieldReader, parseJson } from '../json-fields.js'
import { decodeBase64 } from './strict-base64.js'

/**
 * The keyprovider protocol's JSON (containers/ocicrypt `KeyProviderKeyWrapProtocolInput` and
 * `…Output`), spoken over a `cmd` provider's stdin and stdout. Go encodes `[]byte` as a base64
 * string; the Rust providers (CoCo's CDH, coco_keyprovider) write `Vec<u8>` as an array of
 * numbers. Both are accepted on input; what we send is Go's form.
 */

/**
 * The `keyunwrap` request for one wrapped key: `annotation` is the decoded annotation entry,
 * `parameters` the DecryptConfig parameters (`provider:NAME:VALUE` keys in ocicrypt's CLI).
 */
export function encodeKeyUnwrapInput(
  annotation: Uint8Array,
  parameters: Readonly<Record<string, readonly Uint8Array[]>> = {},
): string {
  const params: Record<string, string[]> = {}
  for (const [name, values] of Object.entries(parameters)) {
    params[name] = values.map((v) => Buffer.from(v).toString('base64'))
  }
  return JSON.stringify({
    op: 'keyunwrap',
    keywrapparams: { ec: null, optsdata: null },
    keyunwrapparams: { dc: { Parameters: params }, annotation: Buffer.from(annotation).toString('base64') },
  })
}

/** A provider's answer: `keywrapresults.annotation` and/or `keyunwrapresults.optsdata`. */
export interface KeyProviderOutput {
  annotation?: Buffer
  optsdata?: Buffer
}

/** Parses a provider's output in either byte encoding. ERR_KEY_UNAVAILABLE names the provider. */
export function decodeKeyProviderOutput(bytes: Uint8Array, what: string): KeyProviderOutput {
  const code = 'ERR_KEY_UNAVAILABLE'
  const r = new FieldReader(code, what)
  const o = r.object(parseJson(bytes, code, what), '')
  const out: KeyProviderOutput = {}
  const wrap = o['keywrapresults']
  if (wrap !== undefined && wrap !== null) {
    const annotation = protocolBytes(
      r.object(wrap, 'keywrapresults')['annotation'],
      r,
      'keywrapresults.annotation',
    )
    if (annotation !== undefined) out.annotation = annotation
  }
  const unwrap = o['keyunwrapresults']
  if (unwrap !== undefined && unwrap !== null) {
    const optsdata = protocolBytes(
      r.object(unwrap, 'keyunwrapresults')['optsdata'],
      r,
      'keyunwrapresults.optsdata',
    )
    if (optsdata !== undefined) out.optsdata = optsdata
  }
  return out
}

/** `[]byte` / `Vec<u8>`: a base64 string, an array of integers 0–255, or null. */
function protocolBytes(value: unknown, r: FieldReader, path: string): Buffer | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value === 'string') return decodeBase64(value, r.code, `${r.what}: ${path}`)
  if (Array.isArray(value)) {
    const out = Buffer.alloc(value.length)
    value.forEach((v, i) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) {
        r.fail(`${path}[${i}]`, `want a byte, got ${describe(v)}`)
      }
      out[i] = v
    })
    return out
  }
  throw new OcipullError(
    r.code,
    `${r.what}: ${path}: want base64 or an array of bytes, got ${describe(value)}`,
  )
}
