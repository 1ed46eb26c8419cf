import { createHash } from 'node:crypto'
import { once } from 'node:events'
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Descriptor } from '../../src/manifest.js'

/**
 * An in-process registry for one repository that can misbehave on purpose, for the faults a real
 * registry cannot be made to show: cut or stalled bodies, wrong bytes or headers, throttling,
 * 5xx, oversized documents. Plain HTTP on 127.0.0.1, a fresh port each time.
 *
 * Routes: `GET|HEAD /v2/<repo>/manifests/<tag|digest>`, `GET|HEAD /v2/<repo>/blobs/<digest>`,
 * `GET /token` (with bearer auth), and on the optional storage origin `GET /blobs/<digest>?sig=…`.
 */

export type Route = 'manifests' | 'blobs' | 'token' | 'storage' | 'other'

/** What to do wrong. Faults apply in the order added; the first one that matches a request is used. */
export interface Fault {
  /** Which route (a redirected blob's body is served by the storage origin, with `blobs` faults). */
  route: 'manifests' | 'blobs' | 'token'
  /** Only requests for this tag or digest (default: any). */
  target?: string
  /** Only the first `times` matching requests (default: every one). */
  times?: number
  /** Wait this long before sending anything (a slow or hung registry). */
  delayMs?: number
  /** Answer with this status and a distribution error body instead of the content (429, 503, 404…). */
  status?: number
  /** Extra or replacing headers: `retry-after`, a lying `docker-content-digest` or `content-length`. */
  headers?: Record<string, string>
  /** Serve the content with the byte at this index flipped. */
  flipByte?: number
  /** Serve this many filler bytes instead of the content (Infinity: never ends; implies chunked). */
  filler?: number
  /** Send no Content-Length (chunked transfer encoding). */
  chunked?: boolean
  /** After this many body bytes, close the connection: `end` (FIN, a truncated body) or `reset` (RST). */
  cut?: { after: number; how: 'end' | 'reset' }
  /** After this many body bytes, send nothing for `ms`, then the rest. */
  stall?: { after: number; ms: number }
}

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
    }

export interface FaultServerOptions {
  /** The one repository served, e.g. `test/app`. */
  repository: string
  auth?: FaultAuth
  /** Answer blob GETs with a 307 to a second server (another origin, a signed URL) that serves the bytes. */
  redirectBlobs?: boolean
}

export interface RecordedRequest {
  method: string
  /** Path and query string. */
  path: string
  route: Route
  headers: IncomingHttpHeaders
  /** Response status, once sent. */
  readonly status: number | undefined
  /** Body bytes handed to the socket so far. */
  bytesSent: number
  /** True once the response ended or its connection closed. */
  closed: boolean
}

export interface Origin {
  /** `http://127.0.0.1:PORT` */
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

interface Item {
  digest: string
  mediaType: string
  bytes: Buffer
}

const CHUNK = 64 * 1024
const SERVICE = 'fault-registry'
const SIGNATURE = 'c2lnbmVk'

export async function startFaultServer(options: FaultServerOptions): Promise<FaultServer> {
  const content = new Map<string, Item>()
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

  const registry = await listen(async (req, res, rec, url) => {
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
          ? `Bearer realm="${registry.url}/token",service="${SERVICE}",scope="repository:${options.repository}:pull"`
          : `Basic realm="${SERVICE}"`
      return sendError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': challenge })
    }
    if (m === null || route === 'other' || m[1] !== options.repository) {
      return sendError(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry')
    }
    const target = m[3]!
    const fault = take(route, target)
    if (fault?.delayMs !== undefined && !(await pause(res, fault.delayMs))) return
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
    : await listen(async (req, res, rec, url) => {
        rec.route = 'storage'
        const digest = /^\/blobs\/([^/]+)$/.exec(url.pathname)?.[1]
        const item = digest === undefined ? undefined : content.get(digest)
        if (item === undefined || url.searchParams.get('sig') !== SIGNATURE) {
          return sendError(res, 403, 'DENIED', 'bad signature')
        }
        await serve(req, res, rec, item, take('blobs', digest))
      })

  return {
    ...registry.origin,
    storage: storage?.origin,
    put(bytes, mediaType = 'application/octet-stream', tag) {
      const data = Buffer.from(bytes)
      const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
      content.set(digest, { digest, mediaType, bytes: data })
      if (tag !== undefined) tags.set(tag, digest)
      return { mediaType, digest, size: data.length }
    },
    fault: (fault) => void faults.push({ ...fault }),
    count: (route) => registry.origin.requests.filter((r) => r.route === route).length,
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

async function listen(handler: Handler): Promise<{ origin: Origin; url: string; close(): Promise<void> }> {
  const requests: RecordedRequest[] = []
  const server: Server = createServer((req, res) => {
    const rec: RecordedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      route: 'other',
      headers: req.headers,
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
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const host = `127.0.0.1:${port}`
  const url = `http://${host}`
  return {
    origin: { url, host, requests },
    url,
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/** Sends an item, applying a fault's body and framing changes. */
async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  rec: RecordedRequest,
  item: Item,
  fault?: Fault,
) {
  let body = item.bytes
  if (fault?.flipByte !== undefined) {
    body = Buffer.from(body)
    body[fault.flipByte] = (body[fault.flipByte] ?? 0) ^ 0xff
  }
  const length = fault?.filler ?? body.length
  const chunked = fault?.chunked === true || !Number.isFinite(length)
  res.writeHead(200, {
    'content-type': item.mediaType,
    'docker-content-digest': item.digest,
    ...(chunked ? {} : { 'content-length': String(length) }),
    // A lying or cut response leaves the connection in an unknown state: never reuse it.
    ...(fault === undefined ? {} : { connection: 'close' }),
    ...fault?.headers,
  })
  if (req.method === 'HEAD') return void res.end()
  res.flushHeaders()
  const part = (from: number, to: number) =>
    fault?.filler === undefined ? body.subarray(from, to) : filler(to - from)
  const cutAt = Math.min(fault?.cut?.after ?? Number.POSITIVE_INFINITY, length)
  const stallAt = Math.min(fault?.stall?.after ?? Number.POSITIVE_INFINITY, cutAt)
  if (!(await sendRange(res, rec, part, 0, stallAt))) return
  if (fault?.stall !== undefined && stallAt < cutAt) {
    if (!(await pause(res, fault.stall.ms)) || !(await sendRange(res, rec, part, stallAt, cutAt))) return
  }
  if (fault?.cut === undefined) return void res.end()
  if (fault.cut.how === 'reset') res.socket?.resetAndDestroy()
  else res.socket?.end()
}

/** Waits `ms`; false if the client left meanwhile. */
async function pause(res: ServerResponse, ms: number): Promise<boolean> {
  const gone = new AbortController()
  const onClose = () => gone.abort()
  res.once('close', onClose)
  const stayed = await sleep(ms, true, { signal: gone.signal }).catch(() => false)
  res.off('close', onClose)
  return stayed
}

/** Writes bytes [from, to) in chunks, each handed to the kernel before the next; false if the client left. */
async function sendRange(
  res: ServerResponse,
  rec: RecordedRequest,
  part: (from: number, to: number) => Buffer,
  from: number,
  to: number,
): Promise<boolean> {
  for (let offset = from; offset < to; ) {
    const end = Math.min(to, offset + CHUNK)
    const written = await new Promise<boolean>((resolve) => {
      const onClose = () => resolve(false)
      res.once('close', onClose)
      res.write(part(offset, end), (err) => {
        res.off('close', onClose)
        resolve(err == null && !res.destroyed)
      })
    })
    if (!written) return false
    offset = end
    rec.bytesSent = offset
  }
  return true
}

const fillerChunk = Buffer.alloc(CHUNK, 0x20)

function filler(n: number): Buffer {
  return fillerChunk.subarray(0, n)
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
}

function sendJson(
  res: ServerResponse,
  status: number,
  doc: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(doc)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  })
  res.end(text)
}

function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
) {
  sendJson(res, status, { errors: [{ code, message }] }, headers)
}
