import type { Readable } from 'node:stream'
import { type Digest, digestOf, parseDigest, shortDigest } from '../digest.js'
import { OcipullError } from '../errors.js'
import {
  DEFAULT_MAX_MANIFEST_SIZE,
  type Descriptor,
  type ParsedManifest,
  parseManifest,
} from '../manifest.js'
import { manifestMediaTypes } from '../media-types.js'
import { DOCKER_HUB, formatReference, type Reference } from '../reference.js'
import { type StreamHash, VerifyStream } from '../verify-stream.js'
import type { CredentialStore } from './credentials.js'
import {
  createHttpClient,
  type HttpClient,
  type HttpClientOptions,
  type HttpResponse,
  redactUrl,
} from './http-client.js'
import { networkError } from './network-error.js'
import { readBody, registryErrorDetail } from './read-body.js'
import { type AuthScope, RegistryAuth } from './registry-auth.js'
import { type RetryOptions, withRetry } from './retry.js'

export interface RegistryClientOptions extends HttpClientOptions {
  /** Where credentials come from; anonymous when absent. */
  credentials?: CredentialStore
  retry?: RetryOptions
  /** Manifests larger than this are refused (default 4 MiB). */
  maxManifestSize?: number
  /** Share an HTTP client (and its connections) between registry clients; it is not closed by close(). */
  http?: HttpClient
}

export interface ManifestHead {
  digest?: Digest
  mediaType?: string
  size?: number
}

const MAX_REDIRECTS = 5
const MANIFEST_BODY_RETRIES = 2

/**
 * A client for the OCI distribution API: manifests (GET, HEAD) and blobs (streamed GET), with
 * authentication, retries, TLS settings and redirects. It trusts nothing the registry says:
 * manifest digests are computed here and checked against the reference and Docker-Content-Digest;
 * blob streams are checked for size and digest while they are read.
 */
export class RegistryClient {
  private readonly http: HttpClient
  private readonly ownsHttp: boolean
  private readonly auth: RegistryAuth
  private readonly send
  private readonly maxManifestSize: number
  private readonly manifestBodyRetries: number
  private readonly schemes = new Map<string, 'https:' | 'http:'>()

  constructor(options: RegistryClientOptions = {}) {
    this.http = options.http ?? createHttpClient(options)
    this.ownsHttp = options.http === undefined
    this.send = withRetry(this.http.request, options.retry)
    this.auth = new RegistryAuth({
      transport: this.send,
      credentials: options.credentials,
      isInsecure: (r) => this.http.isInsecure(r),
    })
    this.maxManifestSize = options.maxManifestSize ?? DEFAULT_MAX_MANIFEST_SIZE
    this.manifestBodyRetries = Math.min(
      MANIFEST_BODY_RETRIES,
      options.retry?.retries ?? MANIFEST_BODY_RETRIES,
    )
  }

  /**
   * Fetches and parses the manifest `ref` names, or the one with `digest` in the same repository.
   * One GET (plus a token request on the first 401). Checks the digest: against `digest` or the
   * reference's digest when given, and against Docker-Content-Digest when the registry sends one.
   */
  async getManifest(
    ref: Reference,
    options: { digest?: Digest; signal?: AbortSignal } = {},
  ): Promise<ParsedManifest> {
    const wanted = options.digest ?? ref.digest
    const target = wanted ?? ref.tag ?? 'latest'
    const what = `docker://${ref.registry}/${ref.repository}${wanted ? `@${wanted}` : `:${target}`}`
    // A manifest is small, so a body cut short (reset, premature close) is fetched again from the
    // start, a bounded number of times; the transport's own retries only cover the headers.
    let res: HttpResponse
    let bytes: Buffer
    for (let attempt = 0; ; attempt++) {
      res = await this.request(ref, 'GET', `manifests/${target}`, what, options.signal, {
        accept: manifestMediaTypes.join(', '),
      })
      await expectOk(res, what, 'manifest', options.signal)
      try {
        bytes = await readBody(res, {
          maxBytes: this.maxManifestSize,
          what,
          code: 'ERR_MANIFEST_TOO_LARGE',
          signal: options.signal,
        })
        break
      } catch (err) {
        if (!(err instanceof OcipullError && err.retryable) || attempt >= this.manifestBodyRetries) throw err
      }
    }
    checkManifestDigest(bytes, wanted, header(res, 'docker-content-digest'), what)
    return parseManifest(bytes, {
      mediaType: header(res, 'content-type'),
      maxSize: this.maxManifestSize,
      what,
    })
  }

  /** HEAD for a manifest: what the registry says its digest, media type and size are (unverified). */
  async headManifest(ref: Reference, options: { signal?: AbortSignal } = {}): Promise<ManifestHead> {
    const target = ref.digest ?? ref.tag ?? 'latest'
    const what = `docker://${formatReference(ref)}`
    const res = await this.request(ref, 'HEAD', `manifests/${target}`, what, options.signal, {
      accept: manifestMediaTypes.join(', '),
    })
    await expectOk(res, what, 'manifest', options.signal)
    await res.body.dump().catch(() => {})
    const digest = header(res, 'docker-content-digest')
    const mediaType = header(res, 'content-type')
    const size = Number(header(res, 'content-length'))
    const out: ManifestHead = {}
    if (digest !== undefined) {
      parseDigest(digest, `${what}: Docker-Content-Digest`)
      out.digest = digest
    }
    if (mediaType !== undefined) out.mediaType = mediaType
    if (Number.isSafeInteger(size)) out.size = size
    return out
  }

  /**
   * Streams a blob. Follows redirects (to storage on another host, without our Authorization),
   * refuses a Content-Length that differs from the descriptor's size before reading, and returns
   * a stream that fails past `descriptor.size` and, at its end, on a digest mismatch.
   */
  async getBlob(
    ref: Reference,
    descriptor: Descriptor,
    options: { signal?: AbortSignal; hash?: StreamHash } = {},
  ): Promise<Readable> {
    const what = `docker://${ref.registry}/${ref.repository}: blob ${shortDigest(descriptor.digest)}`
    parseDigest(descriptor.digest, `${what}: digest`)
    let res = await this.request(ref, 'GET', `blobs/${descriptor.digest}`, what, options.signal)
    for (let hops = 0; isRedirect(res.status); hops++) {
      const location = header(res, 'location')
      await res.body.dump().catch(() => {})
      if (location === undefined || hops >= MAX_REDIRECTS) {
        throw new OcipullError(
          'ERR_REGISTRY',
          `${what}: ${location === undefined ? 'redirect without a location' : 'too many redirects'}`,
        )
      }
      const next = new URL(location, res.url)
      if (
        next.protocol !== 'https:' &&
        !(next.protocol === 'http:' && (res.url.protocol === 'http:' || this.http.isInsecure(ref.registry)))
      ) {
        throw new OcipullError('ERR_REGISTRY', `${what}: refusing redirect to ${redactUrl(next)}`)
      }
      res =
        next.origin === res.url.origin && next.host === this.baseUrl(ref.registry).host
          ? await this.requestUrl(ref, 'GET', next, what, options.signal)
          : await this.send({ method: 'GET', url: next, signal: options.signal })
    }
    await expectOk(res, what, 'blob', options.signal)
    const length = Number(header(res, 'content-length'))
    if (header(res, 'content-length') !== undefined && length !== descriptor.size) {
      res.body.destroy()
      throw new OcipullError(
        'ERR_SIZE_MISMATCH',
        `${what}: size mismatch: descriptor says ${descriptor.size} bytes, registry sends ${header(res, 'content-length')}`,
      )
    }
    const verify = new VerifyStream({
      digest: descriptor.digest,
      size: descriptor.size,
      what,
      ...(options.hash ? { hash: options.hash } : {}),
    })
    const body = res.body
    body.on('error', (err) => verify.destroy(networkError(err, what, options.signal)))
    verify.on('close', () => {
      if (!body.destroyed) body.destroy()
    })
    body.pipe(verify)
    return verify
  }

  async close(): Promise<void> {
    if (this.ownsHttp) await this.http.close()
  }

  private baseUrl(registry: string): URL {
    const host = registry === DOCKER_HUB ? 'registry-1.docker.io' : registry
    return new URL(`${this.schemes.get(registry) ?? 'https:'}//${host}`)
  }

  private request(
    ref: Reference,
    method: 'GET' | 'HEAD',
    path: string,
    what: string,
    signal: AbortSignal | undefined,
    headers: Record<string, string> = {},
  ): Promise<HttpResponse> {
    return this.requestUrl(
      ref,
      method,
      new URL(`/v2/${ref.repository}/${path}`, this.baseUrl(ref.registry)),
      what,
      signal,
      headers,
    )
  }

  /** One authenticated request to the registry itself; answers one 401 and retries once. */
  private async requestUrl(
    ref: Reference,
    method: 'GET' | 'HEAD',
    url: URL,
    what: string,
    signal: AbortSignal | undefined,
    headers: Record<string, string> = {},
  ): Promise<HttpResponse> {
    const scope: AuthScope = { registry: ref.registry, repository: ref.repository, actions: ['pull'] }
    const cached = this.auth.cached(scope)
    let res = await this.sendToRegistry(
      ref.registry,
      url,
      method,
      cached ? { ...headers, authorization: cached } : headers,
      signal,
    )
    if (res.status === 401) {
      if (cached !== undefined) this.auth.forget(scope)
      const authorization = await this.auth.answer(res, scope, what, signal)
      res = await this.sendToRegistry(ref.registry, url, method, { ...headers, authorization }, signal)
      if (res.status === 401) {
        this.auth.forget(scope)
        const detail = await registryErrorDetail(res, signal)
        throw new OcipullError(
          'ERR_UNAUTHORIZED',
          `${what}: unauthorized: credentials were refused${detail ? ` (${detail})` : ''}`,
        )
      }
    }
    return res
  }

  /**
   * Sends to the registry. For an insecure registry whose scheme is not known yet, HTTPS is tried
   * once without retries and, on a TLS or connection error, plain HTTP (with retries); the scheme
   * that answered is remembered.
   */
  private async sendToRegistry(
    registry: string,
    url: URL,
    method: 'GET' | 'HEAD',
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<HttpResponse> {
    const known = this.schemes.get(registry)
    if (known !== undefined && url.protocol !== known) {
      url = new URL(url)
      url.protocol = known
    }
    const probing = url.protocol === 'https:' && this.http.isInsecure(registry) && known === undefined
    if (!probing) return await this.send({ method, url, headers, signal })
    try {
      const res = await this.http.request({ method, url, headers, signal })
      this.schemes.set(registry, 'https:')
      return res
    } catch (err) {
      if (!(err instanceof OcipullError && (err.code === 'ERR_TLS' || err.code === 'ERR_CONNECTION')))
        throw err
      const plain = new URL(url)
      plain.protocol = 'http:'
      const res = await this.send({ method, url: plain, headers, signal })
      this.schemes.set(registry, 'http:') // only once http answered: an https failure may be transient
      return res
    }
  }
}

function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name]
  return Array.isArray(v) ? v[0] : v
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308
}

async function expectOk(
  res: HttpResponse,
  what: string,
  kind: 'manifest' | 'blob',
  signal?: AbortSignal,
): Promise<void> {
  if (res.status === 200) return
  const detail = await registryErrorDetail(res, signal)
  const suffix = detail ? `: ${detail}` : ''
  switch (res.status) {
    case 404:
      throw new OcipullError('ERR_NOT_FOUND', `${what}: ${kind} not found${suffix}`)
    case 401:
      throw new OcipullError('ERR_UNAUTHORIZED', `${what}: unauthorized${suffix}`)
    case 403:
      throw new OcipullError('ERR_DENIED', `${what}: access denied${suffix}`)
    case 429:
      throw new OcipullError('ERR_TOO_MANY_REQUESTS', `${what}: too many requests${suffix}`, {
        retryable: true,
      })
    default:
      throw new OcipullError('ERR_REGISTRY', `${what}: unexpected status ${res.status}${suffix}`, {
        retryable: res.status >= 500,
      })
  }
}

/** Checks manifest bytes against the digest we asked for and the one the registry claims. */
function checkManifestDigest(
  bytes: Buffer,
  wanted: Digest | undefined,
  claimed: string | undefined,
  what: string,
): void {
  for (const [expected, source] of [
    [wanted, 'requested'],
    [claimed, 'Docker-Content-Digest'],
  ] as const) {
    if (expected === undefined) continue
    const { algorithm } = parseDigest(expected, `${what}: ${source} digest`)
    const got = digestOf(bytes, algorithm)
    if (got !== expected) {
      throw new OcipullError(
        'ERR_DIGEST_MISMATCH',
        `${what}: manifest digest mismatch: ${source} ${expected}, got ${got}`,
      )
    }
  }
}
