import { posix } from 'node:path'
import { OcipullError } from '../errors.js'
import type { KeySource } from '../keys/key-source.js'
import { parseRequirement } from './parse-requirement.js'
import { PolicyReader } from './policy-reader.js'
import type { Policy, PolicyRequirement } from './policy-types.js'
import { readResource } from './read-resource.js'
import { type JsonValue, jsonPath, parseStrictJson } from './strict-json.js'

/** policy.json files larger than this are refused (containers/image has no cap; 4 MiB is plenty). */
export const MAX_POLICY_SIZE = 4 * 1024 * 1024

export interface ParsePolicyOptions {
  /** Names the policy in errors and in the verdict, e.g. its path. Default `policy`. */
  origin?: string
}

/**
 * Parses containers-policy.json(5) as strictly as containers/image: unknown or duplicated keys,
 * a missing `default`, an empty requirement list, a bad `keyType`, zero or two key sources,
 * fulcio without Rekor, pki with Rekor, bad identities and invalid scopes are all
 * ERR_POLICY_INVALID naming the JSON path. Key files are not read here.
 */
export function parsePolicy(input: Uint8Array | string, options: ParsePolicyOptions = {}): Policy {
  const origin = options.origin ?? 'policy'
  const what = `policy ${origin}`
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength
  if (size > MAX_POLICY_SIZE) {
    throw new OcipullError(
      'ERR_POLICY_INVALID',
      `${what}: ${size} bytes exceeds the limit of ${MAX_POLICY_SIZE}`,
    )
  }
  const r = new PolicyReader(what)
  const doc = r.object(parseStrictJson(input, { code: 'ERR_POLICY_INVALID', what }), '', [
    'default',
    'transports',
  ])
  if (doc['default'] === undefined) r.fail('default', 'missing (the default policy is mandatory)')
  const transports = new Map<string, Map<string, PolicyRequirement[]>>()
  if (doc['transports'] !== undefined) {
    const t = r.object(doc['transports'], 'transports')
    for (const [transport, scopesValue] of Object.entries(t)) {
      const tPath = jsonPath('transports', transport)
      const scopes = new Map<string, PolicyRequirement[]>()
      for (const [scope, list] of Object.entries(r.object(scopesValue, tPath))) {
        const sPath = jsonPath(tPath, scope)
        if (scope !== '') checkScope(r, transport, scope, sPath)
        scopes.set(scope, requirementList(r, list, sPath))
      }
      transports.set(transport, scopes)
    }
  }
  return { default: requirementList(r, doc['default'], 'default'), transports, origin }
}

export interface LoadPolicyOptions {
  /** Reads `kbs://` and other resource URIs (and `file://` when given). */
  keySource?: KeySource
  signal?: AbortSignal
}

/**
 * Reads and parses a policy from a file path, a `file://` URI, or a resource URI (`kbs:///…`)
 * served by `options.keySource`. One read, capped at MAX_POLICY_SIZE.
 */
export async function loadPolicy(location: string, options: LoadPolicyOptions = {}): Promise<Policy> {
  const bytes = await readResource(location, {
    maxBytes: MAX_POLICY_SIZE,
    what: `policy ${location}`,
    code: 'ERR_POLICY_INVALID',
    ...(options.keySource === undefined ? {} : { keySource: options.keySource }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  })
  return parsePolicy(bytes, { origin: location })
}

function requirementList(r: PolicyReader, value: JsonValue | undefined, path: string): PolicyRequirement[] {
  if (!Array.isArray(value)) r.fail(path, `want a list of requirements`)
  if (value.length === 0) r.fail(path, 'list of verification policy requirements must not be empty')
  return value.map((item, i) => parseRequirement(r, item, `${path}[${i}]`))
}

/**
 * Scope syntax per transport, as containers/image validates it: docker accepts any string;
 * oci, oci-archive and dir take absolute, clean paths other than `/`; docker-archive has no
 * scopes but `""`. Unknown transports are accepted unchecked.
 */
function checkScope(r: PolicyReader, transport: string, scope: string, path: string): void {
  switch (transport) {
    case 'oci':
    case 'oci-archive':
    case 'dir':
      if (!scope.startsWith('/')) r.fail(path, 'invalid scope: must be an absolute path')
      if (scope === '/') r.fail(path, 'invalid scope: use the default "" scope instead of "/"')
      if (posix.normalize(scope) !== scope || scope.endsWith('/')) {
        r.fail(path, 'invalid scope: not a clean path')
      }
      return
    case 'docker-archive':
      r.fail(path, 'invalid scope: docker-archive only has the "" scope')
  }
}
