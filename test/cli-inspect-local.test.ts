import { cp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { runCli, spawnCli } from './helpers/cli.js'
import { closedPort, startFaultServer } from './helpers/fault-server.js'
import { makeTempDir, removeTempDirs } from './helpers/temp-dirs.js'
import {
  BUSYBOX_DOCKER_ARCHIVE,
  BUSYBOX_LAYOUT,
  BUSYBOX_OCI_ARCHIVE,
  fixturesInfo,
  MULTIARCH_LAYOUT,
} from './rig/index.js'

/** `ocipull inspect` on the committed fixtures (no registry needed) and on hostile inputs. */

afterAll(removeTempDirs)
const info = fixturesInfo()
const json = (s: string) =>
  JSON.parse(s) as {
    digest: string
    mediaType: string
    config: { digest: string }
    layers: { digest: string }[]
    platforms?: unknown[]
  }

describe('inspect: local sources', () => {
  test.each([
    ['oci layout', `oci:${BUSYBOX_LAYOUT}:latest`],
    ['oci layout without tag', `oci:${BUSYBOX_LAYOUT}`],
    ['oci layout by digest', `oci:${BUSYBOX_LAYOUT}@${info.busybox.digest}`],
    ['oci-archive', `oci-archive:${BUSYBOX_OCI_ARCHIVE}`],
  ])('%s', async (_name, ref) => {
    const r = await runCli(['inspect', '--json', ref])
    expect(r.stderr).toBe('')
    const out = json(r.stdout)
    expect(out.digest).toBe(info.busybox.digest)
    expect(out.config.digest).toBe(info.busybox.config.digest)
    expect(out.layers.map((l) => l.digest)).toEqual(info.busybox.layers.map((l) => l.digest))
  })

  test('docker-archive: same config and layers as the diff_ids', async () => {
    const r = await runCli(['inspect', '--json', `docker-archive:${BUSYBOX_DOCKER_ARCHIVE}`])
    expect(r.stderr).toBe('')
    const out = json(r.stdout)
    expect(out.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json')
    // docker save stores uncompressed layers, so the layer digests are the diff_ids.
    expect(out.layers.map((l) => l.digest)).toEqual(info.busybox.diffIds)
  })

  test.each([
    ['linux/amd64', 0],
    ['linux/arm64', 1],
    ['linux/arm64/v8', 1],
    ['linux/arm/v7', 2],
    ['linux/arm', 2],
  ])('multiarch layout --platform %s', async (platform, i) => {
    const r = await runCli(['inspect', '--json', '--platform', platform, `oci:${MULTIARCH_LAYOUT}:latest`])
    expect(r.stderr).toBe('')
    expect(json(r.stdout).digest).toBe(info.multiarch.manifests[i]?.digest)
    expect(json(r.stdout).platforms).toHaveLength(3)
  })

  test('human output names the chosen platform', async () => {
    const r = await runCli(['inspect', '--platform', 'linux/arm/v7', `oci:${MULTIARCH_LAYOUT}`])
    expect(r.stdout).toMatch(/Platform: +linux\/arm\/v7/)
    expect(r.stdout).toMatch(/\* linux\/arm\/v7 +sha256:/)
  })
})

describe('inspect: hostile and broken inputs give one coded line', () => {
  test('a tampered manifest blob in a layout → ERR_DIGEST_MISMATCH, exit 5', async () => {
    const dir = join(await makeTempDir(), 'layout')
    await cp(BUSYBOX_LAYOUT, dir, { recursive: true })
    const blob = join(dir, 'blobs', 'sha256', info.busybox.digest.slice(7))
    const bytes = await readFile(blob)
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 2) ^ 0x01, bytes.length - 2)
    await writeFile(blob, bytes)
    const r = await spawnCli(['inspect', `oci:${dir}:latest`])
    expect(r.code).toBe(5)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^ocipull: ERR_DIGEST_MISMATCH: .*sha256:8dd95a92f295/)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })

  test('a registry serving the wrong manifest bytes → ERR_DIGEST_MISMATCH, exit 5', async () => {
    const server = await startFaultServer({ repository: 'app' })
    try {
      const config = server.put(
        '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}',
      )
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { ...config, mediaType: 'application/vnd.oci.image.config.v1+json' },
        layers: [],
      })
      const d = server.put(manifest, 'application/vnd.oci.image.manifest.v1+json', 'v1')
      server.fault({ route: 'manifests', flipByte: 10 })
      const byDigest = await spawnCli(['inspect', '--insecure', `${server.host}/app@${d.digest}`])
      expect(byDigest.code).toBe(5)
      expect(byDigest.stdout).toBe('')
      expect(byDigest.stderr).toMatch(
        /^ocipull: ERR_DIGEST_MISMATCH: docker:\/\/127\.0\.0\.1:\d+\/app@sha256:\w+: manifest digest mismatch/,
      )
      const byTag = await runCli(['inspect', '--insecure', `${server.host}/app:v1`])
      expect(byTag.code).toBe(5)
      expect(byTag.stderr).toMatch(/ERR_DIGEST_MISMATCH: .*Docker-Content-Digest/)
    } finally {
      await server.close()
    }
  })

  test('an oversized manifest → ERR_MANIFEST_TOO_LARGE, exit 5', async () => {
    const server = await startFaultServer({ repository: 'app' })
    try {
      server.put('{}', 'application/vnd.oci.image.manifest.v1+json', 'big')
      server.fault({ route: 'manifests', filler: 5 * 1024 * 1024, chunked: true })
      const r = await spawnCli(['inspect', '--insecure', `${server.host}/app:big`])
      expect(r.code).toBe(5)
      expect(r.stdout).toBe('')
      expect(r.stderr).toMatch(
        /^ocipull: ERR_MANIFEST_TOO_LARGE: docker:\/\/127\.0\.0\.1:\d+\/app:big: .*exceeds the limit of 4194304/,
      )
    } finally {
      await server.close()
    }
  })

  test('an oversized manifest in a layout → ERR_MANIFEST_TOO_LARGE', async () => {
    const dir = join(await makeTempDir(), 'layout')
    await cp(BUSYBOX_LAYOUT, dir, { recursive: true })
    const blob = join(dir, 'blobs', 'sha256', info.busybox.digest.slice(7))
    await writeFile(blob, Buffer.alloc(5 * 1024 * 1024, 0x20))
    const r = await runCli(['inspect', `oci:${dir}:latest`])
    expect(r.code).toBe(5)
    expect(r.stderr).toMatch(/ERR_MANIFEST_TOO_LARGE/)
  })

  test('refused connection → ERR_CONNECTION, exit 6', async () => {
    const port = await closedPort()
    const r = await runCli(['inspect', '--insecure', `127.0.0.1:${port}/app:latest`])
    expect(r.code).toBe(6)
    expect(r.stderr).toMatch(/^ocipull: ERR_CONNECTION: /)
  })

  test.each([
    [['inspect'], 2, /inspect takes exactly one REF/],
    [['inspect', 'UPPER/Case'], 2, /ERR_REFERENCE_INVALID/],
    [['inspect', '--platform', 'linux', 'busybox'], 2, /ERR_PLATFORM_INVALID/],
    [['inspect', '--bogus', 'busybox'], 2, /Unknown option '--bogus'/],
    [['nosuchcommand'], 2, /unknown command/],
    [['inspect', '--cert', '/x', 'busybox'], 2, /--cert and --key must be given together/],
    [['inspect', 'oci:/nonexistent/dir'], 3, /ERR_NOT_FOUND/],
  ])('usage error %j', async (args, code, message) => {
    const r = await runCli(args)
    expect(r.code).toBe(code)
    expect(r.stderr).toMatch(message)
  })

  test('--debug prints the stack', async () => {
    const r = await runCli(['inspect', '--debug', 'oci:/nonexistent/dir'])
    expect(r.stderr).toMatch(/\n\s+at /)
  })
})
