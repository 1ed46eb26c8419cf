import { parseToml } from './parse-toml.js'
import { checkHost, type ParsedPrefix, parsePrefix } from './registry-prefix.js'
import { checkShortName } from './short-names.js'
import { join, TableReader, type TableReaderOptions } from './table-reader.js'

export type PullFromMirror = 'all' | 'digest-only' | 'tag-only'
export type ShortNameMode = 'enforcing' | 'permissive' | 'disabled'

export interface MirrorRule {
  /** host[:port][/path] that replaces the rule's prefix. */
  location: string
  /** Plain HTTP, or TLS without verification, for this mirror's host. */
  insecure: boolean
  /** When this mirror is used; absent means `all` (or digest pulls only under mirror-by-digest-only). */
  pullFromMirror?: PullFromMirror
}

/** One `[[registry]]` table, checked and normalized. */
export interface RegistryRule {
  /** `host[:port][/path][:tag|@digest]` or `*.domain`. */
  prefix: string
  /** Where the prefix-rooted namespace really is; '' for a wildcard prefix without a location. */
  location: string
  insecure: boolean
  blocked: boolean
  mirrorByDigestOnly: boolean
  /** Tried in order before the location. */
  mirrors: MirrorRule[]
}

/** A containers-registries.conf(5) version 2 document, as plain data. */
export interface RegistriesConfig {
  /** host[:port] entries for short names; undefined when the file does not set it (docker.io). */
  unqualifiedSearchRegistries?: string[]
  /** undefined: `permissive`, as in containers/image. */
  shortNameMode?: ShortNameMode
  /** Short name → fully qualified name (no tag or digest). */
  aliases: Record<string, string>
  /** In file order; a repeated prefix is dropped (the first wins, as in containers/image). */
  registries: RegistryRule[]
}

export type ParseRegistriesConfOptions = TableReaderOptions

const TOP_KEYS = [
  'unqualified-search-registries',
  'registry',
  'short-name-mode',
  'aliases',
  'credential-helpers',
  'additional-layer-store-auth-helper',
]
const REGISTRY_KEYS = ['prefix', 'location', 'insecure', 'blocked', 'mirror', 'mirror-by-digest-only']
const MIRROR_KEYS = ['location', 'insecure', 'pull-from-mirror']
const PULL_FROM_MIRROR: readonly string[] = ['all', 'digest-only', 'tag-only']
const SHORT_NAME_MODES: readonly string[] = ['enforcing', 'permissive', 'disabled']

/**
 * Parses a registries.conf (v2) document. Bad TOML, wrong types, malformed prefixes or locations,
 * conflicting rules and v1 tables are ERR_CONFIG_FILE_INVALID naming the file and key; unknown
 * keys and settings ocipull does not act on (`credential-helpers`) are warnings, or errors when
 * `strict` is set.
 */
export function parseRegistriesConf(
  input: string | Uint8Array,
  options: ParseRegistriesConfOptions,
): RegistriesConfig {
  return registriesConfFromTable(parseToml(input, { what: options.what }), options)
}

/**
 * Checks an already parsed registries.conf table: the inline `registry_config` of an image-rs
 * config (TOML or JSON), or a parsed file.
 */
export function registriesConfFromTable(doc: unknown, options: ParseRegistriesConfOptions): RegistriesConfig {
  const r = new TableReader(options)
  const top = r.table(doc, '')
  if (top['registries'] !== undefined) {
    r.fail(
      'registries',
      'the version 1 format ([registries.search], …) is not supported; use [[registry]] tables',
    )
  }
  r.checkKeys(top, '', TOP_KEYS)

  const config: RegistriesConfig = { aliases: Object.create(null) as Record<string, string>, registries: [] }
  const search = r.optionalStringArray(top, 'unqualified-search-registries', '')
  if (search !== undefined) {
    config.unqualifiedSearchRegistries = search.map((entry, i) => {
      const host = entry.replace(/\/+$/, '')
      const problem = host.includes('/') ? 'want host[:port], without a path' : checkHost(host)
      if (problem !== undefined) r.fail(`unqualified-search-registries[${i}]`, problem)
      return host
    })
  }
  const mode = r.optionalString(top, 'short-name-mode', '')
  if (mode !== undefined && mode !== '') {
    if (!SHORT_NAME_MODES.includes(mode)) r.fail('short-name-mode', 'want enforcing, permissive or disabled')
    config.shortNameMode = mode as ShortNameMode
  }
  readAliases(r, top, config)
  const helpers = r.optionalStringArray(top, 'credential-helpers', '')
  if (helpers?.some((h) => h !== 'containers-auth.json')) {
    r.warn('credential-helpers', 'not supported (auth files and their credHelpers are used); ignored')
  }
  if (r.optionalString(top, 'additional-layer-store-auth-helper', '') !== undefined) {
    r.warn('additional-layer-store-auth-helper', 'not supported; ignored')
  }

  const seen = new Map<string, RegistryRule>()
  for (const [i, table] of (r.optionalTableArray(top, 'registry', '') ?? []).entries()) {
    const rule = readRule(r, table, `registry[${i}]`)
    if (seen.has(rule.prefix)) {
      r.warn(`registry[${i}]`, `prefix ${JSON.stringify(rule.prefix)} is repeated; the first table wins`)
      continue
    }
    seen.set(rule.prefix, rule)
    config.registries.push(rule)
  }
  checkConflicts(r, config.registries)
  return config
}

function readRule(r: TableReader, table: Record<string, unknown>, path: string): RegistryRule {
  if (table['pull-from-mirror'] !== undefined) {
    r.fail(join(path, 'pull-from-mirror'), 'allowed on [[registry.mirror]] tables only')
  }
  r.checkKeys(table, path, REGISTRY_KEYS)
  const prefixText = r.optionalString(table, 'prefix', path) ?? ''
  const locationText = r.optionalString(table, 'location', path) ?? ''
  if (prefixText === '' && locationText === '') r.fail(path, 'needs a prefix or a location')
  const location =
    locationText === '' ? undefined : checked(r, parsePrefix(locationText, 'location'), path, 'location')
  const prefix =
    prefixText === ''
      ? (location as ParsedPrefix)
      : checked(r, parsePrefix(prefixText, 'prefix'), path, 'prefix')
  // A prefix without a location keeps its references as they are (image-rs accepts this for any
  // prefix; containers/image only for wildcards).
  const rule: RegistryRule = {
    prefix: prefix.text,
    location: location?.text ?? (prefix.wildcard ? '' : prefix.text),
    insecure: r.optionalBoolean(table, 'insecure', path) ?? false,
    blocked: r.optionalBoolean(table, 'blocked', path) ?? false,
    mirrorByDigestOnly: r.optionalBoolean(table, 'mirror-by-digest-only', path) ?? false,
    mirrors: [],
  }
  if (location !== undefined) checkSuffix(r, prefix, location, join(path, 'location'))
  for (const [j, m] of (r.optionalTableArray(table, 'mirror', path) ?? []).entries()) {
    const at = `${path}.mirror[${j}]`
    r.checkKeys(m, at, MIRROR_KEYS)
    const text = r.optionalString(m, 'location', at) ?? ''
    if (text === '') r.fail(join(at, 'location'), 'missing')
    const mirrorLocation = checked(r, parsePrefix(text, 'location'), at, 'location')
    checkSuffix(r, prefix, mirrorLocation, join(at, 'location'))
    const mirror: MirrorRule = {
      location: mirrorLocation.text,
      insecure: r.optionalBoolean(m, 'insecure', at) ?? false,
    }
    const pull = r.optionalString(m, 'pull-from-mirror', at)
    if (pull !== undefined && pull !== '') {
      if (!PULL_FROM_MIRROR.includes(pull))
        r.fail(join(at, 'pull-from-mirror'), 'want all, digest-only or tag-only')
      if (rule.mirrorByDigestOnly) {
        r.fail(join(at, 'pull-from-mirror'), 'cannot be set when the registry sets mirror-by-digest-only')
      }
      mirror.pullFromMirror = pull as PullFromMirror
    }
    rule.mirrors.push(mirror)
  }
  return rule
}

function checked(r: TableReader, parsed: ParsedPrefix | string, path: string, key: string): ParsedPrefix {
  if (typeof parsed === 'string') r.fail(join(path, key), parsed)
  return parsed
}

/** `location + rest of the reference` must stay a reference: a tag or digest only replaces one. */
function checkSuffix(r: TableReader, prefix: ParsedPrefix, location: ParsedPrefix, path: string): void {
  if (location.suffix !== '' && prefix.suffix === '') {
    r.fail(path, 'may name a tag or digest only when the prefix names one')
  }
  if (prefix.suffix !== '' && location.suffix === '' && location.path === '') {
    r.fail(path, 'needs a repository when the prefix names a tag or digest')
  }
}

/** Two tables for one location must agree on insecure and blocked (containers/image refuses them too). */
function checkConflicts(r: TableReader, rules: RegistryRule[]): void {
  const byLocation = new Map<string, RegistryRule>()
  for (const [i, rule] of rules.entries()) {
    const key = rule.location === '' ? rule.prefix : rule.location
    const other = byLocation.get(key)
    if (other === undefined) {
      byLocation.set(key, rule)
      continue
    }
    for (const field of ['insecure', 'blocked'] as const) {
      if (other[field] !== rule[field]) {
        r.fail(
          `registry[${i}]`,
          `location ${JSON.stringify(key)} is defined more than once with conflicting ${field}`,
        )
      }
    }
  }
}

function readAliases(r: TableReader, top: Record<string, unknown>, config: RegistriesConfig): void {
  if (top['aliases'] === undefined || top['aliases'] === null) return
  const table = r.table(top['aliases'], 'aliases')
  for (const [name, value] of Object.entries(table)) {
    const at = join('aliases', name)
    if (typeof value !== 'string') r.fail(at, 'want a string')
    const problem = checkShortName(name)
    if (problem !== undefined) r.fail(at, `the alias name ${problem}`)
    if (value === '') continue // an empty value erases the alias
    const target = parsePrefix(value, 'location')
    if (typeof target === 'string') r.fail(at, target)
    if (target.path === '' || target.suffix !== '')
      r.fail(at, 'want a fully qualified name without tag or digest')
    config.aliases[name] = target.text
  }
}
