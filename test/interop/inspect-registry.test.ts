import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runCli, spawnCli } from '../helpers/cli.js'
import { startHttpProxy } from '../helpers/http-proxy.js'
import { type RigRegistry, requireRegistry, run, startRegistry } from '../rig/index.js'

/**
 * `ocipull inspect` against Debian's real docker-registry in its three rig modes, with images
 * pushed by skopeo. Expected digests come from skopeo, not from ocipull.
 */

interface InspectJson {
  digest: string
  mediaType: string
  platform: string
  config: { digest: string }
  layers: { digest: string; mediaType: string; size: number }[]
  platforms?: { os: string; architecture: string; variant?: string; digest: string }[]
}

async function skopeoRaw(
  reg: RigRegistry,
  ref: string,
): Promise<{ bytes: string; doc: Record<string, unknown> }> {
  const { stdout } = await run('skopeo', [
    'inspect',
    '--raw',
    ...reg.skopeoFlags(),
    `docker://${reg.ref(ref)}`,
  ])
  return { bytes: stdout, doc: JSON.parse(stdout) as Record<string, unknown> }
}

function childDigest(index: Record<string, unknown>, arch: string, variant?: string): string {
  const manifests = index['manifests'] as {
    digest: string
    platform: { architecture: string; variant?: string }
  }[]
  const hit = manifests.find(
    (m) => m.platform.architecture === arch && (variant === undefined || m.platform.variant === variant),
  )
  if (!hit) throw new Error(`no ${arch}/${variant} in index`)
  return hit.digest
}

const json = (stdout: string) => JSON.parse(stdout) as InspectJson

/** --authfile and --cacert for a registry with auth and TLS. */
const authFlags = (reg: RigRegistry) => ['--authfile', reg.authFile!, '--cacert', reg.caFile!]

describe.skipIf(!requireRegistry('http'))('inspect: plain HTTP registry', () => {
  let reg: RigRegistry
  beforeAll(async () => {
    reg = await startRegistry('http')
  })
  afterAll(() => reg?.stop())

  test.each([
    [
      'busybox:oci',
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.oci.image.layer.v1.tar+gzip',
    ],
    [
      'busybox:v2s2',
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.docker.image.rootfs.diff.tar.gzip',
    ],
    [
      'busybox:zstd',
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.oci.image.layer.v1.tar+zstd',
    ],
    [
      'busybox:uncompressed',
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.oci.image.layer.v1.tar',
    ],
  ])('%s', async (tag, mediaType, layerType) => {
    const r = await runCli(['inspect', '--insecure', '--json', reg.ref(tag)])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const out = json(r.stdout)
    expect(out.digest).toBe(reg.images[tag as 'busybox:oci'].digest)
    expect(out.mediaType).toBe(mediaType)
    expect(out.layers.every((l) => l.mediaType === layerType)).toBe(true)
    const raw = await skopeoRaw(reg, tag)
    expect(out.config.digest).toBe((raw.doc['config'] as { digest: string }).digest)
    expect(out.layers.map((l) => l.digest)).toEqual(
      (raw.doc['layers'] as { digest: string }[]).map((l) => l.digest),
    )
  })

  const platformCases = [
    ['multiarch:oci', 'linux/arm/v7', 'arm', 'v7'],
    ['multiarch:oci', 'linux/arm64', 'arm64', undefined],
    ['multiarch:oci', 'linux/amd64', 'amd64', undefined],
    ['multiarch:docker', 'linux/arm/v7', 'arm', 'v7'],
    ['multiarch:docker', 'linux/arm64', 'arm64', undefined],
    ['multiarch:docker', 'linux/amd64', 'amd64', undefined],
  ] as const
  test.each(platformCases)('%s --platform %s', async (tag, platform, arch, variant) => {
    const raw = await skopeoRaw(reg, tag)
    const r = await runCli(['inspect', '--insecure', '--json', '--platform', platform, reg.ref(tag)])
    expect(r.code).toBe(0)
    const out = json(r.stdout)
    expect(out.digest).toBe(childDigest(raw.doc, arch, variant))
    expect(out.platforms?.map((p) => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`)).toEqual(
      ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'],
    )
  })

  test('--raw prints the index bytes exactly', async () => {
    const raw = await skopeoRaw(reg, 'multiarch:docker')
    const r = await runCli(['inspect', '--insecure', '--raw', reg.ref('multiarch:docker')])
    expect(r.stdout).toBe(raw.bytes)
  })

  test('a platform the index lacks lists what it has', async () => {
    const r = await runCli(['inspect', '--insecure', '--platform', 'linux/s390x', reg.ref('multiarch:oci')])
    expect(r.code).toBe(3)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(
      /ERR_PLATFORM_NOT_FOUND: .*available: linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7\n$/,
    )
  })

  test.each([
    ['unknown repository', 'nosuchrepo:latest'],
    ['unknown tag', 'busybox:nosuchtag'],
  ])('%s → ERR_NOT_FOUND, exit 3', async (_name, ref) => {
    const r = await spawnCli(['inspect', '--insecure', reg.ref(ref)])
    expect(r.code).toBe(3)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^ocipull: ERR_NOT_FOUND: docker:\/\/127\.0\.0\.1:\d+\/.*not found/)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })

  test('without --insecure, https to a plain-HTTP registry fails with ERR_TLS', async () => {
    const r = await runCli(['inspect', reg.ref('busybox:oci')])
    expect(r.code).toBe(6)
    expect(r.stderr).toMatch(/ERR_TLS/)
  })

  test('HTTP_PROXY carries the requests; NO_PROXY bypasses it', async () => {
    const proxy = await startHttpProxy()
    try {
      const env = { ...process.env, HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: '' }
      const r = await runCli(['inspect', '--insecure', '--json', reg.ref('busybox:oci')], env)
      expect(r.code).toBe(0)
      // undici tunnels plain HTTP through CONNECT as well.
      expect(proxy.seen).toContain(`CONNECT ${reg.host}`)
      const before = proxy.seen.length
      const r2 = await runCli(['inspect', '--insecure', '--json', reg.ref('busybox:oci')], {
        ...env,
        NO_PROXY: '127.0.0.1',
      })
      expect(r2.code).toBe(0)
      expect(proxy.seen.length).toBe(before)
    } finally {
      await proxy.close()
    }
  })
})

describe.skipIf(!requireRegistry('tls-basic'))('inspect: TLS registry with basic auth', () => {
  let reg: RigRegistry
  beforeAll(async () => {
    reg = await startRegistry('tls-basic')
  })
  afterAll(() => reg?.stop())

  test('works with credentials from an auth.json and the CA', async () => {
    const r = await runCli(['inspect', '--json', ...authFlags(reg), reg.ref('busybox:oci')])
    expect(r.stderr).toBe('')
    expect(json(r.stdout).digest).toBe(reg.images['busybox:oci'].digest)
  })

  test('REGISTRY_AUTH_FILE and SSL_CERT_FILE work too', async () => {
    const env = { ...process.env, REGISTRY_AUTH_FILE: reg.authFile!, SSL_CERT_FILE: reg.caFile! }
    const r = await runCli(
      ['inspect', '--json', '--platform', 'linux/arm/v7', reg.ref('multiarch:docker')],
      env,
    )
    expect(r.code).toBe(0)
    const raw = await skopeoRaw(reg, 'multiarch:docker')
    expect(json(r.stdout).digest).toBe(childDigest(raw.doc, 'arm', 'v7'))
  })

  test('--creds works', async () => {
    const r = await runCli([
      'inspect',
      '--json',
      '--creds',
      `${reg.username}:${reg.password}`,
      '--cacert',
      reg.caFile!,
      reg.ref('busybox:v2s2'),
    ])
    expect(r.code).toBe(0)
  })

  test('401 without credentials → ERR_UNAUTHORIZED, exit 4, no stack trace', async () => {
    const env = { ...process.env, HOME: '/nonexistent', REGISTRY_AUTH_FILE: '/nonexistent/auth.json' }
    const r = await spawnCli(['inspect', '--cacert', reg.caFile!, reg.ref('busybox:oci')], env)
    expect(r.code).toBe(4)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(
      /^ocipull: ERR_UNAUTHORIZED: docker:\/\/127\.0\.0\.1:\d+\/busybox:oci: unauthorized: no credentials/,
    )
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  test('wrong password → ERR_UNAUTHORIZED', async () => {
    const r = await runCli([
      'inspect',
      '--creds',
      `${reg.username}:wrong`,
      '--cacert',
      reg.caFile!,
      reg.ref('busybox:oci'),
    ])
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/ERR_UNAUTHORIZED: .*credentials were refused/)
  })

  test('untrusted certificate → ERR_TLS, exit 6', async () => {
    const r = await spawnCli(['inspect', '--authfile', reg.authFile!, reg.ref('busybox:oci')])
    expect(r.code).toBe(6)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(
      /^ocipull: ERR_TLS: GET https:\/\/127\.0\.0\.1:\d+\/v2\/busybox\/manifests\/oci: tls: /,
    )
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })

  test('--insecure skips verification', async () => {
    const r = await runCli([
      'inspect',
      '--json',
      '--insecure',
      '--authfile',
      reg.authFile!,
      reg.ref('busybox:oci'),
    ])
    expect(r.code).toBe(0)
  })
})

describe.skipIf(!requireRegistry('token'))('inspect: registry with token auth', () => {
  let reg: RigRegistry
  beforeAll(async () => {
    reg = await startRegistry('token')
  })
  afterAll(() => reg?.stop())

  test('fetches a token with the credentials and caches it', async () => {
    const before = reg.tokenServer!.requests.length
    const r = await runCli(['inspect', '--json', ...authFlags(reg), reg.ref('busybox:oci')])
    expect(r.stderr).toBe('')
    expect(json(r.stdout).digest).toBe(reg.images['busybox:oci'].digest)
    const requests = reg.tokenServer!.requests.slice(before)
    // One token for the whole inspect (manifest + config blob share the scope).
    expect(requests).toHaveLength(1)
    expect(requests[0]?.username).toBe(reg.username)
    expect(requests[0]?.scopes).toEqual(['repository:busybox:pull'])
  })

  test('multi-arch through tokens', async () => {
    const r = await runCli([
      'inspect',
      '--json',
      ...authFlags(reg),
      '--platform',
      'linux/arm64',
      reg.ref('multiarch:oci'),
    ])
    expect(r.code).toBe(0)
    const raw = await skopeoRaw(reg, 'multiarch:oci')
    expect(json(r.stdout).digest).toBe(childDigest(raw.doc, 'arm64'))
  })

  test('anonymous token for a public repository', async () => {
    const env = { ...process.env, HOME: '/nonexistent', REGISTRY_AUTH_FILE: '/nonexistent/auth.json' }
    const r = await runCli(
      ['inspect', '--json', '--cacert', reg.caFile!, reg.ref('public/busybox:latest')],
      env,
    )
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  test('no credentials for a private repository → ERR_UNAUTHORIZED', async () => {
    const env = { ...process.env, HOME: '/nonexistent', REGISTRY_AUTH_FILE: '/nonexistent/auth.json' }
    const r = await runCli(['inspect', '--cacert', reg.caFile!, reg.ref('busybox:oci')], env)
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/ERR_UNAUTHORIZED/)
  })
})

describe('inspect: network failures', () => {
  test('refused connection → ERR_CONNECTION, exit 6', async () => {
    const r = await spawnCli(['inspect', '--insecure', '127.0.0.1:9/app:latest'])
    expect(r.code).toBe(6)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^ocipull: ERR_CONNECTION: .*ECONNREFUSED/)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })
})
