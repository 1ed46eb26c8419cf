import { checkDigest, type Digest, digestOf, shortDigest } from './digest.js'
import { OcipullError } from './errors.js'
import { FieldReader, parseJson } from './json-fields.js'
import { defined } from './manifest.js'

/** Image configs larger than this are refused (they are fetched whole into memory). */
export const DEFAULT_MAX_CONFIG_SIZE = 8 * 1024 * 1024

/** The execution parameters of an image config (`config` in the OCI spec, `container_config` is ignored). */
export interface ContainerConfig {
  User?: string
  ExposedPorts?: Record<string, object>
  Env?: string[]
  Entrypoint?: string[]
  Cmd?: string[]
  Volumes?: Record<string, object>
  WorkingDir?: string
  Labels?: Record<string, string>
  StopSignal?: string
}

export interface HistoryEntry {
  created?: string
  created_by?: string
  author?: string
  comment?: string
  empty_layer?: boolean
}

export interface ImageConfig {
  architecture: string
  os: string
  variant?: string
  'os.version'?: string
  'os.features'?: string[]
  created?: string
  author?: string
  config?: ContainerConfig
  rootfs: { type: 'layers'; diff_ids: Digest[] }
  history?: HistoryEntry[]
}

/**
 * Parses and validates an image config blob (OCI or Docker). Unknown fields are ignored;
 * known ones must have the right type. Throws ERR_CONFIG_INVALID naming the field.
 */
export function parseImageConfig(
  bytes: Uint8Array,
  what = `config ${shortDigest(digestOf(bytes))}`,
): ImageConfig {
  if (bytes.byteLength > DEFAULT_MAX_CONFIG_SIZE) {
    throw new OcipullError(
      'ERR_CONFIG_INVALID',
      `${what}: config of ${bytes.byteLength} bytes exceeds the limit of ${DEFAULT_MAX_CONFIG_SIZE}`,
    )
  }
  const r = new FieldReader('ERR_CONFIG_INVALID', what)
  const doc = r.object(parseJson(bytes, 'ERR_CONFIG_INVALID', what), '(document)')
  const rootfs = r.object(doc['rootfs'] ?? r.fail('rootfs', 'missing'), 'rootfs')
  if (r.string(rootfs, 'type', 'rootfs') !== 'layers')
    r.fail('rootfs.type', `want "layers", got ${JSON.stringify(rootfs['type'])}`)
  const diffIds = r.array(rootfs, 'diff_ids', 'rootfs').map((d, i) => {
    try {
      return checkDigest(d)
    } catch (err) {
      return r.fail(`rootfs.diff_ids[${i}]`, (err as Error).message.replace(/^digest: /, ''))
    }
  })
  const history = r.optionalArray(doc, 'history', '')?.map((h, i) => {
    const o = r.object(h, `history[${i}]`)
    const empty = o['empty_layer']
    if (empty !== undefined && typeof empty !== 'boolean')
      r.fail(`history[${i}].empty_layer`, 'want a boolean')
    return defined({
      created: r.optionalString(o, 'created', `history[${i}]`),
      created_by: r.optionalString(o, 'created_by', `history[${i}]`),
      author: r.optionalString(o, 'author', `history[${i}]`),
      comment: r.optionalString(o, 'comment', `history[${i}]`),
      empty_layer: empty as boolean | undefined,
    })
  })
  const c =
    doc['config'] === undefined || doc['config'] === null ? undefined : r.object(doc['config'], 'config')
  return {
    architecture: r.string(doc, 'architecture', ''),
    os: r.string(doc, 'os', ''),
    rootfs: { type: 'layers', diff_ids: diffIds },
    ...defined({
      variant: r.optionalString(doc, 'variant', ''),
      'os.version': r.optionalString(doc, 'os.version', ''),
      'os.features': r.optionalStringArray(doc, 'os.features', ''),
      created: r.optionalString(doc, 'created', ''),
      author: r.optionalString(doc, 'author', ''),
      config: c && parseContainerConfig(r, c),
      history,
    }),
  }
}

function parseContainerConfig(r: FieldReader, c: Record<string, unknown>): ContainerConfig {
  const set = (key: string): Record<string, object> | undefined => {
    if (c[key] === undefined || c[key] === null) return undefined
    const m = r.object(c[key], `config.${key}`)
    for (const [k, v] of Object.entries(m)) r.object(v, `config.${key}.${k}`)
    return m as Record<string, object>
  }
  return defined({
    User: r.optionalString(c, 'User', 'config'),
    ExposedPorts: set('ExposedPorts'),
    Env: r.optionalStringArray(c, 'Env', 'config'),
    Entrypoint: r.optionalStringArray(c, 'Entrypoint', 'config'),
    Cmd: r.optionalStringArray(c, 'Cmd', 'config'),
    Volumes: set('Volumes'),
    WorkingDir: r.optionalString(c, 'WorkingDir', 'config'),
    Labels: r.optionalStringMap(c, 'Labels', 'config'),
    StopSignal: r.optionalString(c, 'StopSignal', 'config'),
  })
}
