import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { createKbsClient } from '../../src/kbs/kbs-client.js'
import { encryptResource } from '../../src/kbs/server/encrypt-resource.js'
import type { TeePubkey } from '../../src/kbs/tee-key.js'

// An in-process fake KBS, only for the faults the development KBS cannot be made to show:
// malformed and oversized bodies, bad cookies, endless 401s, 5xx, odd challenges.

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void
interface Script {
  auth?: Handler
  attest?: Handler
  resource?: Handler
}

const TOKEN = `${b64u({ alg: 'none' })}.${b64u({ exp: Math.floor(Date.now() / 1000) + 3600 })}.sig`
const ERR = 'https://github.com/confidential-containers/kbs/errors/'

function b64u(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url')
}

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(value))
}

const goodAuth: Handler = (_req, res) =>
  json(
    res,
    200,
    { nonce: 'bm9uY2U=', 'extra-params': '' },
    { 'set-cookie': 'kbs-session-id=abc123; Path=/kbs/v0' },
  )

let lastTeePubkey: TeePubkey | undefined
function rememberTeePubkey(body: Buffer): void {
  const doc = JSON.parse(body.toString()) as { 'runtime-data': { 'tee-pubkey': TeePubkey } }
  lastTeePubkey = doc['runtime-data']['tee-pubkey']
}
const goodAttest: Handler = (_req, res, body) => {
  rememberTeePubkey(body)
  json(res, 200, { token: TOKEN })
}

describe('the KBS client against a misbehaving KBS', () => {
  let server: Server
  let url: string
  let script: Script = {}
  const counts = { auth: 0, attest: 0, resource: 0 }
  const cookies: (string | undefined)[] = []

  beforeAll(async () => {
    server = createServer(async (req, res) => {
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      const body = Buffer.concat(chunks)
      const route = req.url === '/kbs/v0/auth' ? 'auth' : req.url === '/kbs/v0/attest' ? 'attest' : 'resource'
      counts[route]++
      if (route === 'resource') cookies.push(req.headers.cookie)
      const h = script[route] ?? { auth: goodAuth, attest: goodAttest, resource: undefined }[route]
      if (h === undefined) json(res, 404, { type: `${ERR}InvalidRequestPath`, detail: 'no' })
      else h(req, res, body)
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterEach(() => {
    script = {}
    counts.auth = counts.attest = counts.resource = 0
    cookies.length = 0
  })
  afterAll(async () => {
    server.closeAllConnections()
    server.close()
  })

  async function fetchError(s: Script, maxResponseBytes?: number): Promise<Error & { code?: string }> {
    script = s
    const c = createKbsClient({ url, env: {}, ...(maxResponseBytes ? { maxResponseBytes } : {}) })
    try {
      return await c.getResource('kbs:///default/key/k').then(
        () => {
          throw new Error('expected a failure')
        },
        (e: Error) => e,
      )
    } finally {
      await c.close()
    }
  }

  test('a valid exchange works (the fake is sound), with the cookie sent back', async () => {
    script = {
      resource: (_q, res) => json(res, 200, encryptResource(Buffer.from('kek'), lastTeePubkey as TeePubkey)),
    }
    const c = createKbsClient({ url, env: {} })
    try {
      expect(Buffer.from(await c.getResource('kbs:///default/key/k')).toString()).toBe('kek')
      expect(cookies).toEqual(['kbs-session-id=abc123'])
    } finally {
      await c.close()
    }
  })

  const cases: { name: string; script: Script; code: string; message?: RegExp; maxBytes?: number }[] = [
    {
      name: 'a resource body that is not a JWE',
      script: { resource: (_q, res) => json(res, 200, { hello: 'world' }) },
      code: 'ERR_KBS_PROTOCOL',
      message: /hello: unexpected member/,
    },
    {
      name: 'a JWE with a flipped tag',
      script: {
        resource: (_q, res) => {
          const jwe = encryptResource(Buffer.from('kek'), lastTeePubkey as TeePubkey)
          json(res, 200, { ...jwe, tag: Buffer.alloc(16).toString('base64url') })
        },
      },
      code: 'ERR_KBS_PROTOCOL',
      message: /cannot decrypt the JWE/,
    },
    {
      name: 'an oversized resource body (declared)',
      script: { resource: (_q, res) => res.writeHead(200, { 'content-length': '10000000' }).end() },
      code: 'ERR_KBS_PROTOCOL',
      message: /exceeds the limit of 4096/,
      maxBytes: 4096,
    },
    {
      name: 'an oversized resource body (chunked, endless)',
      script: {
        resource: (_q, res) => {
          res.writeHead(200)
          const chunk = Buffer.alloc(64 * 1024, 'a')
          const pump = () => {
            while (res.write(chunk)) {}
            res.once('drain', pump)
          }
          res.on('close', () => res.removeAllListeners('drain'))
          pump()
        },
      },
      code: 'ERR_KBS_PROTOCOL',
      message: /exceeds the limit of 65536/,
      maxBytes: 65536,
    },
    {
      name: 'an oversized challenge',
      script: {
        auth: (_q, res) =>
          json(res, 200, { nonce: 'x'.repeat(300_000) }, { 'set-cookie': 'kbs-session-id=a' }),
      },
      code: 'ERR_KBS_PROTOCOL',
    },
    {
      name: 'a challenge without a cookie',
      script: { auth: (_q, res) => json(res, 200, { nonce: 'n', 'extra-params': '' }) },
      code: 'ERR_KBS_PROTOCOL',
      message: /no kbs-session-id cookie/,
    },
    {
      name: 'a cookie with another name only',
      script: { auth: (_q, res) => json(res, 200, { nonce: 'n' }, { 'set-cookie': 'session=abc' }) },
      code: 'ERR_KBS_PROTOCOL',
      message: /no kbs-session-id cookie/,
    },
    {
      name: 'a malformed kbs-session-id cookie',
      script: {
        auth: (_q, res) => json(res, 200, { nonce: 'n' }, { 'set-cookie': 'kbs-session-id=a"b\\c' }),
      },
      code: 'ERR_KBS_PROTOCOL',
      message: /malformed kbs-session-id cookie/,
    },
    {
      name: 'a challenge that selects sm3',
      script: {
        auth: (_q, res) =>
          json(
            res,
            200,
            { nonce: 'n', 'extra-params': { 'selected-hash-algorithm': 'sm3' } },
            { 'set-cookie': 'kbs-session-id=a' },
          ),
      },
      code: 'ERR_KBS_PROTOCOL',
      message: /hash algorithm/,
    },
    {
      name: 'a challenge without a nonce',
      script: {
        auth: (_q, res) => json(res, 200, { 'extra-params': '' }, { 'set-cookie': 'kbs-session-id=a' }),
      },
      code: 'ERR_KBS_PROTOCOL',
      message: /nonce: missing/,
    },
    {
      name: 'a token that is not a JWT',
      script: { attest: (_q, res) => json(res, 200, { token: 'opaque' }) },
      code: 'ERR_KBS_PROTOCOL',
      message: /token: want a JWT/,
    },
    {
      name: 'an attestation refused with a Trustee error body',
      script: {
        attest: (_q, res) => json(res, 401, { type: `${ERR}AttestationError`, detail: 'bad evidence' }),
      },
      code: 'ERR_ATTESTATION_FAILED',
      message: /refused: AttestationError: bad evidence/,
    },
    {
      name: 'a 401 without a {type, detail} body',
      script: {
        resource: (_q, res) => res.writeHead(401, { 'content-type': 'text/html' }).end('<h1>no</h1>'),
      },
      code: 'ERR_KBS_PROTOCOL',
      message: /HTTP 401 without a \{type, detail\} JSON body/,
    },
    {
      name: 'a 403 (older Trustee PolicyDeny)',
      script: {
        resource: (_q, res) =>
          json(res, 403, { type: `${ERR}PolicyDeny`, detail: 'Access denied by policy' }),
      },
      code: 'ERR_KBS_DENIED',
      message: /denied: PolicyDeny/,
    },
    {
      name: 'a 404',
      script: {
        resource: (_q, res) => json(res, 404, { type: `${ERR}PluginNotFound`, detail: 'Plugin x not found' }),
      },
      code: 'ERR_KEY_UNAVAILABLE',
      message: /not found \(PluginNotFound/,
    },
    {
      name: 'a 503 on the resource',
      script: { resource: (_q, res) => res.writeHead(503).end() },
      code: 'ERR_KEY_UNAVAILABLE',
      message: /HTTP 503/,
    },
    {
      name: 'a 500 on auth',
      script: { auth: (_q, res) => res.writeHead(500).end() },
      code: 'ERR_KEY_UNAVAILABLE',
    },
    {
      name: 'a 302 on the resource',
      script: { resource: (_q, res) => res.writeHead(302, { location: 'http://example.invalid/' }).end() },
      code: 'ERR_KBS_PROTOCOL',
      message: /unexpected HTTP 302/,
    },
    {
      name: 'a connection cut mid-body',
      script: {
        resource: (_q, res) => {
          res.writeHead(200, { 'content-length': '1000' })
          res.write('{"protected":')
          setTimeout(() => res.socket?.destroy(), 20)
        },
      },
      code: 'ERR_KEY_UNAVAILABLE',
    },
  ]
  for (const c of cases) {
    test(c.name, async () => {
      const err = await fetchError(c.script, c.maxBytes)
      expect(err.code).toBe(c.code)
      if (c.message) expect(err.message).toMatch(c.message)
    })
  }

  test('401 on every GET: re-attests and retries, bounded (3 GETs, 3 attestations), then ERR_KBS_DENIED', async () => {
    const err = await fetchError({
      resource: (_q, res) =>
        json(res, 401, { type: `${ERR}TokenNotFound`, detail: 'Attestation Token not found' }),
    })
    expect(err.code).toBe('ERR_KBS_DENIED')
    expect(err.message).toMatch(
      /refused \(after 3 attestations\): TokenNotFound: Attestation Token not found/,
    )
    expect(counts).toEqual({ auth: 3, attest: 3, resource: 3 })
  })

  test('a 401 once (session lost): one more attestation, then the resource', async () => {
    let first = true
    script = {
      resource: (_q, res) => {
        if (first) {
          first = false
          json(res, 401, { type: `${ERR}TokenNotFound`, detail: 'Attestation Token not found' })
        } else json(res, 200, encryptResource(Buffer.from('kek'), lastTeePubkey as TeePubkey))
      },
    }
    const c = createKbsClient({ url, env: {} })
    try {
      expect(Buffer.from(await c.getResource('kbs:///default/key/k')).toString()).toBe('kek')
      expect(counts).toEqual({ auth: 2, attest: 2, resource: 2 })
    } finally {
      await c.close()
    }
  })

  test('an attest response may renew the cookie: the renewed one is sent', async () => {
    script = {
      attest: (_req, res, body) => {
        rememberTeePubkey(body)
        json(
          res,
          200,
          { token: TOKEN },
          { 'set-cookie': 'kbs-session-id=renewed; Expires=Wed, 21 Oct 2099 07:28:00 GMT' },
        )
      },
      resource: (_q, res) => json(res, 200, encryptResource(Buffer.from('kek'), lastTeePubkey as TeePubkey)),
    }
    const c = createKbsClient({ url, env: {} })
    try {
      await c.getResource('kbs:///default/key/k')
      expect(cookies).toEqual(['kbs-session-id=renewed'])
    } finally {
      await c.close()
    }
  })

  test('an expired token makes the next call attest again', async () => {
    const expired = `${b64u({ alg: 'none' })}.${b64u({ exp: Math.floor(Date.now() / 1000) - 1 })}.sig`
    script = {
      attest: (_req, res, body) => {
        rememberTeePubkey(body)
        json(res, 200, { token: expired })
      },
      resource: (_q, res) => json(res, 200, encryptResource(Buffer.from('kek'), lastTeePubkey as TeePubkey)),
    }
    const c = createKbsClient({ url, env: {} })
    try {
      await c.getResource('kbs:///default/key/a')
      await c.getResource('kbs:///default/key/b')
      expect(counts.auth).toBeGreaterThanOrEqual(2)
    } finally {
      await c.close()
    }
  })
})
