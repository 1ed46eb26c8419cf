/**
 * Self-test of the real-registry rig, using only curl and skopeo (no ocipull code).
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rejection } from './helpers/failure.js'
import { CurlError, curl, parseBearerChallenge } from './rig/curl.js'
import {
  fixturesInfo,
  REGISTRY_PORTS,
  type RigRegistry,
  requireRegistry,
  run,
  startRegistry,
  TEST_PASSWORD,
  TEST_USERNAME,
  TOKEN_SERVER_PORT,
} from './rig/index.js'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
const ACCEPT_ALL = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(', ')
const PLATFORMS = ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7']

const available = requireRegistry()

async function skopeoRaw(
  reg: RigRegistry,
  ref: string,
  flags = reg.skopeoFlags(),
): Promise<Record<string, unknown>> {
  const { stdout } = await run('skopeo', ['inspect', '--raw', ...flags, `docker://${reg.ref(ref)}`])
  return JSON.parse(stdout) as Record<string, unknown>
}

function platformsOf(index: Record<string, unknown>): string[] {
  const manifests = index['manifests'] as {
    platform: { os: string; architecture: string; variant?: string }
  }[]
  return manifests.map((m) =>
    [m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join('/'),
  )
}

async function expectAllFixtures(reg: RigRegistry) {
  const fx = fixturesInfo()
  expect(reg.images['busybox:oci'].digest).toBe(fx.busybox.digest)
  expect(reg.images['multiarch:oci'].digest).toBe(fx.multiarch.digest)
  const expected: [string, string, string | undefined][] = [
    ['busybox:oci', OCI_MANIFEST, 'application/vnd.oci.image.layer.v1.tar+gzip'],
    ['busybox:v2s2', DOCKER_MANIFEST, 'application/vnd.docker.image.rootfs.diff.tar.gzip'],
    ['busybox:zstd', OCI_MANIFEST, 'application/vnd.oci.image.layer.v1.tar+zstd'],
    ['busybox:uncompressed', OCI_MANIFEST, 'application/vnd.oci.image.layer.v1.tar'],
    ['multiarch:oci', OCI_INDEX, undefined],
    ['multiarch:docker', DOCKER_LIST, undefined],
  ]
  for (const [tag, mediaType, layerType] of expected) {
    const raw = await skopeoRaw(reg, tag)
    expect(raw['mediaType'], tag).toBe(mediaType)
    if (layerType !== undefined) {
      const layers = raw['layers'] as { mediaType: string }[]
      expect(layers.map((l) => l.mediaType)).toEqual([layerType, layerType, layerType])
    } else {
      expect(platformsOf(raw), tag).toEqual(PLATFORMS)
    }
  }
  // skopeo resolves each platform of both multi-arch flavours.
  for (const tag of ['multiarch:oci', 'multiarch:docker']) {
    for (const [arch, variant] of [
      ['amd64', undefined],
      ['arm64', 'v8'],
      ['arm', 'v7'],
    ] as const) {
      const args = ['--override-os', 'linux', '--override-arch', arch]
      if (variant) args.push('--override-variant', variant)
      const { stdout } = await run('skopeo', [
        ...args,
        'inspect',
        '--config',
        ...reg.skopeoFlags(),
        `docker://${reg.ref(tag)}`,
      ])
      const config = JSON.parse(stdout) as { architecture: string; variant?: string }
      expect(config.architecture, `${tag} ${arch}`).toBe(arch)
      expect(config.variant).toBe(variant)
    }
  }
}

describe.skipIf(!available)('rig: http registry (127.0.0.1:5101)', () => {
  let reg: RigRegistry
  beforeAll(async () => {
    reg = await startRegistry('http')
  })
  afterAll(() => reg?.stop())

  it('serves busybox:oci with the committed digest', async () => {
    expect(reg.host).toBe(`127.0.0.1:${REGISTRY_PORTS.http}`)
    expect(reg.url).toBe(`http://127.0.0.1:${REGISTRY_PORTS.http}`)
    expect(reg.caFile).toBeUndefined()
    const ping = await curl(`${reg.url}/v2/`)
    expect(ping.status).toBe(200)
    expect(ping.headers['docker-distribution-api-version']).toBe('registry/2.0')

    const res = await curl(`${reg.url}/v2/busybox/manifests/oci`, { headers: { Accept: ACCEPT_ALL } })
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe(OCI_MANIFEST)
    expect(res.headers['docker-content-digest']).toBe(fixturesInfo().busybox.digest)

    const layer = fixturesInfo().busybox.layers[0]!
    const head = await curl(`${reg.url}/v2/busybox/blobs/${layer.digest}`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(Number(head.headers['content-length'])).toBe(layer.size)
  })

  it('has every fixture tag with the claimed media types and platforms', async () => {
    await expectAllFixtures(reg)
  })

  it('shares one registry between leases; the marker caches the push', async () => {
    const second = await startRegistry('http')
    expect(second.images).toEqual(reg.images)
    await second.stop()
    await second.stop() // idempotent
    expect((await curl(`${reg.url}/v2/`)).status).toBe(200)
    expect(existsSync(join(reg.stateDir, 'storage', 'ocipull-fixtures.json'))).toBe(true)
  })
})

describe.skipIf(!available)('rig: tls-basic registry (127.0.0.1:5102)', () => {
  let reg: RigRegistry
  beforeAll(async () => {
    reg = await startRegistry('tls-basic')
  })
  afterAll(() => reg?.stop())

  it('is TLS with its own CA', async () => {
    expect(reg.url).toBe(`https://127.0.0.1:${REGISTRY_PORTS['tls-basic']}`)
    expect(reg.caFile).toBeDefined()
    expect(existsSync(join(reg.certDir!, 'ca.crt'))).toBe(true)
    const err = await rejection(curl(`${reg.url}/v2/`))
    expect(err).toBeInstanceOf(CurlError)
    expect((err as CurlError).code).toBe(60) // peer certificate cannot be authenticated
  })

  it('refuses anonymous requests and accepts basic credentials', async () => {
    const anon = await curl(`${reg.url}/v2/busybox/manifests/v2s2`, { cacert: reg.caFile! })
    expect(anon.status).toBe(401)
    expect(anon.headers['www-authenticate']).toMatch(/^Basic realm="ocipull-test"/)

    const wrong = await curl(`${reg.url}/v2/`, { cacert: reg.caFile!, user: `${TEST_USERNAME}:nope` })
    expect(wrong.status).toBe(401)

    const res = await curl(`${reg.url}/v2/busybox/manifests/v2s2`, {
      cacert: reg.caFile!,
      user: `${reg.username}:${reg.password}`,
      headers: { Accept: ACCEPT_ALL },
    })
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe(DOCKER_MANIFEST)
    expect(res.headers['docker-content-digest']).toBe(reg.images['busybox:v2s2'].digest)
  })

  it('works with skopeo and the auth file', async () => {
    const raw = await skopeoRaw(reg, 'busybox:oci', ['--cert-dir', reg.certDir!, '--authfile', reg.authFile!])
    expect(raw['mediaType']).toBe(OCI_MANIFEST)
    const anon = await rejection(
      run('skopeo', [
        'inspect',
        '--raw',
        ...reg.skopeoFlags({ anonymous: true }),
        `docker://${reg.ref('busybox:oci')}`,
      ]),
    )
    expect(anon).toBeInstanceOf(Error)
  })

  it('has every fixture tag with the claimed media types and platforms', async () => {
    await expectAllFixtures(reg)
  })
})

describe.skipIf(!available)('rig: token registry (127.0.0.1:5103, token server :5104)', () => {
  let reg: RigRegistry
  beforeAll(async () => {
    reg = await startRegistry('token')
  })
  afterAll(() => reg?.stop())

  async function fetchToken(scope: string, user?: string): Promise<{ status: number; token?: string }> {
    const ts = reg.tokenServer!
    const url = `${ts.realm}?service=${encodeURIComponent(ts.service)}&scope=${encodeURIComponent(scope)}`
    const res = await curl(url, { cacert: reg.caFile!, ...(user !== undefined ? { user } : {}) })
    if (res.status !== 200) return { status: res.status }
    const body = res.json() as { token: string; access_token: string; expires_in: number; issued_at: string }
    expect(body.access_token).toBe(body.token)
    expect(body.expires_in).toBeGreaterThan(0)
    expect(Number.isNaN(Date.parse(body.issued_at))).toBe(false)
    return { status: 200, token: body.token }
  }

  it('challenges with Bearer realm, service and scope', async () => {
    const ping = await curl(`${reg.url}/v2/`, { cacert: reg.caFile! })
    expect(ping.status).toBe(401)
    expect(parseBearerChallenge(ping.headers['www-authenticate'])).toEqual({
      realm: `https://127.0.0.1:${TOKEN_SERVER_PORT}/token`,
      service: reg.tokenServer!.service,
    })
    const res = await curl(`${reg.url}/v2/multiarch/manifests/oci`, { cacert: reg.caFile! })
    expect(res.status).toBe(401)
    expect(parseBearerChallenge(res.headers['www-authenticate'])?.['scope']).toBe('repository:multiarch:pull')
  })

  it('accepts a token fetched with basic credentials, and records the request', async () => {
    const ts = reg.tokenServer!
    ts.clearRequests()
    const { status, token } = await fetchToken(
      'repository:multiarch:pull',
      `${TEST_USERNAME}:${TEST_PASSWORD}`,
    )
    expect(status).toBe(200)
    const header = decodeProtectedHeader(token!)
    expect(header.alg).toBe('ES256')
    expect(header.x5c).toHaveLength(2)
    const claims = decodeJwt(token!)
    expect(claims).toMatchObject({
      iss: ts.issuer,
      sub: TEST_USERNAME,
      aud: ts.service,
      access: [{ type: 'repository', name: 'multiarch', actions: ['pull'] }],
    })

    const res = await curl(`${reg.url}/v2/multiarch/manifests/oci`, {
      cacert: reg.caFile!,
      bearer: token!,
      headers: { Accept: ACCEPT_ALL },
    })
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe(OCI_INDEX)
    expect(res.headers['docker-content-digest']).toBe(fixturesInfo().multiarch.digest)

    expect(ts.requests).toHaveLength(1)
    expect(ts.requests[0]).toMatchObject({
      method: 'GET',
      username: TEST_USERNAME,
      password: TEST_PASSWORD,
      service: ts.service,
      scopes: ['repository:multiarch:pull'],
      status: 200,
    })
  })

  it('rejects wrong credentials and limits anonymous tokens to public repositories', async () => {
    expect((await fetchToken('repository:busybox:pull', `${TEST_USERNAME}:wrong`)).status).toBe(401)

    const anon = await fetchToken('repository:busybox:pull')
    expect(anon.status).toBe(200)
    expect(decodeJwt(anon.token!)['access']).toEqual([])
    const denied = await curl(`${reg.url}/v2/busybox/manifests/oci`, {
      cacert: reg.caFile!,
      bearer: anon.token!,
    })
    expect(denied.status).toBe(401)
    expect(denied.headers['www-authenticate']).toContain('error="insufficient_scope"')

    const pub = await fetchToken('repository:public/busybox:pull,push')
    const claims = decodeJwt(pub.token!)
    expect(claims['access']).toEqual([{ type: 'repository', name: 'public/busybox', actions: ['pull'] }])
    expect(claims['sub']).toBeUndefined()
    const ok = await curl(`${reg.url}/v2/public/busybox/manifests/latest`, {
      cacert: reg.caFile!,
      bearer: pub.token!,
      headers: { Accept: ACCEPT_ALL },
    })
    expect(ok.status).toBe(200)
    expect(reg.tokenServer!.requests.at(-1)?.username).toBeUndefined()
  })

  it('supports the OAuth2 POST password and refresh_token grants, and requireAuth', async () => {
    const ts = reg.tokenServer!
    const post = async (form: Record<string, string>) => {
      const { stdout } = await run('curl', [
        '-sS',
        '--cacert',
        reg.caFile!,
        '-w',
        '\n%{http_code}',
        ...Object.entries(form).flatMap(([k, v]) => ['--data-urlencode', `${k}=${v}`]),
        ts.realm,
      ])
      const lines = stdout.trimEnd().split('\n')
      const status = Number(lines.pop())
      return { status, body: JSON.parse(lines.join('\n')) as Record<string, string> }
    }
    const common = { service: ts.service, scope: 'repository:busybox:pull', client_id: 'rig-test' }
    const pw = await post({
      ...common,
      grant_type: 'password',
      username: TEST_USERNAME,
      password: TEST_PASSWORD,
      access_type: 'offline',
    })
    expect(pw.status).toBe(200)
    expect(pw.body['refresh_token']).toBeTruthy()
    const refreshed = await post({
      ...common,
      grant_type: 'refresh_token',
      refresh_token: pw.body['refresh_token']!,
    })
    expect(refreshed.status).toBe(200)
    const res = await curl(`${reg.url}/v2/busybox/manifests/oci`, {
      cacert: reg.caFile!,
      bearer: refreshed.body['access_token']!,
      headers: { Accept: ACCEPT_ALL },
    })
    expect(res.status).toBe(200)
    expect(
      (await post({ ...common, grant_type: 'password', username: TEST_USERNAME, password: 'x' })).status,
    ).toBe(401)

    ts.configure({ requireAuth: true })
    try {
      expect((await fetchToken('repository:public/busybox:pull')).status).toBe(401)
    } finally {
      ts.configure({ requireAuth: false })
    }
  })

  it('can inject token server failures', async () => {
    reg.tokenServer!.configure({ failWith: { status: 503, times: 1 } })
    expect((await fetchToken('repository:busybox:pull')).status).toBe(503)
    expect((await fetchToken('repository:busybox:pull')).status).toBe(200)
  })

  it('has every fixture tag with the claimed media types and platforms (skopeo via the token server)', async () => {
    await expectAllFixtures(reg)
    expect(reg.tokenServer!.requests.some((r) => r.username === TEST_USERNAME && r.status === 200)).toBe(true)
  })
})
