import { readFileSync } from 'node:fs'
import { rootCertificates } from 'node:tls'
import { type Dispatcher, EnvHttpProxyAgent, request } from 'undici'
import { OcipullError } from '../errors.js'
import { networkError } from './network-error.js'

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST'
  url: URL
  headers?: Record<string, string>
  body?: string
  signal?: AbortSignal | undefined
}

export interface HttpResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Dispatcher.ResponseData['body']
  url: URL
}

/** A transport is a function; features (auth, retry, redirects) wrap it. */
export type Transport = (request: HttpRequest) => Promise<HttpResponse>

export interface ClientCertificate {
  /** The registry host[:port] this certificate is presented to, and no other. */
  registry: string
  cert: string
  key: string
}

export interface HttpClientOptions {
  /** Extra trusted CA certificates (PEM text), added to Node's roots and the system bundle. */
  caCertificates?: string[]
  /** mTLS client certificates, each only for its own registry. */
  clientCertificates?: ClientCertificate[]
  /** Registries (host[:port]) reached over plain HTTP or TLS without verification. */
  insecureRegistries?: string[]
  /** Proxy URLs; by default HTTPS_PROXY, HTTP_PROXY and NO_PROXY from the environment. */
  proxy?: { httpProxy?: string; httpsProxy?: string; noProxy?: string }
  /** Milliseconds to connect (30 s), to receive headers (60 s), and between body chunks (60 s). */
  timeouts?: { connectMs?: number; headersMs?: number; bodyIdleMs?: number }
  userAgent?: string
  /** Where SSL_CERT_FILE and NODE_EXTRA_CA_CERTS are read from (default process.env). */
  env?: NodeJS.ProcessEnv
}

export interface HttpClient {
  request: Transport
  /** True for registries marked insecure. */
  isInsecure(host: string): boolean
  close(): Promise<void>
}

const SYSTEM_CA_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt']

/**
 * Creates the HTTP layer shared by every registry request: undici agents with the configured
 * roots, client certificates and timeouts, behind the environment's proxy settings. One agent
 * per registry host, so a client certificate or relaxed verification never leaks to another host.
 * Errors come back as OcipullError (ERR_TLS, ERR_TIMEOUT, ERR_CONNECTION, ERR_ABORTED).
 */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const env = options.env ?? process.env
  const insecure = new Set(options.insecureRegistries ?? [])
  const timeouts = {
    connect: options.timeouts?.connectMs ?? 30_000,
    headers: options.timeouts?.headersMs ?? 60_000,
    body: options.timeouts?.bodyIdleMs ?? 60_000,
  }
  const extraCa = [...(options.caCertificates ?? []), ...envCertificates(env)]
  const ca = extraCa.length === 0 ? undefined : [...rootCertificates, ...systemCertificates(), ...extraCa]
  const proxy = options.proxy ?? proxyFromEnv(env)
  const agents = new Map<string, Dispatcher>()
  let closed = false

  function agentFor(host: string): Dispatcher {
    let agent = agents.get(host)
    if (agent !== undefined) return agent
    const clientCert = options.clientCertificates?.find((c) => c.registry === host)
    const tls = {
      ...(ca === undefined ? {} : { ca }),
      ...(clientCert === undefined ? {} : { cert: clientCert.cert, key: clientCert.key }),
      rejectUnauthorized: !insecure.has(host),
    }
    agent = new EnvHttpProxyAgent({
      ...proxy,
      connect: { ...tls, timeout: timeouts.connect },
      requestTls: tls,
      ...(ca === undefined ? {} : { proxyTls: { ca } }),
      headersTimeout: timeouts.headers,
      bodyTimeout: timeouts.body,
      connections: 8,
    })
    agents.set(host, agent)
    return agent
  }

  const transport: Transport = async (req) => {
    if (closed) throw new TypeError('http client is closed')
    const what = `${req.method} ${redactUrl(req.url)}`
    try {
      const res = await request(req.url, {
        method: req.method,
        headers: { 'user-agent': options.userAgent ?? 'ocipull', ...req.headers },
        ...(req.body === undefined ? {} : { body: req.body }),
        ...(req.signal === undefined ? {} : { signal: req.signal }),
        dispatcher: agentFor(req.url.host),
      })
      return { status: res.statusCode, headers: res.headers, body: res.body, url: req.url }
    } catch (err) {
      throw networkError(err, what, req.signal)
    }
  }

  return {
    request: transport,
    isInsecure: (host) => insecure.has(host),
    async close() {
      closed = true
      await Promise.all([...agents.values()].map((a) => a.close()))
      agents.clear()
    },
  }
}

/** A URL for messages: no userinfo, no query string (it may hold tokens or signed URLs). */
export function redactUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}${url.search === '' ? '' : '?…'}`
}

/** Proxy settings from `env`, in the lower- and upper-case spellings curl accepts. */
function proxyFromEnv(env: NodeJS.ProcessEnv): { httpProxy?: string; httpsProxy?: string; noProxy?: string } {
  const pick = (name: string) => env[name.toLowerCase()] || env[name.toUpperCase()] || undefined
  const out: { httpProxy?: string; httpsProxy?: string; noProxy?: string } = {}
  const httpProxy = pick('http_proxy')
  const httpsProxy = pick('https_proxy')
  const noProxy = pick('no_proxy')
  if (httpProxy) out.httpProxy = httpProxy
  if (httpsProxy) out.httpsProxy = httpsProxy
  if (noProxy) out.noProxy = noProxy
  return out
}

function envCertificates(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = []
  for (const name of ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS']) {
    const file = env[name]
    if (!file) continue
    try {
      out.push(readFileSync(file, 'utf8'))
    } catch (err) {
      throw new OcipullError('ERR_OPTIONS_INVALID', `${name}=${file}: ${(err as Error).message}`, {
        cause: err,
      })
    }
  }
  return out
}

/** The distribution's CA bundle, so that extra roots add to the system's rather than replace them. */
function systemCertificates(): string[] {
  for (const file of SYSTEM_CA_BUNDLES) {
    try {
      return [readFileSync(file, 'utf8')]
    } catch {}
  }
  return []
}
