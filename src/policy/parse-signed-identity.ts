import { isNameOnly, parseDockerNamed } from './docker-name.js'
import type { PolicyReader } from './policy-reader.js'
import type { SignedIdentity } from './policy-types.js'
import type { JsonValue } from './strict-json.js'

/** The default of both signedBy and sigstoreSigned, as in containers/image. */
export const DEFAULT_SIGNED_IDENTITY: SignedIdentity = { type: 'matchRepoDigestOrExact' }

/** Parses a `signedIdentity` (or `baseLayerIdentity`) object, exact fields per type. */
export function parseSignedIdentity(
  r: PolicyReader,
  value: JsonValue | undefined,
  path: string,
): SignedIdentity {
  const o = r.object(value, path)
  const type = r.string(o, 'type', path)
  switch (type) {
    case 'matchExact':
    case 'matchRepoDigestOrExact':
    case 'matchRepository':
      r.object(o, path, ['type'])
      return { type }
    case 'exactReference': {
      r.object(o, path, ['type', 'dockerReference'])
      const dockerReference = r.nonEmptyString(o, 'dockerReference', path)
      const named = parseDockerNamed(dockerReference)
      if (named === undefined) r.fail(`${path}.dockerReference`, 'not a valid docker reference')
      if (isNameOnly(named)) r.fail(`${path}.dockerReference`, 'contains neither a tag nor a digest')
      return { type, dockerReference }
    }
    case 'exactRepository': {
      r.object(o, path, ['type', 'dockerRepository'])
      const dockerRepository = r.nonEmptyString(o, 'dockerRepository', path)
      const named = parseDockerNamed(dockerRepository)
      if (named === undefined) r.fail(`${path}.dockerRepository`, 'not a valid repository name')
      if (!isNameOnly(named)) r.fail(`${path}.dockerRepository`, 'must be a repository without tag or digest')
      return { type, dockerRepository }
    }
    case 'remapIdentity': {
      r.object(o, path, ['type', 'prefix', 'signedPrefix'])
      const prefix = r.nonEmptyString(o, 'prefix', path)
      const signedPrefix = r.nonEmptyString(o, 'signedPrefix', path)
      checkRemapPrefix(r, prefix, `${path}.prefix`)
      checkRemapPrefix(r, signedPrefix, `${path}.signedPrefix`)
      return { type, prefix, signedPrefix }
    }
    default:
      return r.fail(`${path}.type`, `unknown signedIdentity type ${JSON.stringify(type)}`)
  }
}

const component = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const domain =
  /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::\d+)?$|^\[[0-9a-fA-F:.]+\](?::\d+)?$/

/**
 * A remap prefix is a registry (`host[:port]`) or a fully expanded namespace starting with one
 * (`docker.io/library`, `quay.io/ns`). Stricter than containers/image, which also accepts
 * a bare word like `example` (that can never match a normalized reference) without complaint.
 */
function checkRemapPrefix(r: PolicyReader, prefix: string, path: string): void {
  const slash = prefix.indexOf('/')
  const host = slash < 0 ? prefix : prefix.slice(0, slash)
  const looksLikeRegistry = host.includes('.') || host.includes(':') || host === 'localhost'
  if (!domain.test(host) || !looksLikeRegistry) {
    r.fail(path, `${JSON.stringify(prefix)} is not a registry or a namespace starting with one`)
  }
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') {
    r.fail(path, `${JSON.stringify(prefix)} is not fully expanded (write docker.io)`)
  }
  if (slash < 0) return
  for (const part of prefix.slice(slash + 1).split('/')) {
    if (!component.test(part)) r.fail(path, `${JSON.stringify(prefix)} is not a valid repository namespace`)
  }
}
