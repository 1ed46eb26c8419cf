import { DEFAULT_SIGNED_IDENTITY, parseSignedIdentity } from './parse-signed-identity.js'
import type { PolicyReader } from './policy-reader.js'
import type { GpgKeyType, KeyMaterial, PolicyRequirement, SigstoreTrust } from './policy-types.js'
import type { JsonObject, JsonValue } from './strict-json.js'

const keyTypes: readonly GpgKeyType[] = ['GPGKeys', 'signedByGPGKeys', 'X509Certificates', 'signedByX509CAs']

/** Parses one requirement object; unknown types and keys, and bad combinations, are errors. */
export function parseRequirement(
  r: PolicyReader,
  value: JsonValue | undefined,
  path: string,
): PolicyRequirement {
  const o = r.object(value, path)
  const type = r.string(o, 'type', path)
  switch (type) {
    case 'insecureAcceptAnything':
    case 'reject':
      r.object(o, path, ['type'])
      return { type }
    case 'signedBy':
      return parseSignedBy(r, o, path)
    case 'sigstoreSigned':
      return parseSigstoreSigned(r, o, path)
    case 'signedBaseLayer':
      r.object(o, path, ['type', 'baseLayerIdentity'])
      if (o['baseLayerIdentity'] === undefined) r.fail(`${path}.baseLayerIdentity`, 'missing')
      return {
        type,
        baseLayerIdentity: parseSignedIdentity(r, o['baseLayerIdentity'], `${path}.baseLayerIdentity`),
      }
    default:
      return r.fail(`${path}.type`, `unknown policy requirement type ${JSON.stringify(type)}`)
  }
}

function parseSignedBy(r: PolicyReader, o: JsonObject, path: string): PolicyRequirement {
  r.object(o, path, ['type', 'keyType', 'keyPath', 'keyPaths', 'keyData', 'signedIdentity'])
  const keyType = o['keyType']
  if (typeof keyType !== 'string' || !keyTypes.includes(keyType as GpgKeyType)) {
    r.fail(`${path}.keyType`, `invalid keyType ${JSON.stringify(typeof keyType === 'string' ? keyType : '')}`)
  }
  const keys = keyMaterial(r, o, path, { path: 'keyPath', paths: 'keyPaths', data: 'keyData' })
  if (keys === undefined)
    r.fail(path, 'exactly one of keyPath, keyPaths and keyData must be specified, none present')
  return {
    type: 'signedBy',
    keyType: keyType as GpgKeyType,
    keys,
    signedIdentity: identity(r, o, path),
  }
}

function parseSigstoreSigned(r: PolicyReader, o: JsonObject, path: string): PolicyRequirement {
  r.object(o, path, [
    'type',
    'keyPath',
    'keyPaths',
    'keyData',
    'keyDatas',
    'fulcio',
    'pki',
    'rekorPublicKeyPath',
    'rekorPublicKeyPaths',
    'rekorPublicKeyData',
    'rekorPublicKeyDatas',
    'signedIdentity',
  ])
  const present = ['keyPath', 'keyPaths', 'keyData', 'keyDatas', 'fulcio', 'pki'].filter(
    (k) => o[k] !== undefined,
  )
  if (present.length !== 1) {
    r.fail(
      path,
      `exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki must be specified, ${present.length === 0 ? 'none' : present.join(', ')} present`,
    )
  }
  let trust: SigstoreTrust
  if (o['fulcio'] !== undefined) trust = parseFulcio(r, o['fulcio'], `${path}.fulcio`)
  else if (o['pki'] !== undefined) trust = parsePki(r, o['pki'], `${path}.pki`)
  else {
    const keys = keyMaterial(r, o, path, {
      path: 'keyPath',
      paths: 'keyPaths',
      data: 'keyData',
      datas: 'keyDatas',
    })
    trust = { kind: 'keys', keys: keys! }
  }
  const rekor = keyMaterial(r, o, path, {
    path: 'rekorPublicKeyPath',
    paths: 'rekorPublicKeyPaths',
    data: 'rekorPublicKeyData',
    datas: 'rekorPublicKeyDatas',
  })
  if (trust.kind === 'fulcio' && rekor === undefined) {
    r.fail(path, 'fulcio requires a Rekor public key (rekorPublicKeyPath, …Paths, …Data or …Datas)')
  }
  if (trust.kind === 'pki' && rekor !== undefined)
    r.fail(path, 'pki cannot be combined with a Rekor public key')
  return {
    type: 'sigstoreSigned',
    trust,
    ...(rekor === undefined ? {} : { rekorPublicKeys: rekor }),
    signedIdentity: identity(r, o, path),
  }
}

function parseFulcio(r: PolicyReader, value: JsonValue, path: string): SigstoreTrust {
  const o = r.object(value, path, ['caPath', 'caData', 'oidcIssuer', 'subjectEmail'])
  const ca = keyMaterial(r, o, path, { path: 'caPath', data: 'caData' })
  if (ca === undefined) r.fail(path, 'exactly one of caPath and caData must be specified, none present')
  return {
    kind: 'fulcio',
    ca,
    oidcIssuer: r.nonEmptyString(o, 'oidcIssuer', path),
    subjectEmail: r.nonEmptyString(o, 'subjectEmail', path),
  }
}

function parsePki(r: PolicyReader, value: JsonValue, path: string): SigstoreTrust {
  const o = r.object(value, path, [
    'caRootsPath',
    'caRootsData',
    'caIntermediatesPath',
    'caIntermediatesData',
    'subjectEmail',
    'subjectHostname',
  ])
  const caRoots = keyMaterial(r, o, path, { path: 'caRootsPath', data: 'caRootsData' })
  if (caRoots === undefined)
    r.fail(path, 'exactly one of caRootsPath and caRootsData must be specified, none present')
  const caIntermediates = keyMaterial(r, o, path, {
    path: 'caIntermediatesPath',
    data: 'caIntermediatesData',
  })
  const subjectEmail = r.optionalString(o, 'subjectEmail', path)
  const subjectHostname = r.optionalString(o, 'subjectHostname', path)
  if (subjectEmail === undefined && subjectHostname === undefined) {
    r.fail(path, 'at least one of subjectEmail and subjectHostname must be specified')
  }
  return {
    kind: 'pki',
    caRoots,
    ...(caIntermediates === undefined ? {} : { caIntermediates }),
    ...(subjectEmail === undefined ? {} : { subjectEmail }),
    ...(subjectHostname === undefined ? {} : { subjectHostname }),
  }
}

function identity(r: PolicyReader, o: JsonObject, path: string) {
  return o['signedIdentity'] === undefined
    ? DEFAULT_SIGNED_IDENTITY
    : parseSignedIdentity(r, o['signedIdentity'], `${path}.signedIdentity`)
}

/**
 * Reads at most one of the named key fields (a path, a list of paths, base64 data, a list of
 * base64 data). Returns undefined when none is present; two present is an error.
 */
function keyMaterial(
  r: PolicyReader,
  o: JsonObject,
  path: string,
  names: { path: string; paths?: string; data: string; datas?: string },
): KeyMaterial | undefined {
  const all = [names.path, names.paths, names.data, names.datas].filter((n): n is string => n !== undefined)
  const present = all.filter((n) => o[n] !== undefined)
  if (present.length > 1) {
    r.fail(
      path,
      `exactly one of ${all.join(', ')} must be specified, more than one present (${present.join(', ')})`,
    )
  }
  const field = present[0]
  if (field === undefined) return undefined
  if (field === names.path) return { from: 'paths', field, paths: [r.nonEmptyString(o, field, path)] }
  if (field === names.paths) return { from: 'paths', field, paths: r.stringList(o, field, path) }
  if (field === names.data) return { from: 'data', field, data: [r.base64(o, field, path)] }
  return { from: 'data', field, data: r.base64List(o, field, path) }
}
