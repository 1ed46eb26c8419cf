import { setTimeout as sleep } from 'node:timers/promises'
import { abortError, OcipullError } from '../errors.js'
import { redactUrl, type Transport } from './http-client.js'

export interface RetryOptions {
  /** Retries after the first attempt (default 3). */
  retries?: number
  /** First backoff delay; it doubles each retry, with jitter (default 250 ms). */
  baseDelayMs?: number
  /** Largest backoff delay (default 8 s). */
  maxDelayMs?: number
  /** A Retry-After longer than this is not waited for; the response is returned as is (default 60 s). */
  maxRetryAfterMs?: number
}

const retryableStatus = new Set([408, 429, 500, 502, 503, 504])

/**
 * Retries a transport on connection errors, timeouts, 408, 429 and 5xx, with exponential
 * backoff and jitter, honouring `Retry-After` (seconds or an HTTP date). After the last attempt
 * the last response is returned (the caller maps its status) or the last error thrown.
 * Requests are retried only before a response body is consumed, so this is safe for streams.
 */
export function withRetry(transport: Transport, options: RetryOptions = {}): Transport {
  const retries = options.retries ?? 3
  const base = options.baseDelayMs ?? 250
  const maxDelay = options.maxDelayMs ?? 8_000
  const maxRetryAfter = options.maxRetryAfterMs ?? 60_000
  return async (req) => {
    for (let attempt = 0; ; attempt++) {
      const backoff = Math.min(maxDelay, base * 2 ** attempt) * (0.5 + Math.random() / 2)
      let delay = backoff
      try {
        const res = await transport(req)
        if (!retryableStatus.has(res.status) || attempt >= retries) return res
        const after = retryAfterMs(res.headers['retry-after'])
        if (after !== undefined) {
          if (after > maxRetryAfter) return res
          delay = Math.max(after, 0)
        }
        await res.body.dump().catch(() => {})
      } catch (err) {
        if (!(err instanceof OcipullError) || !err.retryable || attempt >= retries) throw err
      }
      try {
        await sleep(delay, undefined, req.signal ? { signal: req.signal } : {})
      } catch {
        throw abortError(req.signal, `${req.method} ${redactUrl(req.url)}`)
      }
    }
  }
}

/** Parses Retry-After: delta-seconds or an HTTP date. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value
  if (v === undefined || v.trim() === '') return undefined
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000
  const at = Date.parse(v)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}
