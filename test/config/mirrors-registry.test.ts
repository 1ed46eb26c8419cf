import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { parseRegistriesConf } from '../../src/config/registries-conf.js'
import { parseImageName } from '../../src/image-name.js'
import { openImageSource } from '../../src/open-image-source.js'
import { isRegistrySource } from '../../src/registry/registry-source.js'
import { resolveImage } from '../../src/resolve-image.js'
import { runCli } from '../helpers/cli.js'
import { type RigRegistry, requireRegistry } from '../rig/index.js'
import { cleanEnv, configDir, deadPort, logMark, requestsIn, startRegistryPair } from './rig-pair.js'

/**
 * registries.conf against two real docker-registry instances (plain HTTP): mirrors, fallback to
 * the origin, remapped locations, blocked and insecure registries, mirror-by-digest-only. Which
 * registry answered is read from the registries' own access logs.
 */

const files = configDir()
afterAll(() => files.remove())

interface InspectJson {
  name: string
  digest: string
}

describe.skipIf(!requireRegistry('http'))('registries.conf with two real registries', () => {
  let a: RigRegistry
  let b: RigRegistry
  let dead: string
  beforeAll(async () => {
    ;({ a, b } = await startRegistryPair('http'))
    dead = `127.0.0.1:${await deadPort()}`
  }, 300_000)
  afterAll(async () => {
    await a?.stop()
    await b?.stop()
  })

  const inspect = async (conf: string, ref: string, extra: string[] = []) => {
    const file = files.write(`registries-${Math.random().toString(36).slice(2)}.conf`, conf)
    return runCli(['inspect', '--json', '--registries-conf', file, ...extra, ref], cleanEnv())
  }
  const open = (conf: string, ref: string) =>
    openImageSource(parseImageName(ref), {
      registries: parseRegistriesConf(conf, { what: 'test' }),
      env: cleanEnv(),
    })

  test('a mirror is used when the origin is down; the source records where the image came from', async () => {
    const conf = `[[registry]]\nlocation = "${dead}"\n[[registry.mirror]]\nlocation = "${a.host}"\ninsecure = true\n`
    const logA = logMark(a)
    const source = open(conf, `${dead}/busybox:oci`)
    try {
      const image = await resolveImage(source, { platform: { os: 'linux', architecture: 'amd64' } })
      expect(image.digest).toBe(a.images['busybox:oci'].digest)
      if (!isRegistrySource(source)) throw new Error('want a registry source')
      // The policy is evaluated on the user's reference; the location is recorded next to it.
      expect(source.name).toBe(`docker://${dead}/busybox:oci`)
      expect(source.reference).toEqual({ registry: dead, repository: 'busybox', tag: 'oci' })
      expect(source.location).toMatchObject({
        kind: 'mirror',
        location: { registry: a.host, repository: 'busybox', tag: 'oci' },
        insecure: true,
      })
    } finally {
      await source.close()
    }
    expect(requestsIn(await logA.since())).toContain('GET /v2/busybox/manifests/oci 200')
  })

  test('the mirror is tried first while the origin is up', async () => {
    const logA = logMark(a)
    const logB = logMark(b)
    const r = await inspect(
      `[[registry]]\nlocation = "${b.host}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${a.host}"\ninsecure = true\n`,
      b.ref('busybox:oci'),
    )
    expect(r.stderr).toBe('')
    expect((JSON.parse(r.stdout) as InspectJson).name).toBe(`docker://${b.ref('busybox:oci')}`)
    expect(requestsIn(await logA.since())).toContain('GET /v2/busybox/manifests/oci 200')
    expect(requestsIn(await logB.since())).toEqual([])
  })

  test('a mirror that is down or lacks the image: the origin serves it', async () => {
    const logB = logMark(b)
    const logA = logMark(a)
    const conf = `[[registry]]\nlocation = "${b.host}"\ninsecure = true
[[registry.mirror]]\nlocation = "${dead}"
[[registry.mirror]]\nlocation = "${a.host}/empty-mirror"\ninsecure = true\n`
    const source = open(conf, b.ref('busybox:v2s2'))
    try {
      const image = await resolveImage(source, { platform: { os: 'linux', architecture: 'amd64' } })
      expect(image.digest).toBe(b.images['busybox:v2s2'].digest)
      expect(isRegistrySource(source) && source.location?.kind).toBe('primary')
    } finally {
      await source.close()
    }
    expect(requestsIn(await logA.since())).toContain('GET /v2/empty-mirror/busybox/manifests/v2s2 404')
    expect(requestsIn(await logB.since())).toContain('GET /v2/busybox/manifests/v2s2 200')
  })

  test('when every location fails, the error lists each one with its reason', async () => {
    const r = await inspect(
      `[[registry]]\nlocation = "${b.host}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${dead}"\n`,
      b.ref('nosuchrepo:1'),
    )
    expect(r.code).toBe(3) // the origin's answer: not found
    expect(r.stdout).toBe('')
    const line = r.stderr.trim()
    expect(line.split('\n')).toHaveLength(1)
    expect(line).toMatch(
      new RegExp(
        `^ocipull: ERR_NOT_FOUND: docker://${b.host}/nosuchrepo:1: no location could serve the image; tried 2: ` +
          `mirror ${dead}/nosuchrepo:1: ERR_CONNECTION: .*; primary ${b.host}/nosuchrepo:1: ERR_NOT_FOUND: .*not found`,
      ),
    )
  })

  test('a blocked registry is refused and never contacted', async () => {
    const logA = logMark(a)
    const r = await inspect(
      `[[registry]]\nlocation = "${a.host}"\ninsecure = true\nblocked = true\n`,
      a.ref('busybox:oci'),
    )
    expect(r.code).toBe(7)
    expect(r.stderr).toBe(
      `ocipull: ERR_REGISTRY_BLOCKED: docker://${a.ref('busybox:oci')}: blocked by the registry configuration: ${a.ref('busybox:oci')} (prefix "${a.host}")\n`,
    )
    expect(requestsIn(await logA.since())).toEqual([])
  })

  test('a blocked namespace blocks only that namespace', async () => {
    const conf = `[[registry]]\nlocation = "${a.host}"\ninsecure = true\n[[registry]]\nprefix = "${a.host}/public"\nblocked = true\n`
    expect((await inspect(conf, a.ref('public/busybox:latest'))).code).toBe(7)
    expect((await inspect(conf, a.ref('busybox:oci'))).code).toBe(0)
  })

  test('a mirror inside a blocked namespace is skipped, never contacted', async () => {
    const logA = logMark(a)
    const r = await inspect(
      `[[registry]]\nlocation = "${b.host}"\ninsecure = true
[[registry.mirror]]\nlocation = "${a.host}/blocked-ns"
[[registry]]\nprefix = "${a.host}/blocked-ns"\nblocked = true\n`,
      b.ref('busybox:oci'),
    )
    expect(r.code).toBe(0)
    expect(requestsIn(await logA.since())).toEqual([])
  })

  test('a prefix is remapped to a location', async () => {
    const logB = logMark(b)
    const r = await inspect(
      `[[registry]]\nprefix = "registry.example.test/team"\nlocation = "${b.host}"\ninsecure = true\n`,
      'registry.example.test/team/busybox:zstd',
    )
    expect(r.stderr).toBe('')
    const out = JSON.parse(r.stdout) as InspectJson
    expect(out.name).toBe('docker://registry.example.test/team/busybox:zstd')
    expect(out.digest).toBe(b.images['busybox:zstd'].digest)
    expect(requestsIn(await logB.since())).toContain('GET /v2/busybox/manifests/zstd 200')
  })

  test('the remap is anchored: registry.example.test/teamx is not remapped', async () => {
    const r = await inspect(
      `[[registry]]\nprefix = "registry.example.test/team"\nlocation = "${b.host}"\ninsecure = true\n`,
      'registry.example.test/teamx/busybox:zstd',
    )
    expect(r.code).toBe(6) // registry.example.test itself: no such host
  })

  test('insecure selects plain HTTP (without it: https, and a TLS error)', async () => {
    const secure = await inspect(`[[registry]]\nlocation = "${a.host}"\n`, a.ref('busybox:oci'))
    expect(secure.code).toBe(6)
    expect(secure.stderr).toMatch(
      /^ocipull: ERR_TLS: GET https:\/\/127\.0\.0\.1:\d+\/v2\/busybox\/manifests\/oci/,
    )
    const plain = await inspect(
      `[[registry]]\nlocation = "${a.host}"\ninsecure = true\n`,
      a.ref('busybox:oci'),
    )
    expect(plain.stderr).toBe('')
    expect((JSON.parse(plain.stdout) as InspectJson).digest).toBe(a.images['busybox:oci'].digest)
  })

  test('insecure is per endpoint: a mirror without it fails on TLS, the insecure origin serves', async () => {
    const logB = logMark(b)
    const source = open(
      `[[registry]]\nlocation = "${b.host}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${a.host}"\n`,
      b.ref('busybox:oci'),
    )
    try {
      await source.manifest()
      expect(isRegistrySource(source) && source.location?.location.registry).toBe(b.host)
    } finally {
      await source.close()
    }
    expect(requestsIn(await logB.since())).toContain('GET /v2/busybox/manifests/oci 200')
  })

  const digestOnly = () =>
    `[[registry]]\nlocation = "${a.host}"\ninsecure = true\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "${b.host}"\ninsecure = true\n`

  test('mirror-by-digest-only: a tag pull skips the mirror', async () => {
    const logB = logMark(b)
    const logA = logMark(a)
    const r = await inspect(digestOnly(), a.ref('busybox:oci'))
    expect(r.code).toBe(0)
    expect(requestsIn(await logB.since())).toEqual([])
    expect(requestsIn(await logA.since())).toContain('GET /v2/busybox/manifests/oci 200')
  })

  test('mirror-by-digest-only: a digest pull uses the mirror', async () => {
    const logB = logMark(b)
    const logA = logMark(a)
    const digest = a.images['busybox:oci'].digest
    const r = await inspect(digestOnly(), `${a.host}/busybox@${digest}`)
    expect(r.code).toBe(0)
    expect(requestsIn(await logB.since())).toContain(`GET /v2/busybox/manifests/${digest} 200`)
    expect(requestsIn(await logA.since())).toEqual([])
  })

  test('mirror-by-digest-only with the origin down: a tag pull fails without trying the mirror', async () => {
    const logB = logMark(b)
    const r = await inspect(
      `[[registry]]\nlocation = "${dead}"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "${b.host}"\ninsecure = true\n`,
      `${dead}/busybox:oci`,
    )
    expect(r.code).toBe(6)
    expect(r.stderr).toMatch(/^ocipull: ERR_CONNECTION: /) // one location, its own error
    expect(requestsIn(await logB.since())).toEqual([])
  })

  test('pull-from-mirror = "tag-only": tags from the mirror, digests from the origin', async () => {
    const conf = `[[registry]]\nlocation = "${a.host}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${b.host}"\ninsecure = true\npull-from-mirror = "tag-only"\n`
    const digest = a.images['busybox:oci'].digest
    let logB = logMark(b)
    expect((await inspect(conf, a.ref('busybox:oci'))).code).toBe(0)
    expect(requestsIn(await logB.since())).toContain('GET /v2/busybox/manifests/oci 200')
    logB = logMark(b)
    expect((await inspect(conf, `${a.host}/busybox@${digest}`)).code).toBe(0)
    expect(requestsIn(await logB.since())).toEqual([])
  })

  test('blobs come from the location that served the manifest', async () => {
    const logA = logMark(a)
    const logB = logMark(b)
    const source = open(
      `[[registry]]\nlocation = "${dead}"\n[[registry.mirror]]\nlocation = "${b.host}"\ninsecure = true\n`,
      `${dead}/busybox:oci`,
    )
    try {
      const image = await resolveImage(source, { platform: { os: 'linux', architecture: 'amd64' } })
      const layer = image.manifest.layers[0]
      if (layer === undefined) throw new Error('no layer')
      const stream = await source.blob(layer)
      for await (const _ of stream) {
        // drain: the stream checks size and digest
      }
    } finally {
      await source.close()
    }
    const fromB = requestsIn(await logB.since())
    expect(fromB.filter((l) => l.startsWith('GET /v2/busybox/blobs/'))).toHaveLength(2) // config and layer
    expect(requestsIn(await logA.since())).toEqual([])
  })

  test('concurrent first requests choose one location and share it', async () => {
    const logA = logMark(a)
    const logB = logMark(b)
    const source = open(
      `[[registry]]\nlocation = "${b.host}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${a.host}/empty-mirror"\ninsecure = true\n`,
      b.ref('busybox:oci'),
    )
    try {
      const [one, two] = await Promise.all([source.manifest(), source.manifest()])
      expect(one.digest).toBe(two.digest)
      expect(isRegistrySource(source) && source.location?.kind).toBe('primary')
    } finally {
      await source.close()
    }
    expect(
      requestsIn(await logB.since()).filter((l) => l === 'GET /v2/busybox/manifests/oci 200'),
    ).toHaveLength(2)
    // the mirror was asked once, by the first request; the second waited for its choice
    expect(requestsIn(await logA.since())).toEqual(['GET /v2/empty-mirror/busybox/manifests/oci 404'])
  })

  test('an abort stops the fallback: the next location is not tried', async () => {
    const logB = logMark(b)
    const source = open(
      `[[registry]]\nlocation = "${b.host}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${dead}"\n`,
      b.ref('busybox:oci'),
    )
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 50) // while the dead mirror's retries back off
    try {
      await expect(source.manifest({ signal: controller.signal })).rejects.toMatchObject({
        code: 'ERR_ABORTED',
      })
    } finally {
      await source.close()
    }
    expect(requestsIn(await logB.since())).toEqual([])
  })
})
