import { OcipullError } from '../errors.js'

/** A parsed `kbs[+plugin]://[host]/seg/…[?query]` resource URI. */
export interface ResourceUri {
  /** The KBS plugin: `resource` for `kbs://`, `<plugin>` for `kbs+<plugin>://`. */
  plugin: string
  /** The path segments, e.g. `['default', 'key', 'key_id1']`. */
  segments: string[]
  /** `''` or the query string with its `?`, passed on to the KBS unchanged. */
  query: string
  /** The segments joined by `/` (`repo/type/tag`): the lookup key of offline maps and PKCS#11 labels. */
  key: string
  /** The KBS route: `/kbs/v0/<plugin>/<segments>[?query]`. */
  path: string
}

/** Trustee's rule for one path segment (`^[A-Za-z0-9_-][A-Za-z0-9_.-]*$`); it also rules out `.` and `..`. */
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/
const PLUGIN = /^[a-z0-9][a-z0-9_-]*$/
const MAX_URI_LENGTH = 4096

/**
 * Parses a KBS resource URI. The host (and port) is ignored, as CDH and the attestation agent
 * ignore it: the KBS URL always comes from configuration. `kbs://` and `kbs+resource://` are the
 * resource plugin, which takes exactly three segments `<repository>/<type>/<tag>`.
 * Fails with ERR_RESOURCE_URI_INVALID.
 */
export function parseResourceUri(text: string): ResourceUri {
  const bad = (problem: string): never => {
    throw new OcipullError(
      'ERR_RESOURCE_URI_INVALID',
      `resource uri ${JSON.stringify(clip(text))}: ${problem}`,
    )
  }
  if (text.length > MAX_URI_LENGTH) bad(`longer than ${MAX_URI_LENGTH} characters`)
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return bad('not a URI')
  }
  const scheme = url.protocol.slice(0, -1)
  let plugin: string
  if (scheme === 'kbs') plugin = 'resource'
  else if (scheme.startsWith('kbs+')) plugin = scheme.slice(4)
  else return bad('want the kbs:// or kbs+<plugin>:// scheme')
  if (!PLUGIN.test(plugin)) bad(`bad plugin name ${JSON.stringify(plugin)}`)
  if (!text.includes('://')) bad('want kbs:///repository/type/tag (three slashes when there is no host)')
  if (url.username !== '' || url.password !== '') bad('user information is not allowed')
  if (url.hash !== '') bad('a fragment is not allowed')
  const segments = url.pathname.split('/').slice(1)
  if (segments.length === 0 || (segments.length === 1 && segments[0] === '')) bad('no path')
  for (const s of segments) {
    if (!SEGMENT.test(s)) bad(`bad path segment ${JSON.stringify(s)}`)
  }
  if (plugin === 'resource' && segments.length !== 3) {
    bad(`want exactly three segments <repository>/<type>/<tag>, got ${segments.length}`)
  }
  const key = segments.join('/')
  return { plugin, segments, query: url.search, key, path: `/kbs/v0/${plugin}/${key}${url.search}` }
}

/** True for `kbs:` and `kbs+<plugin>:` URIs (the schemes a KBS-backed key source serves). */
export function isKbsUri(text: string): boolean {
  return /^kbs(\+[a-z0-9_-]+)?:/i.test(text)
}

/**
 * The `repository/type/tag` key of a plain resource URI (`kbs:///a/b/c`, no plugin, no query):
 * what the local key sources (offline-fs maps, PKCS#11 labels) can serve. `backend` names the
 * key source in the ERR_RESOURCE_URI_INVALID message.
 */
export function resourceKey(text: string, backend: string): string {
  const parsed = parseResourceUri(text)
  if (parsed.plugin !== 'resource' || parsed.query !== '') {
    throw new OcipullError(
      'ERR_RESOURCE_URI_INVALID',
      `resource uri ${JSON.stringify(clip(text))}: ${backend} keys serve kbs:///repository/type/tag only`,
    )
  }
  return parsed.key
}

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 197)}...` : s
}
