import { DOCKER_HUB } from '../reference.js'

const HUB_ALIASES = new Set([DOCKER_HUB, 'index.docker.io', 'registry-1.docker.io'])

/** The server URL Docker uses for Docker Hub in auth files and credential helpers. */
export const DOCKER_HUB_SERVER_URL = 'https://index.docker.io/v1/'

/** Lowercases a registry host[:port] and folds Docker Hub's aliases into `docker.io`. */
export function normalizeRegistry(registry: string): string {
  const host = registry.toLowerCase()
  return HUB_ALIASES.has(host) ? DOCKER_HUB : host
}

/**
 * Normalizes an auth file key to `host[:port][/namespace...]`, the form lookups compare exactly.
 * A key with an http(s) scheme is Docker's form and keeps only its host (`https://index.docker.io/v1/`
 * → `docker.io`); a key without one may name a namespace or repository (containers auth.json).
 * Returns undefined for keys that name no host.
 */
export function normalizeAuthKey(key: string): string | undefined {
  let rest = key
  const scheme = /^https?:\/\//i.exec(rest)
  if (scheme !== null) {
    rest = rest.slice(scheme[0].length)
    const slash = rest.indexOf('/')
    if (slash >= 0) rest = rest.slice(0, slash)
  }
  let end = rest.length
  while (end > 0 && rest[end - 1] === '/') end--
  rest = rest.slice(0, end)
  const slash = rest.indexOf('/')
  const host = slash < 0 ? rest : rest.slice(0, slash)
  if (host === '' || /[\s@?#\\]/.test(host)) return undefined
  return normalizeRegistry(host) + (slash < 0 ? '' : rest.slice(slash))
}

/**
 * The keys to try for a request, most specific first: `host/a/b`, `host/a`, `host`.
 * The registry must already be normalized.
 */
export function lookupKeys(registry: string, repository: string | undefined): string[] {
  const keys = [registry]
  if (repository !== undefined && repository !== '') {
    let prefix = registry
    for (const part of repository.split('/')) {
      prefix = `${prefix}/${part}`
      keys.push(prefix)
    }
  }
  return keys.reverse()
}
