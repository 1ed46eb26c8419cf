/**
 * A small Docker/distribution token server for tests (https://distribution.github.io/distribution/spec/auth/token/).
 *
 *   GET  /token?service=S&scope=repository:NAME:pull,push[&scope=...][&account=A][&offline_token=true]
 *        with optional HTTP Basic credentials; anonymous requests get anonymous grants.
 *   POST /token  (OAuth2 form: grant_type=password|refresh_token, service, scope, client_id, ...)
 *
 * Tokens are JWTs signed with `signingKey` (ES256 for P-256 keys, RS256 for RSA) and carry the
 * certificate chain in the `x5c` header; the registry verifies it against its `rootcertbundle`.
 * Every request is recorded in `requests` so tests can check which credentials a client sent.
 */
import { createPrivateKey, type KeyObject, randomUUID } from 'node:crypto'
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { SignJWT } from 'jose'
import { PUBLIC_REPOSITORIES, TEST_PASSWORD, TEST_USERNAME } from './credentials.js'

/** One `access` entry of a token (and one parsed `scope`). */
export interface AccessEntry {
  type: string
  name: string
  actions: string[]
}

/** Decides the actions granted for one requested scope; `user` is undefined for anonymous requests. */
export type Authorizer = (user: string | undefined, scope: AccessEntry) => string[]

export interface TokenServerBehavior {
  /** username -> password. Default: { testuser: 'testpass' }. */
  users: Record<string, string>
  /** Repositories anonymous clients may pull. Default: ['public/busybox']. */
  publicRepositories: readonly string[]
  /** Token lifetime (expires_in). Default 300. */
  ttlSeconds: number
  /** Refuse anonymous requests with 401 instead of issuing anonymous tokens. Default false. */
  requireAuth: boolean
  /** Replaces the default policy (users: pull/push/delete/*; anonymous: pull on public repositories). */
  authorize: Authorizer | undefined
  /** Answer the next `times` requests (default: all) with this status and body, to simulate failures. */
  failWith: { status: number; body?: string; times?: number } | undefined
}

export interface TokenServerOptions extends Partial<TokenServerBehavior> {
  /** PEM private key (PKCS#8, SEC1 or PKCS#1). */
  signingKey: string
  /** PEM certificate(s) for the x5c header: the signing certificate first, then intermediates/root. */
  signingCertChain: string
  /** Value of `iss`; must match the registry's auth.token.issuer. */
  issuer: string
  /** Expected `service` parameter and the token's `aud`; must match auth.token.service. */
  service: string
  /** Default 127.0.0.1. */
  host?: string
  /** Default 0 (ephemeral). The rig uses 5104, the port in the token registry's realm. */
  port?: number
  /** Serve HTTPS with this PEM key/certificate; plain HTTP when absent. */
  tls?: { key: string; cert: string }
  /** How long to retry when the port is in use (e.g. by a concurrent test run). Default 30000 ms. */
  portWaitMs?: number
}

/** One request received by the token server. */
export interface TokenRequest {
  method: string
  /** Path and query as received. */
  url: string
  service: string | undefined
  /** Raw scope strings (a scope parameter containing spaces counts as several). */
  scopes: string[]
  account: string | undefined
  clientId: string | undefined
  /** POST only. */
  grantType: string | undefined
  /** The Authorization header as received. */
  authorization: string | undefined
  /** From Basic credentials (GET) or the form (POST password grant). */
  username: string | undefined
  password: string | undefined
  /** Final HTTP status of the answer. */
  status: number
  /** Access granted in the issued token (empty when none was issued). */
  granted: AccessEntry[]
  time: Date
}

export interface TokenServer {
  /** e.g. https://127.0.0.1:5104 */
  readonly url: string
  /** url + '/token': the realm a registry should advertise. */
  readonly realm: string
  readonly port: number
  readonly issuer: string
  readonly service: string
  /** Requests in arrival order (live array). */
  readonly requests: TokenRequest[]
  clearRequests(): void
  /** Changes behaviour for subsequent requests. */
  configure(patch: Partial<TokenServerBehavior>): void
  stop(): Promise<void>
}

const DEFAULT_ACTIONS = ['pull', 'push', 'delete', '*']

/** Parses `type[(class)]:name:actions`; the name may contain ':' (e.g. a registry host with a port). */
export function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(':')
  const last = scope.lastIndexOf(':')
  if (first <= 0 || last === first) return undefined
  const type = scope.slice(0, first).replace(/\(.*\)$/, '')
  const name = scope.slice(first + 1, last)
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter((a) => a !== '')
  if (name === '' || actions.length === 0) return undefined
  return { type, name, actions }
}

function certChainToX5c(pem: string): string[] {
  const blocks = [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)]
  const x5c = blocks.map((m) => (m[1] ?? '').replace(/\s+/g, ''))
  if (x5c.length === 0) throw new Error('token server: signingCertChain contains no PEM certificate')
  return x5c
}

function algorithmFor(key: KeyObject): string {
  if (key.asymmetricKeyType === 'rsa') return 'RS256'
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve
    if (curve === 'prime256v1') return 'ES256'
    if (curve === 'secp384r1') return 'ES384'
    if (curve === 'secp521r1') return 'ES512'
  }
  throw new Error(`token server: unsupported signing key type ${String(key.asymmetricKeyType)}`)
}

function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  const m = header === undefined ? null : /^Basic\s+(\S+)\s*$/i.exec(header)
  if (!m?.[1]) return undefined
  const decoded = Buffer.from(m[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

async function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const buf = chunk as Buffer
    size += buf.length
    if (size > limit) throw new Error('request body too large')
    chunks.push(buf)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function errorBody(code: string, message: string): string {
  return JSON.stringify({ errors: [{ code, message }] })
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const key = createPrivateKey(options.signingKey)
  const alg = algorithmFor(key)
  const x5c = certChainToX5c(options.signingCertChain)
  const behavior: TokenServerBehavior = {
    users: options.users ?? { [TEST_USERNAME]: TEST_PASSWORD },
    publicRepositories: options.publicRepositories ?? PUBLIC_REPOSITORIES,
    ttlSeconds: options.ttlSeconds ?? 300,
    requireAuth: options.requireAuth ?? false,
    authorize: options.authorize,
    failWith: options.failWith,
  }
  const requests: TokenRequest[] = []
  const refreshTokens = new Map<string, string>()

  const defaultAuthorize: Authorizer = (user, scope) => {
    if (user !== undefined) {
      if (scope.type === 'repository') return scope.actions.filter((a) => DEFAULT_ACTIONS.includes(a))
      if (scope.type === 'registry' && scope.name === 'catalog') return scope.actions.filter((a) => a === '*')
      return []
    }
    if (scope.type === 'repository' && behavior.publicRepositories.includes(scope.name)) {
      return scope.actions.filter((a) => a === 'pull')
    }
    return []
  }

  async function issue(user: string | undefined, scopes: string[]) {
    const authorize = behavior.authorize ?? defaultAuthorize
    const granted: AccessEntry[] = []
    for (const raw of scopes) {
      const scope = parseScope(raw)
      if (!scope) continue
      const actions = authorize(user, scope)
      if (actions.length > 0) granted.push({ type: scope.type, name: scope.name, actions })
    }
    const now = Math.floor(Date.now() / 1000)
    let jwt = new SignJWT({ access: granted })
      .setProtectedHeader({ alg, typ: 'JWT', x5c })
      .setIssuer(options.issuer)
      .setAudience(options.service)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + behavior.ttlSeconds)
      .setJti(randomUUID())
    if (user !== undefined) jwt = jwt.setSubject(user)
    const token = await jwt.sign(key)
    return { token, granted, issuedAt: new Date(now * 1000).toISOString() }
  }

  async function handle(req: IncomingMessage, res: ServerResponse, record: TokenRequest): Promise<void> {
    const send = (status: number, body: string, headers: Record<string, string> = {}) => {
      record.status = status
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
      res.end(body)
    }
    const url = new URL(req.url ?? '/', 'http://token.invalid')
    const fail = behavior.failWith
    if (fail) {
      if (fail.times !== undefined) {
        fail.times -= 1
        if (fail.times <= 0) behavior.failWith = undefined
      }
      send(fail.status, fail.body ?? errorBody('UNAVAILABLE', `injected failure ${fail.status}`))
      return
    }
    if (url.pathname !== '/token') {
      send(404, errorBody('NOT_FOUND', 'no such endpoint'))
      return
    }

    let params: URLSearchParams
    if (req.method === 'GET') {
      params = url.searchParams
    } else if (req.method === 'POST') {
      params = new URLSearchParams(await readBody(req))
      record.grantType = params.get('grant_type') ?? undefined
    } else {
      send(405, errorBody('UNSUPPORTED', 'method not allowed'), { allow: 'GET, POST' })
      return
    }
    record.service = params.get('service') ?? undefined
    record.scopes = params.getAll('scope').flatMap((s) => s.split(' ').filter((x) => x !== ''))
    record.account = params.get('account') ?? undefined
    record.clientId = params.get('client_id') ?? undefined

    if (record.service !== undefined && record.service !== options.service) {
      send(400, errorBody('INVALID_REQUEST', `unknown service ${JSON.stringify(record.service)}`))
      return
    }

    let user: string | undefined
    let refreshUser: string | undefined
    const basic = parseBasic(record.authorization)
    if (req.method === 'POST' && record.grantType === 'refresh_token') {
      refreshUser = refreshTokens.get(params.get('refresh_token') ?? '')
      if (refreshUser === undefined) {
        send(401, errorBody('UNAUTHORIZED', 'invalid refresh token'))
        return
      }
      user = refreshUser
    } else {
      let creds = basic
      if (req.method === 'POST') {
        if (record.grantType !== 'password') {
          send(400, errorBody('UNSUPPORTED', `unsupported grant_type ${JSON.stringify(record.grantType)}`))
          return
        }
        creds = { username: params.get('username') ?? '', password: params.get('password') ?? '' }
      }
      if (creds) {
        record.username = creds.username
        record.password = creds.password
        if (behavior.users[creds.username] !== creds.password) {
          send(401, errorBody('UNAUTHORIZED', 'invalid username or password'), {
            'www-authenticate': 'Basic realm="ocipull-test-token-server"',
          })
          return
        }
        user = creds.username
      } else if (behavior.requireAuth) {
        send(401, errorBody('UNAUTHORIZED', 'authentication required'), {
          'www-authenticate': 'Basic realm="ocipull-test-token-server"',
        })
        return
      }
    }

    const { token, granted, issuedAt } = await issue(user, record.scopes)
    record.granted = granted
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: behavior.ttlSeconds,
      issued_at: issuedAt,
    }
    const wantsRefresh =
      user !== undefined &&
      refreshUser === undefined &&
      (params.get('offline_token') === 'true' || params.get('access_type') === 'offline')
    if (wantsRefresh) {
      const refresh = randomUUID()
      refreshTokens.set(refresh, user as string)
      body['refresh_token'] = refresh
    }
    if (req.method === 'POST') body['scope'] = record.scopes.join(' ')
    send(200, JSON.stringify(body))
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const record: TokenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      service: undefined,
      scopes: [],
      account: undefined,
      clientId: undefined,
      grantType: undefined,
      authorization: req.headers.authorization,
      username: undefined,
      password: undefined,
      status: 0,
      granted: [],
      time: new Date(),
    }
    requests.push(record)
    handle(req, res, record).catch((err: unknown) => {
      record.status = 500
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' })
      res.end(errorBody('INTERNAL', String(err)))
    })
  }

  const server: Server = options.tls
    ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, listener)
    : createHttpServer(listener)
  const host = options.host ?? '127.0.0.1'
  const deadline = Date.now() + (options.portWaitMs ?? 30_000)
  for (;;) {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(options.port ?? 0, host, () => {
          server.off('error', reject)
          resolve()
        })
      })
      break
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'EADDRINUSE' || Date.now() > deadline) {
        throw new Error(
          `token server: cannot listen on ${host}:${String(options.port ?? 0)}: ${String(err)}` +
            (code === 'EADDRINUSE'
              ? ' (another test run, or a startRegistry("token") in this process that was not stopped?)'
              : ''),
        )
      }
      await sleep(250)
    }
  }
  const port = (server.address() as AddressInfo).port
  const url = `${options.tls ? 'https' : 'http'}://${host}:${port}`

  return {
    url,
    realm: `${url}/token`,
    port,
    issuer: options.issuer,
    service: options.service,
    requests,
    clearRequests() {
      requests.length = 0
    },
    configure(patch) {
      Object.assign(behavior, patch)
    },
    stop() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}
