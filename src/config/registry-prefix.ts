import { parseDigest } from '../digest.js'
import { parseReference, type Reference } from '../reference.js'

/**
 * The grammar and matching of registries.conf `prefix` and `location` values.
 *
 * A prefix is `host[:port]`, `host[:port]/path` or `host[:port]/path(:tag|@digest)`, or a
 * wildcard `*.example.com` (subdomains only, no port, no path). A location has the same form
 * without the wildcard, and may name a tag or digest only when its prefix does.
 *
 * Matching is anchored at the start of the reference (image-rs searches anywhere) and must end
 * at a separator: `example.com/foo` matches `example.com/foo/bar` and `example.com/foo:1`, never
 * `example.com/foobar` or `evil.com/example.com/foo`. A host-only prefix matches only that host
 * and port: `example.com` does not match `example.com:5000/x` (containers/image does, and calls
 * it unintended). Host names compare case-insensitively, paths exactly.
 */

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const TAG = /^[\w][\w.-]{0,127}$/
const LABEL = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/
const MAX_LENGTH = 1024

export interface ParsedPrefix {
  /** The text as written, trailing slashes removed. */
  text: string
  /** `*.example.com` */
  wildcard: boolean
  /** The host[:port] part (for a wildcard, the domain after `*.`). */
  host: string
  /** Repository path after the host, '' for a host-only prefix. */
  path: string
  /** A tag or digest suffix (`:1.0`, `@sha256:…`), '' when there is none. */
  suffix: string
}

/**
 * Parses a prefix or location; returns a problem description instead of throwing, so that the
 * caller can name the key. `kind` 'location' refuses wildcards.
 */
export function parsePrefix(input: string, kind: 'prefix' | 'location'): ParsedPrefix | string {
  const text = input.replace(/\/+$/, '')
  if (text === '') return 'empty'
  if (text.length > MAX_LENGTH) return `longer than ${MAX_LENGTH} characters`
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return 'URI schemes are not supported (write host[:port]/path)'
  if (/[\s\\]/.test(text)) return 'holds white space or a backslash'
  if (text.startsWith('*.')) {
    if (kind === 'location') return 'a location cannot be a wildcard'
    const domain = text.slice(2)
    if (/[/@:]/.test(domain)) return 'a wildcard prefix is *.domain, without port, path, tag or digest'
    if (domain === '' || !domain.split('.').every((l) => LABEL.test(l)))
      return 'not a valid *.domain wildcard'
    return { text, wildcard: true, host: domain, path: '', suffix: '' }
  }
  if (text.includes('*')) return 'a wildcard is allowed only as a leading "*."'
  const slash = text.indexOf('/')
  if (slash < 0) {
    if (text.includes('@')) return 'a digest needs a repository'
    const problem = checkHost(text)
    return problem ?? { text, wildcard: false, host: text, path: '', suffix: '' }
  }
  const host = text.slice(0, slash)
  const hostProblem = checkHost(host)
  if (hostProblem !== undefined) return hostProblem
  let rest = text.slice(slash + 1)
  let suffix = ''
  const at = rest.indexOf('@')
  if (at >= 0) {
    try {
      parseDigest(rest.slice(at + 1))
    } catch {
      return 'not a valid digest'
    }
    suffix = rest.slice(at)
    rest = rest.slice(0, at)
  }
  const colon = rest.indexOf(':', rest.lastIndexOf('/') + 1)
  if (colon >= 0) {
    if (!TAG.test(rest.slice(colon + 1))) return 'not a valid tag'
    suffix = rest.slice(colon) + suffix
    rest = rest.slice(0, colon)
  }
  if (rest === '' || !rest.split('/').every((c) => COMPONENT.test(c))) {
    return 'the repository path must be lowercase components (a-z, 0-9, separators . _ __ -)'
  }
  return { text, wildcard: false, host, path: rest, suffix }
}

/**
 * A registry host[:port] as the reference grammar reads it: it must look like a host to a
 * reference parser (a '.' or ':' or `localhost`), or a rewritten reference would silently land
 * on Docker Hub (`myregistry/app` is docker.io/myregistry/app).
 */
export function checkHost(host: string): string | undefined {
  let parsed: Reference
  try {
    parsed = parseReference(`${host}/x`)
  } catch {
    return `${JSON.stringify(clip(host))} is not a valid host[:port]`
  }
  if (parsed.registry !== host) {
    return host.toLowerCase() === 'index.docker.io' || host.toLowerCase() === 'registry-1.docker.io'
      ? `write docker.io for Docker Hub, not ${host}`
      : `${JSON.stringify(clip(host))} is not a registry host (it needs a '.', a ':port' or to be localhost)`
  }
  return undefined
}

/**
 * How many characters of `ref` (a reference as formatReference writes it) the prefix matches,
 * or -1. A wildcard matches up to the end of the domain, before any port.
 */
export function matchPrefix(ref: string, prefix: ParsedPrefix): number {
  const slash = ref.indexOf('/')
  const refHost = slash < 0 ? ref : ref.slice(0, slash)
  if (prefix.wildcard) {
    const hostname = stripPort(refHost).toLowerCase()
    const domain = `.${prefix.host.toLowerCase()}`
    if (hostname.length <= domain.length || !hostname.endsWith(domain)) return -1
    return hostname.length
  }
  if (refHost.toLowerCase() !== prefix.host.toLowerCase()) return -1
  const rest = `${prefix.path}${prefix.suffix}`
  if (rest === '') return refHost.length
  const refRest = ref.slice(refHost.length + 1)
  if (!refRest.startsWith(rest)) return -1
  if (refRest.length === rest.length) return ref.length
  const next = refRest[rest.length]
  return next === '/' || next === ':' || next === '@' ? refHost.length + 1 + rest.length : -1
}

function stripPort(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1)
  const colon = host.lastIndexOf(':')
  return colon < 0 ? host : host.slice(0, colon)
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}
