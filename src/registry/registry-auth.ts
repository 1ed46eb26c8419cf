import { OcipullError } from '../errors.js'
import { bearerChallenge, parseAuthChallenges } from './auth-challenge.js'
import type { Credential, CredentialStore } from './credentials.js'
import { type HttpResponse, redactUrl, type Transport } from './http-client.js'
import { readBody, registryErrorDetail } from './read-body.js'

export interface AuthScope {
  /** The registry host[:port] the request goes to. */
  registry: string
  /** Repository path, e.g. `library/busybox`. */
  repository: string
  /** Actions for the token scope, e.g. ['pull']. */
  actions: string[]
}

export interface RegistryAuthOptions {
  /** The transport for token requests (retries, TLS and proxies already applied). */
  transport: Transport
  credentials?: CredentialStore | undefined
  /** Registries marked insecure: their token realm may be plain HTTP. */
  isInsecure?: (registry: string) => boolean
  /** Tokens without expires_in live this long (default 60 s, the distribution spec's minimum). */
  defaultTokenLifetimeMs?: number
  now?: () => number
}

interface CachedAuth {
  header: string
  expires: number
}

const MAX_TOKEN_RESPONSE = 1024 * 1024
const EXPIRY_MARGIN_MS = 5_000

/**
 * Authenticates registry requests: anonymous first, then, on a 401, the scheme the registry
 * asks for. Basic sends the registry's own credentials; Bearer fetches a token from the realm
 * for `repository:<name>:<actions>` (with Basic credentials, or an OAuth2 refresh-token POST
 * for identity tokens) and caches it per registry and scope until it expires. Credentials are
 * looked up per registry and only ever sent to that registry or the token realm it names;
 * a plain-HTTP realm gets them only when the registry itself is marked insecure.
 * One instance per client; nothing is global.
 */
export class RegistryAuth {
  private readonly options: RegistryAuthOptions
  private readonly cache = new Map<string, CachedAuth>()
  private readonly inflight = new Map<string, Promise<string>>()
  private readonly now: () => number

  constructor(options: RegistryAuthOptions) {
    this.options = options
    this.now = options.now ?? Date.now
  }

  /** A cached Authorization header for this scope, if any. */
  cached(scope: AuthScope): string | undefined {
    const key = cacheKey(scope)
    const hit = this.cache.get(key)
    if (hit === undefined) return undefined
    if (hit.expires <= this.now()) {
      this.cache.delete(key)
      return undefined
    }
    return hit.header
  }

  /**
   * Answers a 401: parses its challenge, obtains credentials or a token, caches the header and
   * returns it. Throws ERR_UNAUTHORIZED when no credentials fit, or the token server refuses.
   */
  async answer(res: HttpResponse, scope: AuthScope, what: string, signal?: AbortSignal): Promise<string> {
    // Concurrent 401s for one scope (parallel blob downloads) share one token request.
    const key = cacheKey(scope)
    const pending = this.inflight.get(key)
    if (pending !== undefined) {
      await res.body.dump().catch(() => {})
      return await pending
    }
    const answer = this.obtain(res, scope, what, signal)
    this.inflight.set(key, answer)
    try {
      return await answer
    } finally {
      this.inflight.delete(key)
    }
  }

  private async obtain(
    res: HttpResponse,
    scope: AuthScope,
    what: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const challenges = parseAuthChallenges(res.headers['www-authenticate'])
    const detail = await registryErrorDetail(res, signal)
    const credential = await this.options.credentials?.({
      registry: scope.registry,
      repository: scope.repository,
      ...(signal === undefined ? {} : { signal }),
    })
    const bearer = bearerChallenge(challenges)
    let auth: CachedAuth
    if (bearer !== undefined) {
      auth = await this.fetchToken(bearer, scope, credential, what, signal)
    } else if (challenges.some((c) => c.scheme === 'basic')) {
      if (credential === undefined || credential.kind !== 'basic') {
        throw unauthorized(
          what,
          credential === undefined ? 'no credentials' : 'basic auth needs a username and password',
          detail,
        )
      }
      auth = { header: basicHeader(credential), expires: Number.POSITIVE_INFINITY }
    } else {
      throw unauthorized(what, 'no supported authentication challenge', detail)
    }
    this.cache.set(cacheKey(scope), auth)
    return auth.header
  }

  /** Forgets the cached header for a scope (after it was refused). */
  forget(scope: AuthScope): void {
    this.cache.delete(cacheKey(scope))
  }

  private async fetchToken(
    challenge: { realm: URL; service?: string; scope?: string },
    scope: AuthScope,
    credential: Credential | undefined,
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<CachedAuth> {
    if (credential?.kind === 'registry-token') {
      return { header: `Bearer ${credential.token}`, expires: Number.POSITIVE_INFINITY }
    }
    const realm = new URL(challenge.realm)
    // Credentials go in the clear only to a realm host that is itself marked insecure: an insecure
    // registry must not leak them to another host.
    if (
      credential !== undefined &&
      realm.protocol !== 'https:' &&
      this.options.isInsecure?.(realm.host) !== true
    ) {
      throw new OcipullError(
        'ERR_UNAUTHORIZED',
        `${what}: token realm ${redactUrl(realm)} is not https; refusing to send credentials for ${scope.registry} (mark ${realm.host} insecure to allow it)`,
      )
    }
    const scopeText = `repository:${scope.repository}:${scope.actions.join(',')}`
    const headers: Record<string, string> = {}
    let res: HttpResponse
    if (credential?.kind === 'identity-token') {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: credential.token,
        client_id: 'ocipull',
        scope: scopeText,
        ...(challenge.service === undefined ? {} : { service: challenge.service }),
      })
      headers['content-type'] = 'application/x-www-form-urlencoded'
      res = await this.options.transport({
        method: 'POST',
        url: realm,
        headers,
        body: form.toString(),
        signal,
      })
    } else {
      if (challenge.service !== undefined) realm.searchParams.set('service', challenge.service)
      realm.searchParams.append('scope', scopeText)
      if (credential?.kind === 'basic') headers['authorization'] = basicHeader(credential)
      res = await this.options.transport({ method: 'GET', url: realm, headers, signal })
    }
    const tokenWhat = `token request to ${redactUrl(realm)} for ${scope.registry}`
    if (res.status !== 200) {
      const detail = await registryErrorDetail(res, signal)
      throw new OcipullError(
        res.status === 401 || res.status === 403 ? 'ERR_UNAUTHORIZED' : 'ERR_REGISTRY',
        `${what}: ${tokenWhat}: status ${res.status}${detail ? `: ${detail}` : ''}`,
        { retryable: res.status >= 500 },
      )
    }
    const body = await readBody(res, { maxBytes: MAX_TOKEN_RESPONSE, what: tokenWhat, signal })
    let doc: Record<string, unknown>
    try {
      doc = JSON.parse(body.toString('utf8')) as Record<string, unknown>
    } catch {
      throw new OcipullError('ERR_UNAUTHORIZED', `${what}: ${tokenWhat}: response is not JSON`)
    }
    const token = typeof doc['token'] === 'string' ? doc['token'] : doc['access_token']
    if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) {
      throw new OcipullError('ERR_UNAUTHORIZED', `${what}: ${tokenWhat}: response has no token`)
    }
    const lifetime =
      typeof doc['expires_in'] === 'number' && doc['expires_in'] > 0
        ? doc['expires_in'] * 1000
        : (this.options.defaultTokenLifetimeMs ?? 60_000)
    return { header: `Bearer ${token}`, expires: this.now() + Math.max(0, lifetime - EXPIRY_MARGIN_MS) }
  }
}

function cacheKey(scope: AuthScope): string {
  return `${scope.registry}\n${scope.repository}\n${scope.actions.join(',')}`
}

function basicHeader(c: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`
}

function unauthorized(what: string, problem: string, detail: string): OcipullError {
  return new OcipullError(
    'ERR_UNAUTHORIZED',
    `${what}: unauthorized: ${problem}${detail ? ` (${detail})` : ''}`,
  )
}
