import { realpathSync } from 'node:fs'
import { resolve } from 'node:path'
import type { ImageName } from '../image-name.js'
import type { Reference } from '../reference.js'
import type { DockerNamed } from './docker-name.js'
import type { Policy, PolicyRequirement } from './policy-types.js'

/** How the policy sees an image: its transport, scope identity and parent namespaces. */
export interface PolicyImage {
  /** The transport name used in policy.json: `docker`, `oci`, `oci-archive`, `docker-archive`. */
  transport: string
  /** The most specific scope, e.g. `quay.io/ns/app:v1` or `/srv/layouts/app`. */
  identity: string
  /** Less specific scopes, most specific first (the `""` transport default is not listed). */
  namespaces: string[]
  /** The Docker reference signatures are matched against; docker transport only. */
  docker?: DockerNamed
}

/** What `requirementsFor` chose: the requirements and the scope they came from. */
export interface ScopeMatch {
  transport: string
  /** The matching scope, `""` for the transport default, or undefined for the policy's `default`. */
  scope?: string
  requirements: readonly PolicyRequirement[]
}

/**
 * The policy identity of an image name, as containers/image computes it. For `docker`, the
 * reference with its tag or digest (a digest wins: a tag next to it is not what is fetched),
 * then the repository and each parent namespace, the host[:port], and `*.domain` wildcards made
 * from the host without its port. For `oci` and `oci-archive`, the resolved absolute path and its
 * parent directories. `docker-archive` has no identity (only the `""` scope applies).
 */
export function policyImage(image: ImageName | Reference): PolicyImage {
  const name: ImageName = 'transport' in image ? image : { transport: 'docker', reference: image }
  switch (name.transport) {
    case 'docker': {
      const r = name.reference
      const docker: DockerNamed = { name: `${r.registry}/${r.repository}` }
      if (r.digest !== undefined) docker.digest = r.digest
      else docker.tag = r.tag ?? 'latest'
      const identity =
        docker.digest === undefined ? `${docker.name}:${docker.tag}` : `${docker.name}@${docker.digest}`
      return { transport: 'docker', identity, namespaces: dockerNamespaces(docker.name), docker }
    }
    case 'oci':
    case 'oci-archive': {
      const path = resolvedPath(name.path)
      return { transport: name.transport, identity: path, namespaces: pathNamespaces(path) }
    }
    case 'docker-archive':
      return { transport: 'docker-archive', identity: '', namespaces: [] }
  }
}

/** The requirement list of the single most specific scope that exists; lists are never merged. */
export function requirementsFor(policy: Policy, image: PolicyImage): ScopeMatch {
  const scopes = policy.transports.get(image.transport)
  if (scopes !== undefined) {
    for (const scope of [image.identity, ...image.namespaces, '']) {
      const requirements = scopes.get(scope)
      if (requirements !== undefined) return { transport: image.transport, scope, requirements }
    }
  }
  return { transport: image.transport, requirements: policy.default }
}

/** `host:5000/a/b` → `host:5000/a/b`, `host:5000/a`, `host:5000`, then `*.domain` wildcards. */
export function dockerNamespaces(name: string): string[] {
  const out: string[] = []
  let n = name
  for (;;) {
    out.push(n)
    const slash = n.lastIndexOf('/')
    if (slash < 0) break
    n = n.slice(0, slash)
  }
  // containers/image drops the port (everything from the first ':') before making wildcards,
  // so `127.0.0.1:5000` yields `*.0.0.1`; that quirk is kept for compatible scope lookups.
  const colon = n.indexOf(':')
  if (colon >= 0) n = n.slice(0, colon)
  for (;;) {
    const dot = n.indexOf('.')
    if (dot < 0) break
    n = n.slice(dot + 1)
    out.push(`*.${n}`)
  }
  return out
}

function pathNamespaces(path: string): string[] {
  const out: string[] = []
  let p = path
  while (p !== '/' && p.lastIndexOf('/') >= 0) {
    out.push(p)
    p = p.slice(0, p.lastIndexOf('/')) || '/'
  }
  return out
}

function resolvedPath(path: string): string {
  const absolute = resolve(path)
  try {
    return realpathSync.native(absolute)
  } catch {
    return absolute
  }
}
