import { abortError, OcipullError } from '../errors.js'
import type { InitData } from '../initdata/parse-initdata.js'
import type { KeySource } from '../keys/key-source.js'
import { type Attester, sampleAttester } from './attester.js'
import { createKbsHttp, type KbsHttpOptions } from './kbs-http.js'
import {
  describeErrorInformation,
  errorVariant,
  type KbsErrorInformation,
  protocolError,
} from './rcar-messages.js'
import { type RcarSession, rcarHandshake } from './rcar-session.js'
import { decryptResourceResponse } from './resource-response.js'
import { parseResourceUri, type ResourceUri } from './resource-uri.js'
import { generateTeeKey, type TeeKey, type TeeKeyAlgorithm } from './tee-key.js'

export interface KbsClientOptions extends KbsHttpOptions {
  /** The TEE evidence source (default: the `sample` attester). */
  attester?: Attester
  /** The TEE key algorithm (default ECDH-ES+A256KW-P256); ignored when `teeKey` is given. */
  teeKeyAlgorithm?: TeeKeyAlgorithm
  /** A fixed TEE key (replaying test vectors); by default one is generated per client. */
  teeKey?: TeeKey
  /** Init-Data to send with the attestation (its raw TOML, as `{"format":"toml","body":…}`). */
  initData?: Pick<InitData, 'text'>
  /** GETs per resource before giving up on 401s, each after a fresh attestation (default 3). */
  maxAttempts?: number
  /** The largest resource response (the JWE) accepted (default 4 MiB). */
  maxResponseBytes?: number
}

/**
 * A KBS client (Trustee RCAR, protocol 0.4.0) and a KeySource for `kbs://` and `kbs+plugin://`
 * URIs. One attestation session is shared by every call (started on the first one, renewed
 * when the KBS answers 401 or the session runs out); resources are cached in memory by URI for
 * the client's lifetime and never written anywhere. `close()` drops the cache and the session.
 *
 * ```ts
 * const kbs = createKbsClient({ url: 'https://kbs.example:8080', cert: pem })
 * try { const kek = await kbs.getResource('kbs:///default/key/key_id1', { signal }) }
 * finally { await kbs.close() }
 * ```
 */
export interface KbsClient extends KeySource {
  /** The KBS base URL, for messages. */
  readonly name: string
  /** Attests now unless a live session exists (getResource does this on its own). */
  attest(options?: { signal?: AbortSignal }): Promise<void>
  close(): Promise<void>
}

const MAX_RESPONSE_BYTES = 4 * 1024 * 1024
const EXPIRY_MARGIN_MS = 10_000

export function createKbsClient(options: KbsClientOptions): KbsClient {
  const http = createKbsHttp(options)
  const attester = options.attester ?? sampleAttester()
  const maxAttempts = options.maxAttempts ?? 3
  const maxResponseBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) throw new TypeError('maxAttempts: want >= 1')
  // Shared work (the session, a resource being fetched) runs under the client's own signal, so
  // one caller giving up does not fail the others; each caller stops waiting on its own signal.
  const lifetime = new AbortController()
  const cache = new Map<string, Buffer>()
  const pending = new Map<string, Promise<Buffer>>()
  let teeKey: Promise<TeeKey> | undefined
  let session: Promise<RcarSession> | undefined
  let closed = false

  function getTeeKey(): Promise<TeeKey> {
    teeKey ??= options.teeKey ? Promise.resolve(options.teeKey) : generateTeeKey(options.teeKeyAlgorithm)
    return teeKey
  }

  function currentSession(): Promise<RcarSession> {
    const live = session
    if (live !== undefined) return live
    const started = (async () =>
      rcarHandshake({
        http,
        attester,
        teeKey: await getTeeKey(),
        initDataToml: options.initData?.text,
        signal: lifetime.signal,
      }))()
    session = started
    started.then(
      (s) => {
        // Forget a session shortly before it runs out, so the next call attests again.
        if (
          s.expiresAt !== undefined &&
          s.expiresAt - EXPIRY_MARGIN_MS <= Date.now() &&
          session === started
        ) {
          session = undefined
        }
      },
      () => {
        if (session === started) session = undefined
      },
    )
    return started
  }

  /** The live session and the promise that holds it (to forget exactly that one on a 401). */
  async function liveSession(): Promise<{ held: Promise<RcarSession>; value: RcarSession }> {
    let held = currentSession()
    let value = await held
    if (value.expiresAt !== undefined && value.expiresAt - EXPIRY_MARGIN_MS <= Date.now()) {
      if (session === held) session = undefined
      held = currentSession()
      value = await held
    }
    return { held, value }
  }

  async function fetchResource(uri: ResourceUri): Promise<Buffer> {
    const signal = lifetime.signal
    const what = `kbs ${http.name}: GET ${uri.path}`
    let refusal: KbsErrorInformation | undefined
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const { held, value } = await liveSession()
      const res = await http.send({ method: 'GET', path: uri.path, cookie: value.cookie, signal })
      if (res.status === 200) {
        const body = await http.read(res, what, maxResponseBytes, signal)
        return decryptResourceResponse(body, await getTeeKey(), what)
      }
      if (res.status === 401) {
        refusal = await http.errorInformation(res, what, signal)
        // A policy denial stays a denial with a fresh session: no point attesting again.
        if (errorVariant(refusal) === 'PolicyDeny') break
        if (session === held) session = undefined
        continue
      }
      if (res.status === 403) {
        const info = await http.errorInformation(res, what, signal).catch(() => undefined)
        throw new OcipullError(
          'ERR_KBS_DENIED',
          `${what}: denied${info ? `: ${describeErrorInformation(info)}` : ''}`,
        )
      }
      const info = await http.errorInformation(res, what, signal).catch(() => undefined)
      const detail = info === undefined ? '' : ` (${describeErrorInformation(info)})`
      if (res.status === 404) throw new OcipullError('ERR_KEY_UNAVAILABLE', `${what}: not found${detail}`)
      if (res.status >= 500) {
        throw new OcipullError('ERR_KEY_UNAVAILABLE', `${what}: HTTP ${res.status} from the KBS${detail}`, {
          retryable: true,
        })
      }
      throw protocolError(`${what}: unexpected HTTP ${res.status}${detail}`)
    }
    const info = refusal as KbsErrorInformation
    const variant = errorVariant(info)
    // Trustee reports a missing resource as a 401 PluginInternalError.
    const code = variant === 'PluginInternalError' ? 'ERR_KEY_UNAVAILABLE' : 'ERR_KBS_DENIED'
    const tries = variant === 'PolicyDeny' ? '' : ` (after ${maxAttempts} attestations)`
    throw new OcipullError(code, `${what}: refused${tries}: ${describeErrorInformation(info)}`)
  }

  return {
    name: http.name,
    async getResource(text, opts = {}) {
      if (closed) throw new TypeError('kbs client is closed')
      const uri = parseResourceUri(text)
      const hit = cache.get(uri.path)
      if (hit !== undefined) return Uint8Array.from(hit)
      let p = pending.get(uri.path)
      if (p === undefined) {
        const started = fetchResource(uri).then((bytes) => {
          if (!closed) cache.set(uri.path, bytes)
          return bytes
        })
        p = started
        pending.set(uri.path, started)
        started.then(
          () => pending.delete(uri.path),
          () => pending.delete(uri.path),
        )
      }
      return Uint8Array.from(await waitFor(p, opts.signal, `kbs ${http.name}: ${text}`))
    },
    async attest(opts = {}) {
      if (closed) throw new TypeError('kbs client is closed')
      await waitFor(liveSession(), opts.signal, `kbs ${http.name}: attest`)
    },
    async close() {
      if (closed) return
      closed = true
      lifetime.abort(new OcipullError('ERR_ABORTED', `kbs ${http.name}: client closed`))
      for (const bytes of cache.values()) bytes.fill(0)
      cache.clear()
      session = undefined
      await http.close()
    },
  }
}

/** Waits for shared work, giving up (ERR_ABORTED) when this caller's signal fires. */
function waitFor<T>(work: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (signal === undefined) return work
  if (signal.aborted) return Promise.reject(abortError(signal, what))
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, what))
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}
