import { type Digest, parseDigest } from './digest.js'
import { OcipullError } from './errors.js'

/** A parsed, normalized registry reference such as `docker.io/library/busybox:latest`. */
export interface Reference {
  /** Registry host with optional port, e.g. `docker.io`, `localhost:5000`, `[::1]:5000`. */
  registry: string
  /** Repository path, e.g. `library/busybox`. */
  repository: string
  /** Tag, when the reference names one (`latest` is filled in when neither tag nor digest is given). */
  tag?: string
  /** Digest, when the reference pins one. It wins over the tag when fetching. */
  digest?: Digest
}

export const DOCKER_HUB = 'docker.io'
const MAX_NAME_LENGTH = 255

// Grammar from distribution/reference, written out piece by piece.
const component = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const tagPattern = /^[\w][\w.-]{0,127}$/
const hostLabel = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/
const ipv6 = /^\[[0-9a-fA-F:.]+(?:%[\w.-]+)?\]$/

/**
 * Parses a reference with Docker's normalization: `busybox` → `docker.io/library/busybox:latest`,
 * `index.docker.io/x` → `docker.io/x`. The first path component is a registry when it contains
 * `.` or `:`, or is `localhost`. Throws ERR_REFERENCE_INVALID naming what is wrong.
 */
export function parseReference(text: string): Reference {
  const fail = (problem: string): never => {
    throw new OcipullError('ERR_REFERENCE_INVALID', `reference ${JSON.stringify(clip(text))}: ${problem}`)
  }
  if (typeof text !== 'string' || text === '') fail('empty')
  if (text.length > 4096) fail('too long')

  let rest = text
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    try {
      parseDigest(digest)
    } catch (err) {
      fail((err as Error).message.replace(/^digest: /, 'digest: '))
    }
  }

  let tag: string | undefined
  const lastSlash = rest.lastIndexOf('/')
  const colon = rest.indexOf(':', lastSlash + 1)
  if (colon >= 0) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!tagPattern.test(tag)) fail(`tag ${JSON.stringify(clip(tag))} is not valid`)
  }

  const slash = rest.indexOf('/')
  const first = slash < 0 ? '' : rest.slice(0, slash)
  let registry = DOCKER_HUB
  let repository = rest
  if (
    slash >= 0 &&
    (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())
  ) {
    registry = first
    repository = rest.slice(slash + 1)
    checkRegistry(registry, fail)
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB
  if (repository === '') fail('repository name is empty')
  if (repository !== repository.toLowerCase()) fail('repository name must be lowercase')
  for (const part of repository.split('/')) {
    if (!component.test(part)) fail(`repository path component ${JSON.stringify(clip(part))} is not valid`)
  }
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH)
    fail(`name longer than ${MAX_NAME_LENGTH} characters`)

  const ref: Reference = { registry, repository }
  if (tag !== undefined) ref.tag = tag
  if (digest !== undefined) ref.digest = digest
  if (tag === undefined && digest === undefined) ref.tag = 'latest'
  return ref
}

function checkRegistry(registry: string, fail: (problem: string) => never): void {
  let host = registry
  let port: string | undefined
  if (registry.startsWith('[')) {
    const close = registry.indexOf(']')
    host = registry.slice(0, close + 1)
    const after = registry.slice(close + 1)
    if (after !== '') {
      if (!after.startsWith(':')) fail(`registry ${JSON.stringify(registry)} is not valid`)
      port = after.slice(1)
    }
    if (!ipv6.test(host)) fail(`registry ${JSON.stringify(registry)} is not a valid IPv6 address`)
  } else {
    const c = registry.lastIndexOf(':')
    if (c >= 0) {
      host = registry.slice(0, c)
      port = registry.slice(c + 1)
    }
    if (host === '' || host.length > 253 || !host.split('.').every((l) => hostLabel.test(l))) {
      fail(`registry ${JSON.stringify(clip(registry))} is not a valid host`)
    }
  }
  if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) > 0 && Number(port) < 65536)) {
    fail(`registry ${JSON.stringify(clip(registry))} has an invalid port`)
  }
}

/** The canonical string: `registry/repository[:tag][@digest]`. */
export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`
}

/** `registry/repository`, the name without tag or digest. */
export function repositoryName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}
