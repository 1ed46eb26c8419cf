import { checkDigest, type Digest } from './digest.js'
import { OcipullError } from './errors.js'
import { parseReference, type Reference } from './reference.js'

/** Where an image is, by transport, as written on a command line (skopeo's syntax). */
export type ImageName =
  | { transport: 'docker'; reference: Reference }
  | { transport: 'oci'; path: string; tag?: string; digest?: Digest }
  | { transport: 'oci-archive'; path: string; tag?: string; digest?: Digest }
  | { transport: 'docker-archive'; path: string; tag?: string }

const unsupportedTransports = new Set(['dir', 'containers-storage', 'docker-daemon', 'sif', 'tarball'])

/**
 * Parses `docker://REF` (the default when there is no prefix), `oci:DIR[:TAG|@DIGEST]`,
 * `oci-archive:FILE[:TAG|@DIGEST]` and `docker-archive:FILE[:REF]`. As in skopeo, the path
 * ends at the first `:`. Throws ERR_REFERENCE_INVALID.
 */
export function parseImageName(text: string): ImageName {
  const fail = (problem: string): never => {
    throw new OcipullError('ERR_REFERENCE_INVALID', `image ${JSON.stringify(text)}: ${problem}`)
  }
  if (text.startsWith('docker://')) return { transport: 'docker', reference: parseReference(text.slice(9)) }
  const colon = text.indexOf(':')
  const prefix = colon < 0 ? '' : text.slice(0, colon)
  if (prefix !== 'oci' && prefix !== 'oci-archive' && prefix !== 'docker-archive') {
    if (unsupportedTransports.has(prefix)) {
      fail(
        `transport ${JSON.stringify(prefix)} is not supported (use docker://, oci:, oci-archive: or docker-archive:)`,
      )
    }
    return { transport: 'docker', reference: parseReference(text) }
  }
  const rest = text.slice(colon + 1)
  let path = rest
  let tag: string | undefined
  let digest: Digest | undefined
  const at = rest.indexOf('@')
  const sep = rest.indexOf(':')
  if (prefix !== 'docker-archive' && at >= 0 && (sep < 0 || at < sep)) {
    path = rest.slice(0, at)
    try {
      digest = checkDigest(rest.slice(at + 1), 'digest')
    } catch (err) {
      fail((err as Error).message)
    }
  } else if (sep >= 0) {
    path = rest.slice(0, sep)
    tag = rest.slice(sep + 1)
    if (tag === '') fail('empty tag')
  }
  if (path === '') fail('empty path')
  if (prefix === 'docker-archive')
    return tag === undefined ? { transport: prefix, path } : { transport: prefix, path, tag }
  const name: { transport: 'oci' | 'oci-archive'; path: string; tag?: string; digest?: Digest } = {
    transport: prefix,
    path,
  }
  if (tag !== undefined) name.tag = tag
  if (digest !== undefined) name.digest = digest
  return name
}

/** The canonical text form, as parseImageName reads it. */
export function formatImageName(name: ImageName): string {
  switch (name.transport) {
    case 'docker': {
      const r = name.reference
      return `docker://${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`
    }
    case 'docker-archive':
      return `docker-archive:${name.path}${name.tag ? `:${name.tag}` : ''}`
    default:
      return `${name.transport}:${name.path}${name.tag ? `:${name.tag}` : ''}${name.digest ? `@${name.digest}` : ''}`
  }
}
