import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { parseInitData } from '../../src/initdata/parse-initdata.js'
import { createKbsClient, type KbsClientOptions } from '../../src/kbs/kbs-client.js'
import { type DevKbs, startDevKbs } from '../../src/kbs/server/dev-kbs.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { requireTool } from '../rig/tools.js'
import {
  fixtureText,
  intermediates,
  makeTestCa,
  type TestCa,
  vectorEphemeralKey,
  vectorTeeKeyP256,
} from './kbs-test-kit.js'

const KEK = Buffer.from('0123456789abcdef0123456789abcdef')
const ADMIN = 'test-admin-token-0123456789'

async function seed(dir: string, path: string, bytes: Uint8Array) {
  await mkdir(join(dir, ...path.split('/').slice(0, 2)), { recursive: true })
  await writeFile(join(dir, ...path.split('/')), bytes)
}

afterAll(removeTempDirs)

describe('the KBS client against the development KBS over HTTP', () => {
  let repo: string
  let kbs: DevKbs
  const clients: { close(): Promise<void> }[] = []
  const client = (o: Partial<KbsClientOptions> = {}) => {
    const c = createKbsClient({ url: kbs.url, env: {}, ...o })
    clients.push(c)
    return c
  }

  beforeAll(async () => {
    repo = await makeTempDir()
    await seed(repo, 'default/key/key_id1', KEK)
    await seed(repo, 'default/policy/big', Buffer.alloc(300_000, 7))
    kbs = await startDevKbs({ repository: repo, adminToken: ADMIN })
  })
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await kbs?.close()
  })

  for (const teeKeyAlgorithm of ['ECDH-ES+A256KW-P256', 'ECDH-ES+A256KW-P521', 'RSA-OAEP-256'] as const) {
    test(`attests and fetches a resource with a ${teeKeyAlgorithm} TEE key`, async () => {
      const c = client({ teeKeyAlgorithm })
      expect(Buffer.from(await c.getResource('kbs:///default/key/key_id1'))).toEqual(KEK)
    })
  }

  test('the URI host is ignored; resources of any size up to the cap come through', async () => {
    const c = client()
    expect(Buffer.from(await c.getResource('kbs://elsewhere.example:1234/default/key/key_id1'))).toEqual(KEK)
    expect(Buffer.from(await c.getResource('kbs:///default/policy/big'))).toEqual(Buffer.alloc(300_000, 7))
  })

  test('one attestation serves parallel calls; resources are cached per URI for the session', async () => {
    const before = { ...kbs.stats }
    const c = client()
    const got = await Promise.all([1, 2, 3, 4].map(() => c.getResource('kbs:///default/key/key_id1')))
    for (const g of got) expect(Buffer.from(g)).toEqual(KEK)
    await c.getResource('kbs:///default/key/key_id1')
    expect(kbs.stats.auth - before.auth).toBe(1)
    expect(kbs.stats.attest - before.attest).toBe(1)
    expect(kbs.stats.resource - before.resource).toBe(1)
    // The caller gets a copy: scribbling on it does not change the cache.
    got[0]?.fill(0)
    expect(Buffer.from(await c.getResource('kbs:///default/key/key_id1'))).toEqual(KEK)
  })

  test('a missing resource is ERR_KEY_UNAVAILABLE after the bounded re-attestations (401, like Trustee)', async () => {
    const before = { ...kbs.stats }
    const err = await client({ maxAttempts: 2 })
      .getResource('kbs:///default/key/missing')
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_KEY_UNAVAILABLE' })
    expect((err as Error).message).toMatch(
      /GET \/kbs\/v0\/resource\/default\/key\/missing: refused \(after 2/,
    )
    expect((err as Error).message).toMatch(/PluginInternalError/)
    expect(kbs.stats.auth - before.auth).toBe(2)
    expect(kbs.stats.resource - before.resource).toBe(2)
  })

  test('a policy that denies is ERR_KBS_DENIED at once (no re-attestation)', async () => {
    kbs.policy = 'deny'
    try {
      const before = { ...kbs.stats }
      const err = await client()
        .getResource('kbs:///default/key/key_id1')
        .catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'ERR_KBS_DENIED' })
      expect((err as Error).message).toMatch(/PolicyDeny: Access denied by policy/)
      expect(kbs.stats.auth - before.auth).toBe(1)
    } finally {
      kbs.policy = 'allow-all'
    }
  })

  test('Init-Data is sent with the attestation (the KBS refuses an invalid one)', async () => {
    const good = parseInitData(await import('node:fs').then((fs) => fs.readFileSync(initDataFixture())))
    expect(Buffer.from(await client({ initData: good }).getResource('kbs:///default/key/key_id1'))).toEqual(
      KEK,
    )
    const err = await client({ initData: { text: 'version = "9"' } })
      .getResource('kbs:///default/key/key_id1')
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_ATTESTATION_FAILED' })
    expect((err as Error).message).toMatch(/AttestationError: .*init-data\.body: version/)
  })

  test('an attester that fails is ERR_ATTESTATION_FAILED; one with the wrong report data is refused', async () => {
    const broken = client({
      attester: {
        tee: 'sample',
        evidence: async () => {
          throw new Error('no TEE device')
        },
      },
    })
    await expect(broken.getResource('kbs:///default/key/key_id1')).rejects.toMatchObject({
      code: 'ERR_ATTESTATION_FAILED',
      message: 'sample attester: no TEE device',
    })
    const lying = client({
      attester: {
        tee: 'sample',
        evidence: async () => ({ svn: '1', report_data: Buffer.alloc(48).toString('base64') }),
      },
    })
    const err = await lying.getResource('kbs:///default/key/key_id1').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_ATTESTATION_FAILED' })
    expect((err as Error).message).toMatch(/report_data: does not bind the runtime data/)
  })

  test('a TEE the KBS does not verify is ERR_ATTESTATION_FAILED', async () => {
    const err = await client({ attester: { tee: 'tdx', evidence: async () => ({}) } })
      .getResource('kbs:///default/key/key_id1')
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_ATTESTATION_FAILED' })
  })

  test('the vector 06 response comes over HTTP byte for byte (fixed TEE key, ephemeral key, CEK, IV)', async () => {
    const i = intermediates()
    const dir = await makeTempDir()
    await seed(dir, 'default/key/key_id1', Buffer.from(i.payload_b64, 'base64'))
    const fixed = await startDevKbs({
      repository: dir,
      jweTestInputs: {
        ephemeralPrivateKey: vectorEphemeralKey(),
        cek: Buffer.from(i.cek_hex, 'hex'),
        iv: Buffer.from(i.iv_hex, 'hex'),
      },
    })
    try {
      const teeKey = vectorTeeKeyP256()
      // Raw RCAR, to see the body bytes.
      const auth = await request(`${fixed.url}/kbs/v0/auth`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ version: '0.4.0', tee: 'sample', 'extra-params': {} }),
      })
      const cookie = String(auth.headers['set-cookie']).split(';')[0] as string
      const { nonce } = (await auth.body.json()) as { nonce: string }
      const { runtimeDataDigest } = await import('../../src/kbs/runtime-data.js')
      const digest = runtimeDataDigest({ teePubkey: teeKey.pubkey, nonce, additionalEvidence: '' })
      const attest = await request(`${fixed.url}/kbs/v0/attest`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie },
        body: JSON.stringify({
          'init-data': null,
          'runtime-data': { nonce, 'tee-pubkey': teeKey.pubkey },
          'tee-evidence': {
            primary_evidence: { svn: '1', report_data: digest.toString('base64') },
            additional_evidence: '',
          },
        }),
      })
      expect(attest.statusCode).toBe(200)
      await attest.body.dump()
      const res = await request(`${fixed.url}/kbs/v0/resource/default/key/key_id1`, { headers: { cookie } })
      expect(res.statusCode).toBe(200)
      expect(res.headers['content-type']).toBe('application/json')
      const body = await res.body.text()
      expect(body).toBe(JSON.stringify(JSON.parse(fixtureText('06-resource-response.ecdh-es-a256kw.json'))))
      // And through the client with the same fixed key.
      const c = client({ url: fixed.url, teeKey })
      expect(Buffer.from(await c.getResource('kbs:///default/key/key_id1')).toString('base64')).toBe(
        i.payload_b64,
      )
    } finally {
      await fixed.close()
    }
  })

  test('a KBS that forgot the session (restart): the client attests again and succeeds', async () => {
    const dir = await makeTempDir()
    await seed(dir, 'a/b/c', KEK)
    await seed(dir, 'a/b/d', KEK)
    const first = await startDevKbs({ repository: dir })
    const port = Number(new URL(first.url).port)
    const c = client({ url: first.url })
    expect(Buffer.from(await c.getResource('kbs:///a/b/c'))).toEqual(KEK)
    await first.close()
    const second = await startDevKbs({ repository: dir, port })
    try {
      expect(Buffer.from(await c.getResource('kbs:///a/b/d'))).toEqual(KEK)
      expect(second.stats).toEqual({ auth: 1, attest: 1, resource: 2 })
    } finally {
      await second.close()
    }
  })

  test('admin routes: upload, fetch, delete, policy; a wrong token is refused', async () => {
    const admin = (method: 'POST' | 'DELETE' | 'GET', path: string, body?: Buffer | string, token = ADMIN) =>
      request(`${kbs.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { body }),
      })
    const bad = await admin('POST', '/kbs/v0/resource/up/key/one', KEK, 'wrong-token-0123456789')
    expect(bad.statusCode).toBe(401)
    expect(await bad.body.json()).toEqual({
      type: 'https://github.com/confidential-containers/kbs/errors/AdminAuthAccess',
      detail: 'admin access denied for endpoint /kbs/v0/resource/up/key/one',
    })
    const up = await admin('POST', '/kbs/v0/resource/up/key/one', KEK)
    expect(up.statusCode).toBe(200)
    await up.body.dump()
    expect((await readdir(join(repo, 'up', 'key'))).sort()).toEqual(['one'])
    expect(Buffer.from(await client().getResource('kbs:///up/key/one'))).toEqual(KEK)
    const del = await admin('DELETE', '/kbs/v0/resource/up/key/one')
    expect(del.statusCode).toBe(200)
    await del.body.dump()
    await expect(client({ maxAttempts: 1 }).getResource('kbs:///up/key/one')).rejects.toMatchObject({
      code: 'ERR_KEY_UNAVAILABLE',
    })
    const deny = await admin('POST', '/kbs/v0/resource-policy', JSON.stringify({ policy: 'deny' }))
    expect(deny.statusCode).toBe(200)
    await deny.body.dump()
    expect(await (await admin('GET', '/kbs/v0/resource-policy')).body.json()).toEqual({ policy: 'deny' })
    await expect(client().getResource('kbs:///default/key/key_id1')).rejects.toMatchObject({
      code: 'ERR_KBS_DENIED',
    })
    const allow = await admin('POST', '/kbs/v0/resource-policy', JSON.stringify({ policy: 'allow-all' }))
    expect(allow.statusCode).toBe(200)
    await allow.body.dump()
  })

  test('an aborted signal stops the call with ERR_ABORTED; close() clears the client', async () => {
    const c = client()
    const controller = new AbortController()
    controller.abort()
    await expect(
      c.getResource('kbs:///default/key/key_id1', { signal: controller.signal }),
    ).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    })
    const late = new AbortController()
    const p = c.getResource('kbs:///default/key/key_id1', { signal: late.signal })
    late.abort()
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    await c.close()
    await expect(c.getResource('kbs:///default/key/key_id1')).rejects.toThrow(TypeError)
  })

  test('bad URIs are ERR_RESOURCE_URI_INVALID before any request', async () => {
    const before = { ...kbs.stats }
    for (const uri of [
      'kbs:///a/b',
      'kbs:///a/../c',
      'file:///etc/passwd',
      'kbs://default/key/x',
      'kbs:///a/b/c#f',
    ]) {
      await expect(client().getResource(uri)).rejects.toMatchObject({ code: 'ERR_RESOURCE_URI_INVALID' })
    }
    expect(kbs.stats).toEqual(before)
  })
})

describe('the KBS client over HTTPS', () => {
  let ca: TestCa
  let kbs: DevKbs

  beforeAll(async () => {
    if (!requireTool('openssl')) return
    const dir = await makeTempDir()
    ca = await makeTestCa(dir)
    const repo = await makeTempDir()
    await seed(repo, 'default/key/key_id1', KEK)
    kbs = await startDevKbs({ repository: repo, tls: { key: ca.key, cert: ca.cert } })
  })
  afterAll(async () => kbs?.close())

  test.skipIf(!requireTool('openssl'))('trusts the configured KBS certificate', async () => {
    expect(kbs.url).toMatch(/^https:/)
    const c = createKbsClient({ url: kbs.url, cert: ca.caPem, env: {} })
    try {
      expect(Buffer.from(await c.getResource('kbs:///default/key/key_id1'))).toEqual(KEK)
    } finally {
      await c.close()
    }
  })

  test.skipIf(!requireTool('openssl'))(
    'without it the KBS is unreachable: ERR_KEY_UNAVAILABLE caused by ERR_TLS',
    async () => {
      const c = createKbsClient({ url: kbs.url, env: {} })
      try {
        const err = await c.getResource('kbs:///default/key/key_id1').catch((e: unknown) => e)
        expect(err).toMatchObject({
          code: 'ERR_KEY_UNAVAILABLE',
          retryable: false,
          cause: { code: 'ERR_TLS' },
        })
      } finally {
        await c.close()
      }
    },
  )

  test.skipIf(!requireTool('openssl'))('a certificate for another name is refused', async () => {
    const c = createKbsClient({ url: kbs.url.replace('127.0.0.1', '127.0.0.2'), cert: ca.caPem, env: {} })
    try {
      await expect(c.getResource('kbs:///default/key/key_id1')).rejects.toMatchObject({
        code: 'ERR_KEY_UNAVAILABLE',
      })
    } finally {
      await c.close()
    }
  })
})

describe('a KBS that is down', () => {
  test('is ERR_KEY_UNAVAILABLE (retryable), caused by ERR_CONNECTION', async () => {
    const dir = await makeTempDir()
    const gone = await startDevKbs({ repository: dir })
    const url = gone.url
    await gone.close()
    const c = createKbsClient({ url, env: {} })
    try {
      const err = await c.getResource('kbs:///default/key/key_id1').catch((e: unknown) => e)
      expect(err).toMatchObject({
        code: 'ERR_KEY_UNAVAILABLE',
        retryable: true,
        cause: { code: 'ERR_CONNECTION' },
      })
      expect((err as Error).message).toMatch(/POST \/kbs\/v0\/auth: kbs unreachable/)
    } finally {
      await c.close()
    }
  })
})

function initDataFixture(): string {
  return join(import.meta.dirname, '..', 'fixtures', 'initdata', 'example-image-pull-initdata.sha384.toml')
}
