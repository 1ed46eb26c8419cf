import type { ErrorCode } from '../errors.js'
import { OcipullError } from '../errors.js'
import type { HttpResponse } from './http-client.js'
import { networkError } from './network-error.js'

/**
 * Reads a whole response body into memory, refusing more than `maxBytes`: first by the
 * declared Content-Length (before reading anything), then while reading (for chunked bodies).
 */
export async function readBody(
  res: HttpResponse,
  options: { maxBytes: number; what: string; code?: ErrorCode; signal?: AbortSignal | undefined },
): Promise<Buffer> {
  const code = options.code ?? 'ERR_REGISTRY'
  const tooLarge = (n: number | string) =>
    new OcipullError(code, `${options.what}: response of ${n} bytes exceeds the limit of ${options.maxBytes}`)
  const declared = Number(res.headers['content-length'])
  if (Number.isFinite(declared) && declared > options.maxBytes) {
    res.body.destroy()
    throw tooLarge(declared)
  }
  const chunks: Buffer[] = []
  let total = 0
  try {
    for await (const chunk of res.body) {
      total += (chunk as Buffer).length
      if (total > options.maxBytes) {
        res.body.destroy()
        throw tooLarge(`more than ${options.maxBytes}`)
      }
      chunks.push(chunk as Buffer)
    }
  } catch (err) {
    throw networkError(err, options.what, options.signal)
  }
  return Buffer.concat(chunks)
}

/** The first `{code, message}` of a distribution error body, for messages; empty when there is none. */
export async function registryErrorDetail(res: HttpResponse, signal?: AbortSignal): Promise<string> {
  if (res.status === 204 || res.headers['content-length'] === '0') {
    await res.body.dump().catch(() => {})
    return ''
  }
  let text: string
  try {
    text = (await readBody(res, { maxBytes: 64 * 1024, what: 'error body', signal })).toString('utf8')
  } catch {
    return ''
  }
  try {
    const doc = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] }
    const first = doc.errors?.[0]
    if (first && typeof first.code === 'string') {
      const message = typeof first.message === 'string' ? first.message.slice(0, 200) : ''
      return message ? `${message} (${first.code})` : first.code
    }
  } catch {}
  return ''
}
