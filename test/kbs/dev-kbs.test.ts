import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runtimeDataDigest } from '../../src/kbs/runtime-data.js'
import { type DevKbs, startDevKbs } from '../../src/kbs/server/dev-kbs.js'
import { generateTeeKey, type TeeKey } from '../../src/kbs/tee-key.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'

// The development KBS seen from the wire: Trustee's formats and status codes, and hostile requests.

const ERR = 'https://github.com/confidential-containers/kbs/errors/'
const ADMIN = 'dev-kbs-admin-token-0123456789'

let kbs: DevKbs
let repo: string
let teeKey: TeeKey

beforeAll(async () => {
  repo = await makeTempDir()
  await mkdir(join(repo, 'default', 'key'), { recursive: true })
  await writeFile(join(repo, 'default', 'key', 'k1'), 'secret-bytes')
  kbs = await startDevKbs({ repository: repo, adminToken: ADMIN })
  teeKey = await generateTeeKey()
})
afterAll(async () => {
  await kbs?.close()
  await removeTempDirs()
})

async function call(
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  o: { body?: string | Buffer; cookie?: string; auth?: string } = {},
) {
  const res = await request(`${kbs.url}${path}`, {
    method,
    headers: {
      ...(o.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(o.cookie === undefined ? {} : { cookie: o.cookie }),
      ...(o.auth === undefined ? {} : { authorization: o.auth }),
    },
    ...(o.body === undefined ? {} : { body: o.body }),
  })
  const text = await res.body.text()
  return {
    status: res.statusCode,
    headers: res.headers,
    text,
    json: () => JSON.parse(text) as Record<string, unknown>,
  }
}

const authBody = (o: Record<string, unknown> = {}) =>
  JSON.stringify({ version: '0.4.0', tee: 'sample', 'extra-params': {}, ...o })

async function authed() {
  const res = await call('POST', '/kbs/v0/auth', { body: authBody() })
  const cookie = String(res.headers['set-cookie']).split(';')[0] as string
  return { cookie, nonce: res.json()['nonce'] as string, res }
}

function attestation(
  nonce: string,
  o: { teePubkey?: unknown; reportNonce?: string; extra?: Record<string, unknown> } = {},
) {
  const teePubkey = o.teePubkey ?? teeKey.pubkey
  // The report data covers the key as sent, as a client hashes it.
  const digest = runtimeDataDigest({
    teePubkey: teePubkey as TeeKey['pubkey'],
    nonce: o.reportNonce ?? nonce,
    additionalEvidence: '',
  })
  return JSON.stringify({
    'init-data': null,
    'runtime-data': { nonce, 'tee-pubkey': teePubkey },
    'tee-evidence': {
      primary_evidence: { svn: '1', report_data: digest.toString('base64') },
      additional_evidence: '',
    },
    ...o.extra,
  })
}

describe('RCAR as Trustee speaks it', () => {
  test('auth: challenge with "extra-params": "" and a 32-hex session cookie with Expires', async () => {
    const { res, nonce } = await authed()
    expect(res.status).toBe(200)
    expect(Object.keys(res.json())).toEqual(['nonce', 'extra-params'])
    expect(res.json()['extra-params']).toBe('')
    expect(Buffer.from(nonce, 'base64')).toHaveLength(32)
    expect(String(res.headers['set-cookie'])).toMatch(
      /^kbs-session-id=[0-9a-f]{32}; Expires=\w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT$/,
    )
  })

  test('attest: a token (a JWT) and the same cookie; attesting again returns the same token', async () => {
    const { cookie, nonce } = await authed()
    const a = await call('POST', '/kbs/v0/attest', { cookie, body: attestation(nonce) })
    expect(a.status).toBe(200)
    expect(String(a.headers['set-cookie']).split(';')[0]).toBe(cookie)
    const token = a.json()['token'] as string
    expect(token.split('.')).toHaveLength(3)
    const claims = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString())
    expect(claims.submods.cpu0['ear.veraison.annotated-evidence'].runtime_data_claims['tee-pubkey']).toEqual(
      teeKey.pubkey,
    )
    const again = await call('POST', '/kbs/v0/attest', { cookie, body: attestation(nonce) })
    expect(again.json()['token']).toBe(token)
  })

  test('resource: a flattened JWE with Trustee member order, by cookie or by bearer token', async () => {
    const { cookie, nonce } = await authed()
    const token = (await call('POST', '/kbs/v0/attest', { cookie, body: attestation(nonce) })).json()[
      'token'
    ] as string
    const byCookie = await call('GET', '/kbs/v0/resource/default/key/k1', { cookie })
    expect(byCookie.status).toBe(200)
    expect(byCookie.headers['content-type']).toBe('application/json')
    expect(Object.keys(byCookie.json())).toEqual(['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag'])
    const header = Buffer.from(byCookie.json()['protected'] as string, 'base64url').toString()
    expect(header).toMatch(
      /^\{"alg":"ECDH-ES\+A256KW","enc":"A256GCM","epk":\{"crv":"P-256","kty":"EC","x":"[\w-]{43}","y":"[\w-]{43}"\}\}$/,
    )
    expect(byCookie.text).not.toContain('=')
    const byBearer = await call('GET', '/kbs/v0/resource/default/key/k1', { auth: `Bearer ${token}` })
    expect(byBearer.status).toBe(200)
  })

  test('/healthz', async () => {
    expect((await call('GET', '/healthz')).text).toBe('ok\n')
  })
})

describe('hostile and wrong requests get Trustee error bodies', () => {
  const error = (variant: string) => ({ type: `${ERR}${variant}`, detail: expect.any(String) })

  test('protocol version 0.1.0 → 401 AttestationError', async () => {
    const r = await call('POST', '/kbs/v0/auth', { body: authBody({ version: '0.1.0' }) })
    expect(r.status).toBe(401)
    expect(r.json()).toEqual({
      type: `${ERR}AttestationError`,
      detail: 'Attestation error: KBS Client Protocol Version Mismatch',
    })
  })

  test('a TEE other than sample → 401 AttestationError', async () => {
    const r = await call('POST', '/kbs/v0/auth', { body: authBody({ tee: 'tdx' }) })
    expect([r.status, r.json()]).toEqual([401, error('AttestationError')])
  })

  test('not JSON → 401 SerdeError', async () => {
    const r = await call('POST', '/kbs/v0/auth', { body: '{' })
    expect([r.status, r.json()]).toEqual([401, error('SerdeError')])
  })

  test('an oversized body → 413, connection closed', async () => {
    const r = await call('POST', '/kbs/v0/auth', { body: Buffer.alloc(2 * 1024 * 1024, 0x20) })
    expect([r.status, r.json()]).toEqual([413, error('PayloadTooLarge')])
  })

  const attestCases: {
    name: string
    cookie?: (c: string) => string
    body: (nonce: string) => string
    want: RegExp
  }[] = [
    { name: 'no cookie', cookie: () => '', body: (n) => attestation(n), want: /no such session/ },
    {
      name: 'a forged cookie',
      cookie: () => 'kbs-session-id=00000000000000000000000000000000',
      body: (n) => attestation(n),
      want: /no such session/,
    },
    {
      name: 'another nonce',
      body: (n) => attestation(`${n}x`),
      want: /runtime-data\.nonce: not the session nonce/,
    },
    {
      name: 'report data over another nonce',
      body: (n) => attestation(n, { reportNonce: 'other' }),
      want: /does not bind/,
    },
    {
      name: 'an extra tee-pubkey member',
      body: (n) => attestation(n, { teePubkey: { ...teeKey.pubkey, kid: '1' } }),
      want: /does not bind/,
    },
    {
      name: 'a short EC coordinate',
      body: (n) => attestation(n, { teePubkey: { ...teeKey.pubkey, x: 'AAAA' } }),
      want: /tee-pubkey\.x: want 32 bytes/,
    },
    {
      name: 'a small RSA key',
      body: (n) => attestation(n, { teePubkey: { kty: 'RSA', alg: 'RSA-OAEP-256', n: 'AQAB', e: 'AQAB' } }),
      want: /tee-pubkey\.n/,
    },
    {
      name: 'RSA1_5',
      body: (n) => attestation(n, { teePubkey: { kty: 'RSA', alg: 'RSA1_5', n: 'AQAB', e: 'AQAB' } }),
      want: /alg: want RSA-OAEP-256/,
    },
    {
      name: 'init-data as JSON',
      body: (n) => attestation(n, { extra: { 'init-data': { format: 'json', body: '{}' } } }),
      want: /init-data\.format/,
    },
    {
      name: 'init-data that is not Init-Data',
      body: (n) => attestation(n, { extra: { 'init-data': { format: 'toml', body: 'a = 1' } } }),
      want: /unknown key "a"/,
    },
  ]
  for (const c of attestCases) {
    test(`attest with ${c.name} → 401 AttestationError`, async () => {
      const { cookie, nonce } = await authed()
      const r = await call('POST', '/kbs/v0/attest', {
        cookie: c.cookie ? c.cookie(cookie) : cookie,
        body: c.body(nonce),
      })
      expect([r.status, r.json()]).toEqual([401, error('AttestationError')])
      expect(r.json()['detail']).toMatch(c.want)
    })
  }

  test('a resource without a session, with an unattested session, or with a forged token → 401 TokenNotFound', async () => {
    const { cookie } = await authed()
    for (const o of [{}, { cookie }, { auth: 'Bearer a.b.c' }, { cookie: 'kbs-session-id=../../etc' }]) {
      const r = await call('GET', '/kbs/v0/resource/default/key/k1', o)
      expect([r.status, r.json()]).toEqual([
        401,
        { type: `${ERR}TokenNotFound`, detail: 'Attestation Token not found' },
      ])
    }
  })

  test('bad resource paths → 401 PluginInternalError; nothing outside the repository is read', async () => {
    const { cookie, nonce } = await authed()
    await call('POST', '/kbs/v0/attest', { cookie, body: attestation(nonce) })
    const cases: [string, number, string][] = [
      ['default/key', 401, 'PluginInternalError'],
      ['default/key/k1/x', 401, 'PluginInternalError'],
      ['default/.hidden/k1', 401, 'PluginInternalError'],
      ['default/key/%2Fetc%2Fpasswd', 401, 'PluginInternalError'],
      ['default/..%2f..%2f/etc', 401, 'PluginInternalError'],
      // URL parsing folds %2e%2e into "..", which climbs out of /kbs/v0/resource.
      ['%2e%2e/%2e%2e/etc/passwd', 404, 'InvalidRequestPath'],
    ]
    for (const [path, status, variant] of cases) {
      const r = await call('GET', `/kbs/v0/resource/${path}`, { cookie })
      expect([path, r.status, r.json()]).toEqual([path, status, error(variant)])
    }
  })

  test('unknown plugins → 404 PluginNotFound; paths outside /kbs/v0 → 404 InvalidRequestPath', async () => {
    expect((await call('GET', '/kbs/v0/nebula-ca/a/b')).json()).toEqual(error('PluginNotFound'))
    const r = await call('GET', '/etc/passwd')
    expect([r.status, r.json()]).toEqual([404, error('InvalidRequestPath')])
  })

  test('admin routes need the admin token; a traversal upload writes nothing', async () => {
    const noToken = await call('POST', '/kbs/v0/resource/a/b/c', { body: 'x' })
    expect([noToken.status, noToken.json()]).toEqual([401, error('AdminAuthAccess')])
    const attested = await authed()
    await call('POST', '/kbs/v0/attest', { cookie: attested.cookie, body: attestation(attested.nonce) })
    const withSession = await call('POST', '/kbs/v0/resource/a/b/c', { body: 'x', cookie: attested.cookie })
    expect(withSession.status).toBe(401)
    const traversal = await call('POST', '/kbs/v0/resource/..%2F..%2Fb/b/c', {
      body: 'x',
      auth: `Bearer ${ADMIN}`,
    })
    expect([traversal.status, traversal.json()]).toEqual([401, error('PluginInternalError')])
    expect(existsSync(join(repo, '..', 'b'))).toBe(false)
    const folded = await call('POST', '/kbs/v0/resource/%2e%2e/b/c', { body: 'x', auth: `Bearer ${ADMIN}` })
    expect([folded.status, folded.json()]).toEqual([404, error('PluginNotFound')])
    const policy = await call('POST', '/kbs/v0/resource-policy', {
      body: JSON.stringify({ policy: 'cGFja2FnZQ' }),
      auth: `Bearer ${ADMIN}`,
    })
    expect([policy.status, policy.json()]).toEqual([401, error('ParsePolicyError')])
  })

  test('a KBS without an admin token refuses every admin call', async () => {
    const closed = await startDevKbs({ repository: repo })
    try {
      const r = await request(`${closed.url}/kbs/v0/resource-policy`, {
        method: 'GET',
        headers: { authorization: 'Bearer anything-at-all-long' },
      })
      expect(r.statusCode).toBe(401)
      expect(await r.body.json()).toEqual({
        type: `${ERR}AdminAuthAccess`,
        detail: 'admin API disabled (no admin token)',
      })
    } finally {
      await closed.close()
    }
  })

  test('missingResourceStatus 404', async () => {
    const k = await startDevKbs({ repository: repo, missingResourceStatus: 404 })
    try {
      const a = await request(`${k.url}/kbs/v0/auth`, { method: 'POST', body: authBody() })
      const cookie = String(a.headers['set-cookie']).split(';')[0] as string
      const { nonce } = (await a.body.json()) as { nonce: string }
      const t = await request(`${k.url}/kbs/v0/attest`, {
        method: 'POST',
        body: attestation(nonce),
        headers: { cookie },
      })
      await t.body.dump()
      const r = await request(`${k.url}/kbs/v0/resource/default/key/none`, { headers: { cookie } })
      expect(r.statusCode).toBe(404)
      expect(await r.body.json()).toEqual(error('PluginInternalError'))
    } finally {
      await k.close()
    }
  })

  test('sessions are bounded: the oldest is dropped', async () => {
    const k = await startDevKbs({ repository: repo, maxSessions: 2 })
    try {
      const cookies: string[] = []
      for (let i = 0; i < 3; i++) {
        const a = await request(`${k.url}/kbs/v0/auth`, { method: 'POST', body: authBody() })
        cookies.push(String(a.headers['set-cookie']).split(';')[0] as string)
        await a.body.dump()
      }
      const first = await request(`${k.url}/kbs/v0/attest`, {
        method: 'POST',
        body: '{}',
        headers: { cookie: cookies[0] as string },
      })
      expect(((await first.body.json()) as { detail: string }).detail).toMatch(/no such session/)
    } finally {
      await k.close()
    }
  })
})
