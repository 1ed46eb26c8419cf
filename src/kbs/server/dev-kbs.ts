import { createHash, timingSafeEqual } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { isOcipullError } from '../../errors.js'
import { KBS_PROTOCOL_VERSION } from '../rcar-messages.js'
import type { TeePubkey } from '../tee-key.js'
import { createTokenIssuer } from './attestation-token.js'
import { encryptResource, type JweTestInputs } from './encrypt-resource.js'
import {
  bearerToken,
  KbsHttpError,
  readRequestBody,
  requestCookie,
  sendError,
  sendJson,
} from './http-exchange.js'
import { isResourcePath, type LocalFsRepository, localFsRepository } from './local-fs-repository.js'
import { verifySampleAttestation } from './sample-verifier.js'
import { createSessionStore, type KbsSession } from './sessions.js'

/** The development KBS's resource policy: Trustee's allow-all rego, or deny everything. */
export type ResourcePolicy = 'allow-all' | 'deny'

export interface DevKbsOptions {
  /** The LocalFs repository directory: resources are files `<dir>/<repository>/<type>/<tag>`. */
  repository: string
  /** Default 127.0.0.1. */
  host?: string
  /** Default 0 (a free port). */
  port?: number
  /** Serve HTTPS with this key and certificate chain (PEM). */
  tls?: { key: string; cert: string }
  /**
   * The bearer token the admin routes require (`Authorization: Bearer <token>`): uploading and
   * deleting resources, setting the resource policy. Without one the admin routes answer 401.
   */
  adminToken?: string
  /** Default allow-all. */
  policy?: ResourcePolicy
  /** A missing resource: 401 PluginInternalError as Trustee (default), or 404. */
  missingResourceStatus?: 401 | 404
  /** Session and token lifetime (default 300 s, Trustee's default). */
  sessionTtlSeconds?: number
  /** Sessions kept at most (default 4096; the oldest go first). */
  maxSessions?: number
  /** The largest resource uploaded or served (default 16 MiB). */
  maxResourceBytes?: number
  /** Fixed JWE inputs, to reproduce test vectors byte for byte. Tests only. */
  jweTestInputs?: JweTestInputs
}

/** A running development KBS. */
export interface DevKbs {
  /** `http://127.0.0.1:PORT` (or https). */
  readonly url: string
  readonly repository: LocalFsRepository
  policy: ResourcePolicy
  /** Requests answered per route (any status), for tests that count round trips. */
  readonly stats: { auth: number; attest: number; resource: number }
  close(): Promise<void>
}

const MAX_RCAR_BODY = 1024 * 1024

/**
 * Starts a development KBS speaking Trustee's RCAR protocol 0.4.0 with the `sample` verifier,
 * serving resources from a LocalFs repository as Trustee's JWE responses. For tests and local
 * development: the sample TEE proves nothing, so never put real secrets in it.
 *
 * Routes: `POST /kbs/v0/auth`, `POST /kbs/v0/attest`, `GET /kbs/v0/resource/<r>/<t>/<g>` (session
 * cookie or `Authorization: Bearer <token>`), and the admin routes `POST|DELETE
 * /kbs/v0/resource/<r>/<t>/<g>` (raw bytes), `GET|POST /kbs/v0/resource-policy`
 * (`{"policy":"allow-all"|"deny"}`), plus `GET /healthz`. Errors are Trustee's JSON bodies, 401
 * for everything but unknown routes (404).
 */
export async function startDevKbs(options: DevKbsOptions): Promise<DevKbs> {
  const ttlSeconds = options.sessionTtlSeconds ?? 300
  const maxResourceBytes = options.maxResourceBytes ?? 16 * 1024 * 1024
  const missingStatus = options.missingResourceStatus ?? 401
  const repository = localFsRepository(options.repository, { maxBytes: maxResourceBytes })
  const sessions = createSessionStore({ ttlMs: ttlSeconds * 1000, max: options.maxSessions ?? 4096 })
  const tokens = await createTokenIssuer()
  const adminDigest =
    options.adminToken === undefined ? undefined : createHash('sha256').update(options.adminToken).digest()
  if (options.adminToken !== undefined && options.adminToken.length < 16) {
    throw new TypeError('startDevKbs: adminToken: want at least 16 characters')
  }
  let policy: ResourcePolicy = options.policy ?? 'allow-all'
  const stats = { auth: 0, attest: 0, resource: 0 }

  const setCookie = (s: KbsSession) => ({
    'set-cookie': `kbs-session-id=${s.id}; Expires=${new Date(s.expiresAt).toUTCString()}`,
  })

  function requireAdmin(req: IncomingMessage): void {
    const token = bearerToken(req)
    if (adminDigest === undefined)
      throw new KbsHttpError(401, 'AdminAuthAccess', 'admin API disabled (no admin token)')
    const given = createHash('sha256')
      .update(token ?? '')
      .digest()
    if (token === undefined || !timingSafeEqual(given, adminDigest)) {
      throw new KbsHttpError(401, 'AdminAuthAccess', `admin access denied for endpoint ${req.url ?? ''}`)
    }
  }

  async function auth(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseBody(await readRequestBody(req, MAX_RCAR_BODY))
    if (body['version'] !== KBS_PROTOCOL_VERSION) {
      throw new KbsHttpError(
        401,
        'AttestationError',
        'Attestation error: KBS Client Protocol Version Mismatch',
      )
    }
    if (body['tee'] !== 'sample') {
      throw new KbsHttpError(
        401,
        'AttestationError',
        'Attestation error: only the sample TEE is verified here',
      )
    }
    const session = sessions.create('sample')
    sendJson(res, 200, { nonce: session.nonce, 'extra-params': '' }, setCookie(session))
  }

  async function attest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readRequestBody(req, MAX_RCAR_BODY)
    const session = sessions.get(requestCookie(req, 'kbs-session-id'))
    if (session === undefined)
      throw new KbsHttpError(401, 'AttestationError', 'Attestation error: no such session')
    if (session.attested === undefined) {
      let verified: ReturnType<typeof verifySampleAttestation>
      try {
        verified = verifySampleAttestation(body, session.nonce)
      } catch (err) {
        if (!isOcipullError(err)) throw err
        throw new KbsHttpError(401, 'AttestationError', `Attestation error: ${err.message}`)
      }
      const token = await tokens.issue(
        {
          tee: session.tee,
          teePubkey: verified.teePubkey,
          evidence: verified.evidence,
          ...(verified.initData === undefined ? {} : { initData: verified.initData }),
        },
        Math.max(1, Math.floor((session.expiresAt - Date.now()) / 1000)),
      )
      session.attested = { token, teePubkey: verified.teePubkey }
    }
    sendJson(res, 200, { token: session.attested.token }, setCookie(session))
  }

  async function teePubkeyOf(req: IncomingMessage): Promise<TeePubkey> {
    const session = sessions.get(requestCookie(req, 'kbs-session-id'))
    if (session?.attested !== undefined) return session.attested.teePubkey
    const token = bearerToken(req)
    const fromToken = token === undefined ? undefined : await tokens.verify(token)
    if (fromToken === undefined) throw new KbsHttpError(401, 'TokenNotFound', 'Attestation Token not found')
    return fromToken
  }

  async function resource(req: IncomingMessage, res: ServerResponse, path: string[]): Promise<void> {
    if (req.method === 'GET') {
      const teePubkey = await teePubkeyOf(req)
      if (!isResourcePath(path)) throw new KbsHttpError(401, 'PluginInternalError', 'Plugin internal error')
      if (policy === 'deny') throw new KbsHttpError(401, 'PolicyDeny', 'Access denied by policy')
      const bytes = await repository.read(path)
      if (bytes === undefined)
        throw new KbsHttpError(missingStatus, 'PluginInternalError', 'Plugin internal error')
      sendJson(res, 200, encryptResource(bytes, teePubkey, options.jweTestInputs))
      return
    }
    requireAdmin(req)
    if (!isResourcePath(path)) throw new KbsHttpError(401, 'PluginInternalError', 'invalid resource path')
    if (req.method === 'POST' || req.method === 'PUT') {
      await repository.write(path, await readRequestBody(req, maxResourceBytes))
      res.writeHead(200, { 'content-length': 0 }).end()
      return
    }
    if (req.method === 'DELETE') {
      if (!(await repository.delete(path)))
        throw new KbsHttpError(401, 'PluginInternalError', 'no such resource')
      res.writeHead(200, { 'content-length': 0 }).end()
      return
    }
    throw new KbsHttpError(404, 'InvalidRequestPath', `Request path ${req.url ?? ''} is invalid`)
  }

  async function resourcePolicy(req: IncomingMessage, res: ServerResponse): Promise<void> {
    requireAdmin(req)
    if (req.method === 'GET') return sendJson(res, 200, { policy })
    const body = parseBody(await readRequestBody(req, 64 * 1024))
    if (body['policy'] !== 'allow-all' && body['policy'] !== 'deny') {
      throw new KbsHttpError(
        401,
        'ParsePolicyError',
        'Failed to parse policy: the development KBS takes {"policy":"allow-all"} or {"policy":"deny"}',
      )
    }
    policy = body['policy']
    res.writeHead(200, { 'content-length': 0 }).end()
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://kbs.invalid')
    if (url.pathname === '/healthz' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n')
      return
    }
    const invalid = new KbsHttpError(404, 'InvalidRequestPath', `Request path ${url.pathname} is invalid`)
    if (!url.pathname.startsWith('/kbs/v0/')) throw invalid
    const [plugin = '', ...rest] = url.pathname.slice('/kbs/v0/'.length).split('/')
    if (plugin === 'auth' && rest.length === 0 && req.method === 'POST') {
      stats.auth++
      return auth(req, res)
    }
    if (plugin === 'attest' && rest.length === 0 && req.method === 'POST') {
      stats.attest++
      return attest(req, res)
    }
    if (plugin === 'resource') {
      stats.resource++
      return resource(req, res, rest)
    }
    if (plugin === 'resource-policy' && rest.length === 0) return resourcePolicy(req, res)
    if (plugin === 'auth' || plugin === 'attest' || plugin === 'resource-policy') throw invalid
    throw new KbsHttpError(404, 'PluginNotFound', `Plugin ${plugin.slice(0, 64)} not found`)
  }

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy()
        return
      }
      const e = err instanceof KbsHttpError ? err : new KbsHttpError(500, 'InternalError', 'internal error')
      // Unread request bytes would otherwise hold the connection; close it after answering.
      if (!req.complete) res.setHeader('connection', 'close')
      sendError(res, e)
    })
  }
  const server: Server = options.tls ? createHttpsServer({ ...options.tls }, handler) : createServer(handler)
  server.requestTimeout = 60_000
  server.headersTimeout = 30_000
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1')
  await once(server, 'listening')
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `${options.tls ? 'https' : 'http'}://${host}:${address.port}`,
    repository,
    stats,
    get policy() {
      return policy
    },
    set policy(p: ResourcePolicy) {
      policy = p
    },
    async close() {
      sessions.clear()
      const closed = once(server, 'close')
      server.close()
      server.closeAllConnections()
      await closed
    },
  }
}

function parseBody(bytes: Buffer): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new KbsHttpError(401, 'SerdeError', 'Serialize/Deserialize failed')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new KbsHttpError(401, 'SerdeError', 'Serialize/Deserialize failed')
  }
  return value as Record<string, unknown>
}
