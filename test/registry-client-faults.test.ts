import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, beforeAll, describe, expect, test } from 'vitest'
import { digestOf } from '../src/digest.js'
import type { Descriptor } from '../src/manifest.js'
import { MediaType } from '../src/media-types.js'
import { parseReference, type Reference } from '../src/reference.js'
import { type CredentialStore, staticCredentials } from '../src/registry/credentials.js'
import { RegistryClient, type RegistryClientOptions } from '../src/registry/registry-client.js'
import { registrySource } from '../src/registry/registry-source.js'
import { expectFailure } from './helpers/failure.js'
import {
  closedPort,
  type FaultServer,
  type FaultServerOptions,
  startFaultServer,
} from './helpers/fault-server.js'
import { hasTool } from './rig/index.js'

const REPO = 'faults/app'
const LAYER_SIZE = 300_000
const USER = { kind: 'basic', username: 'alice', password: 's3cret' } as const

const cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((f) => f()))
})

interface Setup {
  server: FaultServer
  client: RegistryClient
  ref: Reference
  manifest: Descriptor
  layer: Descriptor
}

/** A fault server with one image (tag `v1`) and a client that may talk plain HTTP to it. */
async function setup(
  serverOptions: Partial<FaultServerOptions> = {},
  clientOptions: RegistryClientOptions | ((server: FaultServer) => RegistryClientOptions) = {},
): Promise<Setup> {
  const server = await startFaultServer({ repository: REPO, ...serverOptions })
  cleanup.push(() => server.close())
  const config = server.put('{"architecture":"amd64","os":"linux"}', MediaType.OciConfig)
  const layer = server.put(randomBytes(LAYER_SIZE), MediaType.OciLayerGzip)
  const doc = { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] }
  const manifest = server.put(JSON.stringify(doc), MediaType.OciManifest, 'v1')
  const client = newClient(
    server,
    typeof clientOptions === 'function' ? clientOptions(server) : clientOptions,
  )
  return { server, client, ref: parseReference(`${server.host}/${REPO}:v1`), manifest, layer }
}

function newClient(server: FaultServer | string, options: RegistryClientOptions = {}): RegistryClient {
  const host = typeof server === 'string' ? server : server.host
  const client = new RegistryClient({ insecureRegistries: [host], retry: { baseDelayMs: 10 }, ...options })
  cleanup.push(() => client.close())
  return client
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

const withUser = (server: FaultServer): RegistryClientOptions => ({
  credentials: staticCredentials(server.host, USER),
})
const short = (d: Descriptor) => d.digest.slice(0, 'sha256:'.length + 12)
const fetchBlob = (s: Setup) => s.client.getBlob(s.ref, s.layer).then(readAll)

describe('RegistryClient against a faulty registry: blobs', () => {
  test('baseline: a blob downloads and verifies', async () => {
    const s = await setup()
    const bytes = await fetchBlob(s)
    expect(digestOf(bytes)).toBe(s.layer.digest)
  })

  test('baseline: HEAD reports the manifest digest, type and size', async () => {
    const s = await setup()
    await expect(s.client.headManifest(s.ref)).resolves.toEqual({
      digest: s.manifest.digest,
      mediaType: s.manifest.mediaType,
      size: s.manifest.size,
    })
  })

  // A cut body is detected by undici when it was framed (ERR_CONNECTION, retryable), and by the
  // size check when it was not: a body that ends with the connection looks complete to HTTP.
  test.each([
    { how: 'end', framing: 'length', code: 'ERR_CONNECTION', detail: 'other side closed' },
    { how: 'reset', framing: 'length', code: 'ERR_CONNECTION', detail: 'ECONNRESET' },
    { how: 'end', framing: 'chunked', code: 'ERR_CONNECTION', detail: 'other side closed' },
    { how: 'reset', framing: 'chunked', code: 'ERR_CONNECTION', detail: 'ECONNRESET' },
    { how: 'end', framing: 'eof', code: 'ERR_SIZE_MISMATCH', detail: `want ${LAYER_SIZE} bytes, got 100000` },
    // undici takes ECONNRESET on a connection-delimited body for its end
    { how: 'reset', framing: 'eof', code: 'ERR_SIZE_MISMATCH', detail: `want ${LAYER_SIZE} bytes, got` },
  ] as const)('a $framing-framed body cut by $how → $code', async ({ how, framing, code, detail }) => {
    const s = await setup()
    s.server.fault({ route: 'blobs', cut: { after: 100_000, how }, framing })
    const err = await expectFailure(fetchBlob(s), code, REPO, short(s.layer), detail)
    expect(err.retryable).toBe(true)
  })

  test('a complete chunked body shorter than the descriptor is ERR_SIZE_MISMATCH', async () => {
    const s = await setup()
    s.server.fault({ route: 'blobs', filler: 1000, framing: 'chunked' })
    await expectFailure(
      fetchBlob(s),
      'ERR_SIZE_MISMATCH',
      REPO,
      short(s.layer),
      `want ${LAYER_SIZE} bytes, got 1000`,
    )
  })

  test('a consumer that gives up early closes the connection', async () => {
    const s = await setup()
    s.server.fault({ route: 'blobs', stall: { after: 1000, ms: 10_000 } })
    const stream = await s.client.getBlob(s.ref, s.layer)
    stream.destroy()
    const rec = s.server.requests.find((r) => r.route === 'blobs')!
    await expect.poll(() => rec.closed, { timeout: 2_000 }).toBe(true)
  })

  test('a consumer that pauses longer than the body idle timeout does not time out', async () => {
    const s = await setup({}, { timeouts: { bodyIdleMs: 200 } })
    const stream = await s.client.getBlob(s.ref, s.layer)
    const chunks: Buffer[] = []
    for await (const chunk of stream) {
      if (chunks.push(chunk as Buffer) === 1) await sleep(800)
    }
    expect(digestOf(Buffer.concat(chunks))).toBe(s.layer.digest)
  })

  test('a flipped byte fails with ERR_DIGEST_MISMATCH at the end of the stream', async () => {
    const s = await setup()
    s.server.fault({ route: 'blobs', flipByte: 1234 })
    const stream = await s.client.getBlob(s.ref, s.layer)
    let seen = 0
    stream.on('data', (chunk: Buffer) => {
      seen += chunk.length
    })
    let ended = false
    stream.on('end', () => {
      ended = true
    })
    await expectFailure(
      new Promise((resolve, reject) => stream.on('error', reject).on('close', resolve)),
      'ERR_DIGEST_MISMATCH',
      REPO,
      short(s.layer),
    )
    expect(seen).toBe(LAYER_SIZE)
    expect(ended).toBe(false)
  })

  test('a chunked body longer than the descriptor fails with ERR_SIZE_MISMATCH without reading it all', async () => {
    const s = await setup()
    s.server.fault({ route: 'blobs', filler: Number.POSITIVE_INFINITY })
    await expectFailure(fetchBlob(s), 'ERR_SIZE_MISMATCH', REPO, short(s.layer), `${LAYER_SIZE}`)
    const rec = s.server.requests.find((r) => r.route === 'blobs')!
    await expect.poll(() => rec.closed).toBe(true)
    expect(rec.bytesSent).toBeLessThan(32 * 1024 * 1024)
  })

  test.each([
    { name: 'larger', length: LAYER_SIZE + 1 },
    { name: 'smaller', length: LAYER_SIZE - 1 },
  ])('a $name Content-Length fails with ERR_SIZE_MISMATCH before the body is read', async ({ length }) => {
    const s = await setup()
    s.server.fault({ route: 'blobs', headers: { 'content-length': String(length) } })
    await expectFailure(
      s.client.getBlob(s.ref, s.layer),
      'ERR_SIZE_MISMATCH',
      REPO,
      short(s.layer),
      String(length),
    )
  })

  test('a missing blob is ERR_NOT_FOUND', async () => {
    const s = await setup()
    const missing = { ...s.layer, digest: digestOf(Buffer.from('nope')) }
    await expectFailure(s.client.getBlob(s.ref, missing), 'ERR_NOT_FOUND', REPO, short(missing))
  })
})

describe('RegistryClient against a faulty registry: manifests', () => {
  test('a Docker-Content-Digest that does not match the bytes is ERR_DIGEST_MISMATCH', async () => {
    const s = await setup()
    const other = digestOf(Buffer.from('other'))
    s.server.fault({ route: 'manifests', headers: { 'docker-content-digest': other } })
    await expectFailure(
      s.client.getManifest(s.ref),
      'ERR_DIGEST_MISMATCH',
      REPO,
      'Docker-Content-Digest',
      other,
    )
  })

  test('a manifest fetched by digest whose bytes differ is ERR_DIGEST_MISMATCH', async () => {
    const s = await setup()
    s.server.fault({ route: 'manifests', flipByte: 20 })
    const source = registrySource(s.ref, { client: s.client })
    await expectFailure(
      source.manifest({ digest: s.manifest.digest }),
      'ERR_DIGEST_MISMATCH',
      REPO,
      s.manifest.digest,
    )
  })

  test.each([
    { name: 'with Content-Length', fault: { filler: 5 * 1024 * 1024 } },
    { name: 'chunked', fault: { filler: 5 * 1024 * 1024, framing: 'chunked' } },
    { name: 'to the end of the connection', fault: { filler: 5 * 1024 * 1024, framing: 'eof' } },
    { name: 'chunked and endless', fault: { filler: Number.POSITIVE_INFINITY } },
  ] as const)('an oversized manifest ($name) is ERR_MANIFEST_TOO_LARGE', async ({ fault }) => {
    const s = await setup()
    s.server.fault({ route: 'manifests', ...fault })
    await expectFailure(s.client.getManifest(s.ref), 'ERR_MANIFEST_TOO_LARGE', REPO, String(4 * 1024 * 1024))
    const rec = s.server.requests.find((r) => r.route === 'manifests')!
    await expect.poll(() => rec.closed).toBe(true)
    expect(rec.bytesSent).toBeLessThan(32 * 1024 * 1024)
  })

  test('a missing tag is ERR_NOT_FOUND', async () => {
    const s = await setup()
    await expectFailure(s.client.getManifest({ ...s.ref, tag: 'v2' }), 'ERR_NOT_FOUND', REPO, 'v2')
  })
})

describe('RegistryClient against a faulty registry: manifest bodies cut short', () => {
  test.each(['end', 'reset'] as const)('a manifest body cut once (%s) is fetched again', async (how) => {
    const s = await setup()
    s.server.fault({ route: 'manifests', times: 1, cut: { after: 20, how } })
    const m = await s.client.getManifest(s.ref)
    expect(m.digest).toBe(s.manifest.digest)
    expect(s.server.count('manifests')).toBe(2)
  })

  test('a manifest body cut every time fails with ERR_CONNECTION after 3 tries', async () => {
    const s = await setup()
    s.server.fault({ route: 'manifests', cut: { after: 20, how: 'end' } })
    await expectFailure(s.client.getManifest(s.ref), 'ERR_CONNECTION', REPO)
    expect(s.server.count('manifests')).toBe(3)
  })
})

describe('RegistryClient against a faulty registry: retries and timeouts', () => {
  test('429 with Retry-After: 1 twice, then 200: succeeds after waiting', async () => {
    const s = await setup()
    s.server.fault({ route: 'manifests', times: 2, status: 429, headers: { 'retry-after': '1' } })
    const manifest = await s.client.getManifest(s.ref)
    expect(manifest.digest).toBe(s.manifest.digest)
    const times = s.server.requests.filter((r) => r.route === 'manifests').map((r) => r.at)
    expect(times).toHaveLength(3)
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950)
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(950)
  })

  test.each([
    { status: 503, headers: {}, code: 'ERR_REGISTRY', requests: 3 },
    { status: 502, headers: {}, code: 'ERR_REGISTRY', requests: 3 },
    { status: 429, headers: { 'retry-after': '0' }, code: 'ERR_TOO_MANY_REQUESTS', requests: 3 },
    // a Retry-After beyond maxRetryAfterMs is not waited for
    { status: 429, headers: { 'retry-after': '3600' }, code: 'ERR_TOO_MANY_REQUESTS', requests: 1 },
  ])(
    '$status forever ($headers): $code after $requests requests',
    async ({ status, headers, code, requests }) => {
      const s = await setup({}, { retry: { retries: 2, baseDelayMs: 10 } })
      s.server.fault({ route: 'manifests', status, headers })
      await expectFailure(
        s.client.getManifest(s.ref),
        code,
        REPO,
        String(status === 429 ? 'too many' : status),
      )
      expect(s.server.count('manifests')).toBe(requests)
    },
  )

  test.each([
    { name: 'manifest', route: 'manifests', work: (s: Setup) => s.client.getManifest(s.ref) },
    { name: 'blob', route: 'blobs', work: fetchBlob },
  ] as const)('a $name body that stalls is ERR_TIMEOUT', async ({ route, work }) => {
    const s = await setup({}, { timeouts: { bodyIdleMs: 200 }, retry: { retries: 0 } })
    s.server.fault({ route, stall: { after: 10, ms: 5_000 } })
    const started = performance.now()
    await expectFailure(work(s), 'ERR_TIMEOUT', REPO)
    expect(performance.now() - started).toBeLessThan(3_000)
  })

  test('a registry that never answers is ERR_TIMEOUT after 1 + retries requests', async () => {
    const s = await setup({}, { timeouts: { headersMs: 200 }, retry: { retries: 1, baseDelayMs: 10 } })
    s.server.fault({ route: 'manifests', delayMs: 10_000 })
    await expectFailure(s.client.getManifest(s.ref), 'ERR_TIMEOUT', REPO)
    expect(s.server.count('manifests')).toBe(2)
  })

  test('a refused connection is ERR_CONNECTION', async () => {
    const host = `127.0.0.1:${await closedPort()}`
    const client = newClient(host, { retry: { retries: 1, baseDelayMs: 10 } })
    const ref = parseReference(`${host}/${REPO}:v1`)
    await expectFailure(client.getManifest(ref), 'ERR_CONNECTION', host, REPO, 'ECONNREFUSED')
  })

  test.each([
    { name: 'before the call', fault: {}, after: -1 },
    { name: 'before the response', fault: { delayMs: 10_000 }, after: 200 },
    { name: 'during the body', fault: { stall: { after: 10, ms: 10_000 } }, after: 200 },
    { name: 'while waiting to retry', fault: { status: 429, headers: { 'retry-after': '10' } }, after: 200 },
  ])('aborting $name is ERR_ABORTED promptly', async ({ fault, after }) => {
    const s = await setup()
    s.server.fault({ route: 'blobs', ...fault })
    const controller = new AbortController()
    if (after < 0) controller.abort()
    else setTimeout(() => controller.abort(), after)
    const started = performance.now()
    const work = s.client.getBlob(s.ref, s.layer, { signal: controller.signal }).then(readAll)
    await expectFailure(work, 'ERR_ABORTED', REPO, short(s.layer))
    expect(performance.now() - started).toBeLessThan(2_000)
  })
})

describe('RegistryClient against a faulty registry: auth', () => {
  test.each([
    { scheme: 'basic', username: USER.username, password: USER.password },
    { scheme: 'bearer', username: USER.username, password: USER.password },
  ] as const)('a blob redirected to another origin gets no Authorization ($scheme)', async (auth) => {
    const s = await setup({ auth, redirectBlobs: true }, withUser)
    const bytes = await s.client.getBlob(s.ref, s.layer).then(readAll)
    expect(digestOf(bytes)).toBe(s.layer.digest)
    const blobRequests = s.server.requests.filter((r) => r.route === 'blobs')
    expect(blobRequests.at(-1)).toMatchObject({ status: 307, headers: { authorization: expect.any(String) } })
    const storage = s.server.storage!.requests
    expect(storage).toHaveLength(1)
    expect(storage[0]!.headers.authorization).toBeUndefined()
  })

  test('a redirected blob is verified too', async () => {
    const s = await setup({ redirectBlobs: true })
    s.server.fault({ route: 'blobs', flipByte: 0 })
    await expectFailure(fetchBlob(s), 'ERR_DIGEST_MISMATCH', REPO, short(s.layer))
    expect(s.server.storage!.requests).toHaveLength(1)
  })

  test('bearer: one token request, cached and reused', async () => {
    const auth = { scheme: 'bearer', ...USER } as const
    const s = await setup({ auth }, withUser)
    await s.client.getManifest(s.ref)
    const bytes = await s.client.getBlob(s.ref, s.layer).then(readAll)
    expect(digestOf(bytes)).toBe(s.layer.digest)
    const tokenRequests = s.server.requests.filter((r) => r.route === 'token')
    expect(tokenRequests).toHaveLength(1)
    expect(tokenRequests[0]!.headers.authorization).toMatch(/^Basic /)
    expect(new URL(tokenRequests[0]!.path, s.server.url).searchParams.get('scope')).toBe(
      `repository:${REPO}:pull`,
    )
    expect(new URL(tokenRequests[0]!.path, s.server.url).searchParams.get('service')).toBe('fault-registry')
    const registryRequests = s.server.requests.filter((r) => r.route !== 'token')
    expect(registryRequests.map((r) => [r.route, r.status, r.headers.authorization])).toEqual([
      ['manifests', 401, undefined],
      ['manifests', 200, 'Bearer token-1'],
      ['blobs', 200, 'Bearer token-1'],
    ])
  })

  test('bearer: parallel first requests share one token request', async () => {
    const s = await setup({ auth: { scheme: 'bearer', ...USER } }, withUser)
    const blobs = await Promise.all([1, 2, 3, 4].map(() => s.client.getBlob(s.ref, s.layer).then(readAll)))
    for (const bytes of blobs) expect(digestOf(bytes)).toBe(s.layer.digest)
    expect(s.server.count('token')).toBe(1)
  })

  test('bearer: a token the registry refuses is ERR_UNAUTHORIZED', async () => {
    const s = await setup({ auth: { scheme: 'bearer', ...USER, rejectTokens: true } }, withUser)
    await expectFailure(s.client.getManifest(s.ref), 'ERR_UNAUTHORIZED', REPO, 'refused')
    expect(s.server.count('token')).toBe(1)
    expect(s.server.count('manifests')).toBe(2)
  })

  test('bearer: wrong credentials at the token endpoint are ERR_UNAUTHORIZED', async () => {
    const s = await setup({ auth: { scheme: 'bearer', ...USER } }, (server) => ({
      credentials: staticCredentials(server.host, { ...USER, password: 'wrong' }),
    }))
    await expectFailure(s.client.getManifest(s.ref), 'ERR_UNAUTHORIZED', REPO, 'token request')
  })

  test('basic challenge without credentials is ERR_UNAUTHORIZED', async () => {
    const s = await setup({ auth: { scheme: 'basic', ...USER } })
    await expectFailure(s.client.getManifest(s.ref), 'ERR_UNAUTHORIZED', REPO, 'no credentials')
    expect(s.server.requests.every((r) => r.headers.authorization === undefined)).toBe(true)
  })

  test("registry A's credentials are never sent to registry B", async () => {
    const a = await setup({ auth: { scheme: 'basic', ...USER } })
    const b = await setup({ auth: { scheme: 'basic', ...USER } })
    const asked: string[] = []
    const onlyA: CredentialStore = async (req) => {
      asked.push(req.registry)
      return req.registry === a.server.host ? USER : undefined
    }
    const client = newClient(a.server, {
      credentials: onlyA,
      insecureRegistries: [a.server.host, b.server.host],
    })
    await client.getManifest(a.ref)
    await expectFailure(client.getManifest(b.ref), 'ERR_UNAUTHORIZED', b.server.host, REPO)
    await expectFailure(client.getBlob(b.ref, b.layer), 'ERR_UNAUTHORIZED', b.server.host, REPO)
    expect(a.server.requests.some((r) => r.headers.authorization !== undefined)).toBe(true)
    expect(b.server.requests.length).toBeGreaterThan(0)
    expect(b.server.requests.filter((r) => r.headers.authorization !== undefined)).toEqual([])
    expect(new Set(asked)).toEqual(new Set([a.server.host, b.server.host]))
  })

  test("registry B naming registry A's token realm does not get A's credentials sent there", async () => {
    const a = await setup({ auth: { scheme: 'bearer', ...USER } })
    const b = await setup({ auth: { scheme: 'bearer', ...USER, realm: `${a.server.url}/token` } })
    const client = newClient(a.server, {
      credentials: staticCredentials(a.server.host, USER),
      insecureRegistries: [a.server.host, b.server.host],
    })
    await expectFailure(client.getManifest(b.ref), 'ERR_UNAUTHORIZED', b.server.host, REPO)
    const tokenRequests = a.server.requests.filter((r) => r.route === 'token')
    expect(tokenRequests).toHaveLength(1)
    expect(tokenRequests[0]!.headers.authorization).toBeUndefined()
    expect(b.server.requests.filter((r) => r.headers.authorization !== undefined)).toEqual([])
  })
})

describe.skipIf(!hasTool('openssl'))('RegistryClient over TLS', () => {
  let tls: { key: string; cert: string }
  beforeAll(() => {
    tls = selfSignedCertificate()
  })

  test('a self-signed registry is ERR_TLS unless trusted or insecure', async () => {
    const s = await setup({ tls }, { insecureRegistries: [] })
    await expectFailure(s.client.getManifest(s.ref), 'ERR_TLS', s.server.host)
    const trusted = newClient(s.server, { insecureRegistries: [], caCertificates: [tls.cert] })
    await expect(trusted.getManifest(s.ref)).resolves.toMatchObject({ digest: s.manifest.digest })
  })

  test('one failed https request does not switch an insecure TLS registry to http for good', async () => {
    const s = await setup({ tls }, { retry: { retries: 0 } })
    s.server.fault({ route: 'manifests', times: 1, hangUp: 'reset' })
    await expectFailure(s.client.getManifest(s.ref), 'ERR_CONNECTION', REPO)
    await expect(s.client.getManifest(s.ref)).resolves.toMatchObject({ digest: s.manifest.digest })
  })

  test('credentials go to a plain-http token realm only when that realm host is marked insecure', async () => {
    const tokenServer = await startFaultServer({ repository: REPO, auth: { scheme: 'bearer', ...USER } })
    cleanup.push(() => tokenServer.close())
    const s = await setup(
      { tls, auth: { scheme: 'bearer', ...USER, realm: `${tokenServer.url}/token` } },
      (server) => ({ ...withUser(server), insecureRegistries: [], caCertificates: [tls.cert] }),
    )
    await expectFailure(s.client.getManifest(s.ref), 'ERR_UNAUTHORIZED', REPO, 'not https')
    expect(tokenServer.count('token')).toBe(0)

    // An insecure registry does not make another host's plain-http realm acceptable.
    const insecureRegistry = newClient(s.server, withUser(s.server))
    await expectFailure(insecureRegistry.getManifest(s.ref), 'ERR_UNAUTHORIZED', REPO, 'not https')
    expect(tokenServer.count('token')).toBe(0)

    const insecureRealm = newClient(s.server, {
      ...withUser(s.server),
      insecureRegistries: [s.server.host, tokenServer.host],
    })
    // the token server is not the registry's, so the registry refuses its token
    await expectFailure(insecureRealm.getManifest(s.ref), 'ERR_UNAUTHORIZED', REPO, 'refused')
    expect(tokenServer.requests.map((r) => r.headers.authorization)).toEqual([
      expect.stringMatching(/^Basic /),
    ])
  })
})

/** A throwaway self-signed certificate for 127.0.0.1. */
function selfSignedCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ocipull-faults-'))
  try {
    const key = join(dir, 'key.pem')
    const cert = join(dir, 'cert.pem')
    const args = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1']
    const subject = ['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']
    execFileSync('openssl', ['req', '-x509', ...args, ...subject, '-keyout', key, '-out', cert], {
      stdio: 'ignore',
    })
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('RegistryClient and plain HTTP', () => {
  test('an insecure registry falls back from https to http', async () => {
    const s = await setup()
    await expect(s.client.getManifest(s.ref)).resolves.toMatchObject({ digest: s.manifest.digest })
  })

  test('a registry not marked insecure is not spoken to over plain HTTP (ERR_TLS)', async () => {
    const s = await setup()
    const client = newClient(s.server, { insecureRegistries: [] })
    await expectFailure(client.getManifest(s.ref), 'ERR_TLS', s.server.host)
    expect(s.server.requests).toEqual([])
  })
})
