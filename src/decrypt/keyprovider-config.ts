import { readFile } from 'node:fs/promises'
import { OcipullError } from '../errors.js'
import { describe, FieldReader, parseJson } from '../json-fields.js'

/**
 * One key provider of an ocicrypt.conf. Only `cmd` providers are run; `grpc`, `ttrpc` and
 * `native` ones are recognised and reported as unsupported when a layer needs them.
 */
export type KeyProviderEntry =
  | { kind: 'cmd'; path: string; args: string[] }
  | { kind: 'grpc' | 'ttrpc' | 'native'; address: string }

/** Provider name → how to reach it. Provider `X` owns `org.opencontainers.image.enc.keys.provider.X`. */
export type KeyProviders = ReadonlyMap<string, KeyProviderEntry>

const MAX_CONFIG = 1 << 20

/**
 * Parses an ocicrypt.conf: `{"key-providers": {NAME: {"cmd": {"path": P, "args": [...]}} |
 * {"grpc": "host:port"} | {"ttrpc": "unix://…"} | {"native": "…"}}}`. ERR_CONFIG_FILE_INVALID.
 */
export function parseKeyProviderConfig(bytes: Uint8Array, what: string): KeyProviders {
  const code = 'ERR_CONFIG_FILE_INVALID'
  const r = new FieldReader(code, what)
  const o = r.object(parseJson(bytes, code, what), '')
  const providers = new Map<string, KeyProviderEntry>()
  const all = o['key-providers']
  if (all === undefined || all === null) return providers
  for (const [name, value] of Object.entries(r.object(all, 'key-providers'))) {
    const path = `key-providers.${name}`
    const p = r.object(value, path)
    if (p['cmd'] !== undefined && p['cmd'] !== null) {
      const cmd = r.object(p['cmd'], `${path}.cmd`)
      providers.set(name, {
        kind: 'cmd',
        path: r.string(cmd, 'path', `${path}.cmd`),
        args: r.optionalStringArray(cmd, 'args', `${path}.cmd`) ?? [],
      })
      continue
    }
    const other = (['grpc', 'ttrpc', 'native'] as const).find((k) => typeof p[k] === 'string')
    if (other === undefined) return r.fail(path, `want cmd, grpc, ttrpc or native, got ${describe(p)}`)
    providers.set(name, { kind: other, address: p[other] as string })
  }
  return providers
}

/**
 * Reads the ocicrypt.conf at `path`, or at `$OCICRYPT_KEYPROVIDER_CONFIG` from `env`; returns an
 * empty map when neither is set (as Go ocicrypt registers no providers then).
 */
export async function loadKeyProviderConfig(
  options: { path?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<KeyProviders> {
  const path = options.path ?? (options.env ?? process.env)['OCICRYPT_KEYPROVIDER_CONFIG']
  if (path === undefined || path === '') return new Map()
  const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => {
    throw new OcipullError('ERR_CONFIG_FILE_INVALID', `ocicrypt config ${path}: ${err.code ?? err.message}`, {
      cause: err,
    })
  })
  if (bytes.length > MAX_CONFIG) {
    throw new OcipullError(
      'ERR_CONFIG_FILE_INVALID',
      `ocicrypt config ${path}: larger than ${MAX_CONFIG} bytes`,
    )
  }
  return parseKeyProviderConfig(bytes, `ocicrypt config ${path}`)
}
