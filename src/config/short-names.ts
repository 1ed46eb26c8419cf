import { OcipullError } from '../errors.js'
import { DOCKER_HUB, parseReference, type Reference } from '../reference.js'
import type { RegistriesConfig } from './registries-conf.js'

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const TRANSPORTS = new Set([
  'oci',
  'oci-archive',
  'docker-archive',
  'dir',
  'containers-storage',
  'docker-daemon',
  'sif',
  'tarball',
])

/**
 * True when `text` (as typed: `busybox`, `ns/app:1`, `app@sha256:…`) names no registry: its
 * first path component has no '.' or ':' and is not `localhost`. Names with a transport
 * (`docker://busybox`) are not short names: as in podman, the transport's own parsing applies
 * (Docker Hub).
 */
export function isShortName(text: string): boolean {
  const colon = text.indexOf(':')
  if (text.startsWith('docker://') || (colon >= 0 && TRANSPORTS.has(text.slice(0, colon)))) return false
  const name = text.split('@')[0] ?? ''
  const slash = name.indexOf('/')
  if (slash < 0) return true
  const first = name.slice(0, slash)
  return !(
    first.includes('.') ||
    first.includes(':') ||
    first === 'localhost' ||
    first !== first.toLowerCase()
  )
}

/** Why `name` cannot be an alias name (a short name without tag or digest), or undefined. */
export function checkShortName(name: string): string | undefined {
  if (name === '' || name.length > 255) return 'is empty or too long'
  if (/[:@]/.test(name)) return 'must not name a tag or digest'
  if (!name.split('/').every((c) => COMPONENT.test(c))) return 'must be lowercase path components'
  if (!isShortName(name)) return 'must not name a registry'
  return undefined
}

/**
 * The fully qualified references a short name stands for, in the order to try them: its alias,
 * else one per `unqualified-search-registries` entry (docker.io when the file does not set
 * the list; `library/` is added for Docker Hub only). `ref` is the short name as the reference
 * parser normalized it (`busybox` → docker.io/library/busybox:latest).
 *
 * Throws ERR_REFERENCE_INVALID when the list is empty, or when `short-name-mode = "enforcing"`
 * and there is more than one registry: ocipull cannot prompt, and guessing is how short names
 * get spoofed.
 */
export function shortNameCandidates(ref: Reference, config: RegistriesConfig): Reference[] {
  const short =
    ref.registry === DOCKER_HUB && /^library\/[^/]+$/.test(ref.repository)
      ? ref.repository.slice('library/'.length)
      : ref.repository
  const suffix = `${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`
  const alias = Object.hasOwn(config.aliases, short) ? config.aliases[short] : undefined
  if (alias !== undefined) return [parseReference(`${alias}${suffix}`)]
  const registries = config.unqualifiedSearchRegistries ?? [DOCKER_HUB]
  if (registries.length === 0) {
    throw new OcipullError(
      'ERR_REFERENCE_INVALID',
      `short name ${JSON.stringify(short)}: no alias and no unqualified-search-registries; use a fully qualified name`,
    )
  }
  if ((config.shortNameMode ?? 'permissive') === 'enforcing' && registries.length > 1) {
    throw new OcipullError(
      'ERR_REFERENCE_INVALID',
      `short name ${JSON.stringify(short)} is ambiguous: short-name-mode is enforcing and ${registries.length} unqualified-search-registries are set (${registries.join(', ')}); use a fully qualified name or an alias`,
    )
  }
  return registries.map((registry) => parseReference(`${registry}/${short}${suffix}`))
}
