import { createHash } from 'node:crypto'
import { once } from 'node:events'
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Descriptor } from '../../src/manifest.js'
import { type Fault, hangUp, pause, type ServedItem, sendError, sendJson, serve } from './fault-response.js'

export type { Fault } from './fault-response.js'

/**
 * An in-process registry for one repository that can misbehave on purpose, for the faults a real
 * registry cannot be made to show: cut or stalled bodies, wrong bytes or headers, throttling,
 * 5xx, oversized documents. Plain HTTP (or HTTPS with `tls`) on 127.0.0.1, a fresh port each time.
 * Faults are described in fault-response.ts; every request is recorded for assertions.
 *
 * Routes: `GET|HEAD /v2/<repo>/manifests/<tag|digest>`, `GET|HEAD /v2/<repo>/blobs/<digest>`,
 * `GET /token` (with bearer auth), and on the optional storage origin `GET /blobs/<digest>?sig=…`.
 */

export type Route = 'manifests' | 'blobs' | 'token' | 'storage' | 'other'

export type FaultAuth =
  | { scheme: 'basic'; username: string; password: string }
  | {
      scheme: 'bearer'
      /** The token endpoint wants these as Basic credentials. */
      username: string
      password: string
      /** `expires_in` of issued tokens, in seconds. */
      expiresIn?: number
      /** Refuse every token at the registry (the token server still issues them). */
      rejectTokens?: boolean
      /** The realm to name in challenges (default this server's `/token`), e.g. another server's. */
      realm?: string
    }

export interface FaultServerOptions {
  /** The one repository served, e.g. `test/app`. */
  repository: string
  auth?: FaultAuth
  /** Answer blob GETs with a 307 to a second server (another origin, a signed URL) that serves the bytes. */
  redirectBlobs?: boolean
  /** Serve HTTPS with this key and certificate (PEM) instead of plain HTTP, on both origins. */
  tls?: { key: string; cert: string }
}

export interface RecordedRequest {
  method: string
  /** Path and query string. */
  path: string
  route: Route
  headers: IncomingHttpHeaders
  /** When it arrived (`performance.now()`). */
  at: number
  /** Response status, once sent. */
  readonly status: number | undefined
  /** Body bytes handed to the socket so far. */
  bytesSent: number
  /** True once the response ended or its connection closed. */
  closed: boolean
}

export interface Origin {
  /** `http://127.0.0.1:PORT` (or https) */
  readonly url: string
  /** `127.0.0.1:PORT`, the registry name in references. */
  readonly host: string
  readonly requests: RecordedRequest[]
}

export interface FaultServer extends Origin {
  /** The blob storage origin, when `redirectBlobs` is set. */
  readonly storage: Origin | undefined
  /** Stores content (a manifest or a blob) and optionally tags it; returns its descriptor. */
  put(bytes: Buffer | string, mediaType?: string, tag?: string): Descriptor
  /** Adds a fault. */
  fault(fault: Fault): void
  /** Requests recorded on one route of the registry. */
  count(route: Route): number
  close(): Promise<void>
}

const SERVICE = 'fault-registry'
const SIGNATURE = 'c2lnbmVk'

export async function startFaultServer(options: FaultServerOptions): Promise<FaultServer> {
  const content = new Map<string, ServedItem>()
  const tags = new Map<string, string>()
  const faults: Fault[] = []
  const tokens = new Set<string>()
  const auth = options.auth

  const take = (route: Fault['route'], target: string | undefined): Fault | undefined => {
    const fault = faults.find(
      (f) => f.route === route && (f.target === undefined || f.target === target) && f.times !== 0,
    )
    if (fault?.times !== undefined) fault.times--
    return fault
  }

  const authorized = (req: IncomingMessage): boolean => {
    const given = req.headers.authorization
    if (auth === undefined) return true
    if (auth.scheme === 'basic') return given === basic(auth.username, auth.password)
    return !auth.rejectTokens && given?.startsWith('Bearer ') === true && tokens.has(given.slice(7))
  }

  const registry = await listen(options.tls, async (req, res, rec, url) => {
    if (url.pathname === '/token') {
      rec.route = 'token'
      const fault = take('token', undefined)
      if (auth?.scheme !== 'bearer') return sendError(res, 404, 'NOT_FOUND', 'no token endpoint')
      if (fault?.status !== undefined) return sendError(res, fault.status, 'FAULT', 'injected', fault.headers)
      if (req.headers.authorization !== basic(auth.username, auth.password)) {
        return sendError(res, 401, 'UNAUTHORIZED', 'bad credentials')
      }
      const token = `token-${tokens.size + 1}`
      tokens.add(token)
      return sendJson(res, 200, {
        token,
        ...(auth.expiresIn === undefined ? {} : { expires_in: auth.expiresIn }),
      })
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname)
    const route = (m?.[2] ?? 'other') as 'manifests' | 'blobs' | 'other'
    rec.route = route
    if (!authorized(req)) {
      const challenge =
        auth?.scheme === 'bearer'
          ? `Bearer realm="${auth.realm ?? `${registry.url}/token`}",service="${SERVICE}",scope="repository:${options.repository}:pull"`
          : `Basic realm="${SERVICE}"`
      return sendError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': challenge })
    }
    if (m === null || route === 'other' || m[1] !== options.repository) {
      return sendError(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry')
    }
    const target = m[3]!
    const fault = take(route, target)
    if (fault?.delayMs !== undefined && !(await pause(res, fault.delayMs))) return
    if (fault?.hangUp !== undefined) return hangUp(res, fault.hangUp)
    if (fault?.status !== undefined) return sendError(res, fault.status, 'FAULT', 'injected', fault.headers)
    const item = content.get(route === 'manifests' ? (tags.get(target) ?? target) : target)
    if (item === undefined) {
      return sendError(
        res,
        404,
        route === 'manifests' ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN',
        `${target} unknown`,
      )
    }
    if (route === 'blobs' && storage !== undefined && req.method === 'GET') {
      res.writeHead(307, {
        location: `${storage.url}/blobs/${item.digest}?sig=${SIGNATURE}`,
        'content-length': '0',
      })
      return void res.end()
    }
    await serve(req, res, rec, item, fault)
  })

  const storage = !options.redirectBlobs
    ? undefined
    : await listen(options.tls, async (req, res, rec, url) => {
        rec.route = 'storage'
        const digest = /^\/blobs\/([^/]+)$/.exec(url.pathname)?.[1]
        const item = digest === undefined ? undefined : content.get(digest)
        if (item === undefined || url.searchParams.get('sig') !== SIGNATURE) {
          return sendError(res, 403, 'DENIED', 'bad signature')
        }
        await serve(req, res, rec, item, take('blobs', digest))
      })

  return {
    url: registry.url,
    host: registry.host,
    requests: registry.requests,
    storage,
    put(bytes, mediaType = 'application/octet-stream', tag) {
      const data = Buffer.from(bytes)
      const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
      content.set(digest, { digest, mediaType, bytes: data })
      if (tag !== undefined) tags.set(tag, digest)
      return { mediaType, digest, size: data.length }
    },
    fault: (fault) => void faults.push({ ...fault }),
    count: (route) => registry.requests.filter((r) => r.route === route).length,
    async close() {
      await Promise.all([registry.close(), storage?.close()])
    },
  }
}

/** A loopback port with nothing listening on it (for refused connections). */
export async function closedPort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

type Handler = (req: IncomingMessage, res: ServerResponse, rec: RecordedRequest, url: URL) => Promise<void>

async function listen(
  tls: FaultServerOptions['tls'],
  handler: Handler,
): Promise<Origin & { close(): Promise<void> }> {
  const requests: RecordedRequest[] = []
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const rec: RecordedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      route: 'other',
      headers: req.headers,
      at: performance.now(),
      get status() {
        return res.headersSent ? res.statusCode : undefined
      },
      bytesSent: 0,
      closed: false,
    }
    requests.push(rec)
    res.on('close', () => {
      rec.closed = true
    })
    handler(req, res, rec, new URL(req.url ?? '/', 'http://fault')).catch(() => res.destroy())
  }
  const server: Server = tls === undefined ? createServer(onRequest) : createHttpsServer(tls, onRequest)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const host = `127.0.0.1:${port}`
  const url = `${tls === undefined ? 'http' : 'https'}://${host}`
  return {
    url,
    host,
    requests,
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
}
