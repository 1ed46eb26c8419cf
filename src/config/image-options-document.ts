import { parseCdhConfig } from '../initdata/cdh-config.js'
import { parseInitData } from '../initdata/parse-initdata.js'
import { type ImageOptions, imageOptionsFromTable } from './image-options.js'
import { decodeDocument, parseJsonDocument, parseToml } from './parse-toml.js'
import type { TableReaderOptions } from './table-reader.js'

/** What a configuration document turned out to be. */
export type ImageOptionsFormat = 'image-rs-json' | 'cdh-toml' | 'init-data' | 'image-toml'

export interface ImageOptionsDocument {
  format: ImageOptionsFormat
  options: ImageOptions
}

export type ImageOptionsDocumentOptions = TableReaderOptions

/** Top-level keys of cdh.toml besides `[image]`; their presence marks a cdh.toml without one. */
const CDH_KEYS = ['socket', 'kbc', 'credentials', 'aa', 'log', 'skip_sealed_secret_verification']

/**
 * Reads image options from any of the files users already have, telling them apart by shape:
 * - JSON (starts with `{`): an image-rs `config.json` (the `[image]` keys at the top level);
 * - TOML with `version` and a `data` table: Init-Data, whose `data."cdh.toml"` is read;
 * - TOML with an `[image]` table or CDH's own keys (`[kbc]`, `socket`, …): a cdh.toml;
 * - any other TOML: the `[image]` keys at the top level.
 * A cdh.toml or Init-Data without image settings gives empty options (and a warning).
 * Fails with ERR_CONFIG_FILE_INVALID, or ERR_INITDATA_INVALID for a malformed Init-Data document.
 */
export function parseImageOptionsDocument(
  input: string | Uint8Array,
  options: ImageOptionsDocumentOptions,
): ImageOptionsDocument {
  const text = decodeDocument(input, { what: options.what })
  if (text.trimStart().startsWith('{')) {
    return {
      format: 'image-rs-json',
      options: imageOptionsFromTable(parseJsonDocument(text, options), options),
    }
  }
  const doc = parseToml(text, options)
  const isTable = (v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date)
  if (doc['version'] !== undefined && isTable(doc['data'])) {
    return { format: 'init-data', options: imageOptionsFromInitData(text, options) }
  }
  if (doc['image'] !== undefined || CDH_KEYS.some((k) => doc[k] !== undefined)) {
    return { format: 'cdh-toml', options: imageOptionsFromCdhToml(text, options) }
  }
  return { format: 'image-toml', options: imageOptionsFromTable(doc, options) }
}

/** The `[image]` table of a cdh.toml (the rest of the file is CDH's, checked by parseCdhConfig). */
export function imageOptionsFromCdhToml(text: string, options: ImageOptionsDocumentOptions): ImageOptions {
  const cdh = parseCdhConfig(text, { what: options.what })
  if (cdh.image === undefined) {
    options.onWarning?.(`${options.what}: no [image] table; image-rs defaults apply`)
    return {}
  }
  return imageOptionsFromTable(cdh.image, { ...options, what: `${options.what}: image` })
}

/**
 * The image options of an Init-Data document: its `data."cdh.toml"` entry's `[image]` table.
 * The document itself is checked by parseInitData (version, algorithm, data).
 */
export function imageOptionsFromInitData(
  input: string | Uint8Array,
  options: ImageOptionsDocumentOptions,
): ImageOptions {
  const initData = parseInitData(input, options.what)
  const cdh = initData.data['cdh.toml']
  if (cdh === undefined) {
    options.onWarning?.(`${options.what}: Init-Data has no data."cdh.toml"; image-rs defaults apply`)
    return {}
  }
  return imageOptionsFromCdhToml(cdh, { ...options, what: `${options.what}: data."cdh.toml"` })
}
