import type { IncomingMessage, ServerResponse } from 'node:http'
import { KBS_ERROR_TYPE_PREFIX } from '../rcar-messages.js'

/** An error answered as Trustee answers errors: `{"type": "<prefix><variant>", "detail": "…"}`. */
export class KbsHttpError extends Error {
  readonly status: number
  readonly variant: string

  constructor(status: number, variant: string, detail: string) {
    super(detail)
    this.status = status
    this.variant = variant
  }
}

export function sendError(res: ServerResponse, err: KbsHttpError): void {
  sendJson(res, err.status, { type: `${KBS_ERROR_TYPE_PREFIX}${err.variant}`, detail: err.message })
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
) {
  const body = Buffer.from(JSON.stringify(value), 'utf8')
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length, ...headers })
  res.end(body)
}

/** Reads a request body, refusing more than `maxBytes` (413) by Content-Length first, then while reading. */
export async function readRequestBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () => new KbsHttpError(413, 'PayloadTooLarge', `request body over ${maxBytes} bytes`)
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge()
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of req) {
    total += (chunk as Buffer).length
    if (total > maxBytes) throw tooLarge()
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** The value of cookie `name` in a request, if present. */
export function requestCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

/** The token of an `Authorization: Bearer …` header, if present. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const m = /^Bearer +([!-~]+)$/i.exec(req.headers.authorization ?? '')
  return m?.[1]
}
