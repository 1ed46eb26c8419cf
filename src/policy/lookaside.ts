import { fileURLToPath } from 'node:url'
import { abortError, OcipullError } from '../errors.js'
import type { HttpResponse, Transport } from '../registry/http-client.js'
import { redactUrl } from '../registry/http-client.js'
import { readBody } from '../registry/read-body.js'
import { readResource } from './read-resource.js'

/** containers/image reads at most this many lookaside signatures; more is a server error. */
export const MAX_LOOKASIDE_SIGNATURES = 128
/** Each signature is capped at this size. */
export const MAX_LOOKASIDE_SIGNATURE_SIZE = 4 * 1024 * 1024
const MAX_REDIRECTS = 5

export interface LookasideSignature {
  /** Where it was read, for messages and the verdict (credentials and query removed). */
  url: string
  bytes: Uint8Array
}

export interface ReadLookasideOptions {
  /** The lookaside base URL from registries.d (`file://`, `http://` or `https://`). */
  base: string
  /** The repository path without the host, e.g. `library/busybox`. */
  repository: string
  /** The manifest digest the signatures are stored under. */
  digest: string
  /** Used for http(s) bases. */
  transport?: Transport
  signal?: AbortSignal
  /** Called for oddities that do not stop the read (an HTML error page answering 200, …). */
  onWarning?: (message: string) => void
  maxSignatures?: number
}

/**
 * Reads `<base>/<repository>@<algo>=<hex>/signature-N` for N = 1, 2, … until the first one that
 * does not exist (ENOENT, or HTTP 404). More than `maxSignatures` (128) is an error, as are
 * other HTTP statuses and signatures over 4 MiB. Costs one read or GET per signature, plus one.
 */
export async function readLookasideSignatures(options: ReadLookasideOptions): Promise<LookasideSignature[]> {
  const max = options.maxSignatures ?? MAX_LOOKASIDE_SIGNATURES
  let base: URL
  try {
    base = new URL(options.base)
  } catch (err) {
    throw new OcipullError('ERR_POLICY_INVALID', `lookaside ${JSON.stringify(options.base)}: not a URL`, {
      cause: err,
    })
  }
  if (base.protocol !== 'file:' && base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new OcipullError(
      'ERR_POLICY_INVALID',
      `lookaside ${redactUrl(base)}: unsupported scheme ${base.protocol}`,
    )
  }
  const colon = options.digest.indexOf(':')
  const dir = `${options.repository}@${options.digest.slice(0, colon)}=${options.digest.slice(colon + 1)}`
  const out: LookasideSignature[] = []
  for (let n = 1; ; n++) {
    if (options.signal?.aborted) throw abortError(options.signal, `lookaside ${redactUrl(base)}`)
    const url = new URL(base)
    url.pathname = `${base.pathname.replace(/\/+$/, '')}/${dir}/signature-${n}`
    const bytes =
      base.protocol === 'file:' ? await readFileSignature(url) : await readHttpSignature(url, options)
    if (bytes === undefined) return out
    if (n > max) {
      throw new OcipullError(
        'ERR_SIGNATURE_INVALID',
        `lookaside ${redactUrl(base)}: more than ${max} signatures for ${options.repository}@${options.digest}, assuming a server error`,
      )
    }
    out.push({ url: redactUrl(url), bytes })
  }
}

async function readFileSignature(url: URL): Promise<Uint8Array | undefined> {
  const path = fileURLToPath(url)
  try {
    return await readResource(path, {
      maxBytes: MAX_LOOKASIDE_SIGNATURE_SIZE,
      what: `lookaside signature ${path}`,
      code: 'ERR_SIGNATURE_INVALID',
    })
  } catch (err) {
    const cause = (err as { cause?: NodeJS.ErrnoException }).cause
    if (cause?.code === 'ENOENT') return undefined
    throw err
  }
}

async function readHttpSignature(url: URL, options: ReadLookasideOptions): Promise<Uint8Array | undefined> {
  if (options.transport === undefined)
    throw new TypeError('readLookasideSignatures: an http(s) base needs a transport')
  let target = url
  let res: HttpResponse
  for (let hops = 0; ; hops++) {
    res = await options.transport({ method: 'GET', url: target, signal: options.signal })
    if (![301, 302, 303, 307, 308].includes(res.status)) break
    await res.body.dump().catch(() => {})
    const location = header(res, 'location')
    if (location === undefined || hops >= MAX_REDIRECTS) {
      throw new OcipullError('ERR_REGISTRY', `lookaside ${redactUrl(url)}: bad or too many redirects`)
    }
    const next = new URL(location, target)
    if (next.protocol !== 'https:' && !(next.protocol === 'http:' && target.protocol === 'http:')) {
      throw new OcipullError(
        'ERR_REGISTRY',
        `lookaside ${redactUrl(url)}: refusing redirect to ${redactUrl(next)}`,
      )
    }
    target = next
  }
  const what = `lookaside ${redactUrl(url)}`
  if (res.status === 404) {
    await res.body.dump().catch(() => {})
    return undefined
  }
  if (res.status !== 200) {
    await res.body.dump().catch(() => {})
    throw new OcipullError('ERR_REGISTRY', `${what}: unexpected status ${res.status}`, {
      retryable: res.status >= 500,
    })
  }
  if ((header(res, 'content-type') ?? '').toLowerCase().startsWith('text/html')) {
    options.onWarning?.(`${what}: served as text/html, maybe an error page rather than a signature`)
  }
  const body = await readBody(res, {
    maxBytes: MAX_LOOKASIDE_SIGNATURE_SIZE,
    what,
    code: 'ERR_SIGNATURE_INVALID',
    signal: options.signal,
  })
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
}

function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name]
  return Array.isArray(v) ? v[0] : v
}
