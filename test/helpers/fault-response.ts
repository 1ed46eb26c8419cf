import type { IncomingMessage, ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'

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
  /** Serve this many filler bytes instead of the content (Infinity: never ends, and not `length` framed). */
  filler?: number
  /**
   * How the body's end is marked: `length` (Content-Length, the default), `chunked` (no Content-Length,
   * chunked encoding) or `eof` (neither: the body ends when the server closes the connection).
   */
  framing?: 'length' | 'chunked' | 'eof'
  /** Shorthand for `framing: 'chunked'`. */
  chunked?: boolean
  /** Close the connection instead of answering: `end` (FIN) or `reset` (RST; over TLS, a plain close). */
  hangUp?: 'end' | 'reset'
  /** After this many body bytes, close the connection: `end` (FIN, a truncated body) or `reset` (RST). */
  cut?: { after: number; how: 'end' | 'reset' }
  /** After this many body bytes, send nothing for `ms`, then the rest. */
  stall?: { after: number; ms: number }
}

export interface ServedItem {
  digest: string
  mediaType: string
  bytes: Buffer
}

export interface Progress {
  /** Body bytes handed to the socket so far. */
  bytesSent: number
}

const CHUNK = 64 * 1024

/** Sends content, applying a fault's body, framing, stall and cut; counts bytes in `progress`. */
export async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  progress: Progress,
  item: ServedItem,
  fault?: Fault,
): Promise<void> {
  let body = item.bytes
  if (fault?.flipByte !== undefined) {
    body = Buffer.from(body)
    body[fault.flipByte] = (body[fault.flipByte] ?? 0) ^ 0xff
  }
  const length = fault?.filler ?? body.length
  const framing = fault?.framing ?? (fault?.chunked || !Number.isFinite(length) ? 'chunked' : 'length')
  if (framing === 'eof') res.useChunkedEncodingByDefault = false
  res.writeHead(200, {
    'content-type': item.mediaType,
    'docker-content-digest': item.digest,
    ...(framing === 'length' ? { 'content-length': String(length) } : {}),
    // After a lying Content-Length the connection is out of step: never reuse it.
    ...(framing === 'eof' || fault?.headers?.['content-length'] !== undefined ? { connection: 'close' } : {}),
    ...fault?.headers,
  })
  if (req.method === 'HEAD') return void res.end()
  res.flushHeaders()
  const part = (from: number, to: number) =>
    fault?.filler === undefined ? body.subarray(from, to) : filler(to - from)
  const cutAt = Math.min(fault?.cut?.after ?? Number.POSITIVE_INFINITY, length)
  const stallAt = Math.min(fault?.stall?.after ?? Number.POSITIVE_INFINITY, cutAt)
  if (!(await sendRange(res, progress, part, 0, stallAt))) return
  if (fault?.stall !== undefined && stallAt < cutAt) {
    if (!(await pause(res, fault.stall.ms)) || !(await sendRange(res, progress, part, stallAt, cutAt))) return
  }
  if (fault?.cut === undefined) return void res.end()
  await hangUp(res, fault.cut.how)
}

/** Closes the connection under a response: `end` sends a FIN, `reset` an RST. */
export async function hangUp(res: ServerResponse, how: 'end' | 'reset'): Promise<void> {
  const socket = res.socket
  if (how === 'end' || socket === null) return void socket?.end()
  // A reset straight from a write callback goes out as a FIN (Node 20): let the write settle first.
  if (!(await pause(res, 20))) return
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy() // a TLS socket cannot send an RST
  }
}

/** Waits `ms`; false if the client left meanwhile. */
export async function pause(res: ServerResponse, ms: number): Promise<boolean> {
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
  progress: Progress,
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
    progress.bytesSent = offset
  }
  return true
}

const fillerChunk = Buffer.alloc(CHUNK, 0x20)

function filler(n: number): Buffer {
  return fillerChunk.subarray(0, n)
}

export function sendJson(
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

/** A distribution-spec error body. */
export function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
) {
  sendJson(res, status, { errors: [{ code, message }] }, headers)
}
