import { isOcipullError, OcipullError } from '../errors.js'
import {
  createHttpClient,
  type HttpClientOptions,
  type HttpResponse,
  redactUrl,
} from '../registry/http-client.js'
import { readBody } from '../registry/read-body.js'
import { type KbsErrorInformation, parseErrorInformation, protocolError } from './rcar-messages.js'

export interface KbsHttpOptions {
  /** The KBS base URL (`http://` or `https://`, optionally with a path prefix). */
  url: string
  /** PEM certificate(s) of the KBS's HTTPS root, trusted in addition to the system roots. */
  cert?: string | undefined
  timeouts?: HttpClientOptions['timeouts']
  /** Proxy variables and SSL_CERT_FILE come from here (default process.env). */
  env?: NodeJS.ProcessEnv
  userAgent?: string
}

export interface KbsRequest {
  method: 'GET' | 'POST'
  /** The path under the base URL, starting with `/kbs/v0/`. */
  path: string
  json?: unknown
  cookie?: string
  signal?: AbortSignal | undefined
}

/** The HTTP side of the KBS client: one undici agent, coded errors, bounded bodies. */
export interface KbsHttp {
  /** The base URL, without credentials or query, for messages. */
  readonly name: string
  send(req: KbsRequest): Promise<HttpResponse>
  /** Reads a whole body, refusing more than `maxBytes` (ERR_KBS_PROTOCOL). */
  read(res: HttpResponse, what: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer>
  /** Reads an error body, which must be Trustee's `{type, detail}` JSON (else ERR_KBS_PROTOCOL). */
  errorInformation(res: HttpResponse, what: string, signal?: AbortSignal): Promise<KbsErrorInformation>
  close(): Promise<void>
}

const MAX_ERROR_BODY = 64 * 1024

/** Builds the client's HTTP layer on the project's HTTP client (proxies, CA roots, timeouts). */
export function createKbsHttp(options: KbsHttpOptions): KbsHttp {
  const base = parseKbsUrl(options.url)
  const name = redactUrl(base).replace(/\/$/, '')
  const prefix = base.pathname.replace(/\/+$/, '')
  const http = createHttpClient({
    ...(options.cert === undefined ? {} : { caCertificates: [options.cert] }),
    ...(options.timeouts === undefined ? {} : { timeouts: options.timeouts }),
    ...(options.env === undefined ? {} : { env: options.env }),
    userAgent: options.userAgent ?? 'ocipull',
  })

  const kbs: KbsHttp = {
    name,
    async send(req) {
      const url = new URL(`${prefix}${req.path}`, base)
      const headers: Record<string, string> = {}
      if (req.json !== undefined) headers['content-type'] = 'application/json'
      if (req.cookie !== undefined) headers['cookie'] = `kbs-session-id=${req.cookie}`
      try {
        return await http.request({
          method: req.method,
          url,
          headers,
          ...(req.json === undefined ? {} : { body: JSON.stringify(req.json) }),
          signal: req.signal,
        })
      } catch (err) {
        throw unreachable(err, `kbs ${name}: ${req.method} ${req.path}`)
      }
    },
    async read(res, what, maxBytes, signal) {
      try {
        return await readBody(res, { maxBytes, what, code: 'ERR_KBS_PROTOCOL', signal })
      } catch (err) {
        throw unreachable(err, what)
      }
    },
    async errorInformation(res, what, signal) {
      const body = await kbs.read(res, what, MAX_ERROR_BODY, signal)
      const info = parseErrorInformation(body)
      if (info === undefined)
        throw protocolError(`${what}: HTTP ${res.status} without a {type, detail} JSON body`)
      return info
    },
    close: () => http.close(),
  }
  return kbs
}

/** Checks a KBS base URL: http or https, no credentials, query or fragment. TypeError otherwise. */
export function parseKbsUrl(text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new OcipullError('ERR_OPTIONS_INVALID', `kbs url ${JSON.stringify(text)}: not a URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OcipullError('ERR_OPTIONS_INVALID', `kbs url ${JSON.stringify(text)}: want http:// or https://`)
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new OcipullError(
      'ERR_OPTIONS_INVALID',
      `kbs url ${redactUrl(url)}: credentials, a query or a fragment are not allowed`,
    )
  }
  return url
}

/**
 * A KBS that cannot be reached (refused, reset, DNS, TLS, timeout) makes its keys unavailable:
 * ERR_KEY_UNAVAILABLE with the network error as its cause (and its `retryable`). Aborts and
 * errors that are already about the KBS pass through.
 */
function unreachable(err: unknown, what: string): unknown {
  if (!isOcipullError(err)) return err
  if (err.code === 'ERR_CONNECTION' || err.code === 'ERR_TIMEOUT' || err.code === 'ERR_TLS') {
    return new OcipullError('ERR_KEY_UNAVAILABLE', `${what}: kbs unreachable: ${err.message}`, {
      cause: err,
      retryable: err.retryable,
    })
  }
  return err
}
