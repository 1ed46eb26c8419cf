import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { cp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runCli, spawnCli } from '../helpers/cli.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { snapshotTree, type TreeEntry } from '../helpers/tree-snapshot.js'
import {
  BUSYBOX_LAYOUT,
  fixturesInfo,
  MULTIARCH_LAYOUT,
  type RigRegistry,
  requireRegistry,
  requireTool,
  run,
  startRegistry,
} from '../rig/index.js'

/**
 * `ocipull unpack` against `umoci unpack` on the same images: the rootfs must be the same tree
 * (paths, types, modes, owners, sizes, content, symlink targets). Needs root, like umoci unpack.
 */

const isRoot = process.getuid?.() === 0
const ready = requireTool('umoci', 'runc') && isRoot
afterAll(removeTempDirs)

/** The error line comes last, after any progress lines. */
const lastLine = (text: string) => text.trim().split('\n').at(-1) ?? ''

async function umociUnpack(layoutRef: string): Promise<string> {
  const bundle = join(await makeTempDir('ocipull-umoci-'), 'bundle')
  await run('umoci', ['unpack', '--image', layoutRef, bundle])
  return bundle
}

describe.runIf(ready)('ocipull unpack matches umoci unpack', () => {
  test('busybox', async () => {
    const bundle = join(await makeTempDir(), 'bundle')
    const r = await runCli(['unpack', '--bundle', bundle, `oci:${BUSYBOX_LAYOUT}:latest`])
    expect(r.stderr).not.toMatch(/ocipull: (ERR_|warning)/)
    expect(r.stderr).toMatch(/layer 3\/3 sha256:[0-9a-f]{12}: [\d.]+ [kMG]?B → [\d.]+ [kMG]?B, \d+ entries/)
    expect(r.stdout).toMatch(/^unpacked oci:.* into /)
    expect(r.code).toBe(0)
    const theirs = await umociUnpack(`${BUSYBOX_LAYOUT}:latest`)
    expect(snapshotTree(join(bundle, 'rootfs'))).toEqual(snapshotTree(join(theirs, 'rootfs')))
  })

  test('multiarch --platform linux/arm/v7', async () => {
    const bundle = join(await makeTempDir(), 'bundle')
    const r = await runCli([
      'unpack',
      '--bundle',
      bundle,
      '--platform',
      'linux/arm/v7',
      `oci:${MULTIARCH_LAYOUT}:latest`,
    ])
    expect(r.code).toBe(0)
    expect(await readFile(join(bundle, 'rootfs/etc/platform'), 'utf8')).toMatch(/^linux\/arm\/v7/)
    // umoci can't pick a platform from an index: tag the arm/v7 manifest in a copy of the layout.
    const layout = join(await makeTempDir(), 'layout')
    await cp(MULTIARCH_LAYOUT, layout, { recursive: true })
    const arm = fixturesInfo().multiarch.manifests[2]!
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: unknown[] }
    index.manifests.push({
      mediaType: arm.mediaType,
      digest: arm.digest,
      size: arm.size,
      annotations: { 'org.opencontainers.image.ref.name': 'armv7' },
    })
    await writeFile(join(layout, 'index.json'), JSON.stringify(index))
    const theirs = await umociUnpack(`${layout}:armv7`)
    expect(snapshotTree(join(bundle, 'rootfs'))).toEqual(snapshotTree(join(theirs, 'rootfs')))
  })

  test('the bundle runs under runc', async () => {
    const bundle = join(await makeTempDir(), 'bundle')
    expect((await runCli(['unpack', '--bundle', bundle, `oci:${BUSYBOX_LAYOUT}:latest`])).code).toBe(0)
    const id = `ocipull-test-${randomBytes(4).toString('hex')}`
    const out = execFileSync('runc', ['run', '--bundle', bundle, id], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    expect(out).toContain('hello from the ocipull fixture image')
  })

  test('unpacking twice into the same bundle replaces it', async () => {
    const bundle = join(await makeTempDir(), 'bundle')
    for (let i = 0; i < 2; i++) {
      expect((await runCli(['unpack', '--bundle', bundle, `oci:${BUSYBOX_LAYOUT}:latest`])).code).toBe(0)
    }
    const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as {
      process: { args: string[] }
    }
    expect(config.process.args).toEqual(['/bin/hello'])
  })

  test('a layer with one byte flipped fails with the digest code and leaves no rootfs', async () => {
    const dir = join(await makeTempDir(), 'layout')
    await cp(BUSYBOX_LAYOUT, dir, { recursive: true })
    const layer = fixturesInfo().busybox.layers[0]!.digest
    const blob = join(dir, 'blobs', 'sha256', layer.slice(7))
    const bytes = await readFile(blob)
    bytes.writeUInt8(bytes.readUInt8(1000) ^ 0x01, 1000)
    await writeFile(blob, bytes)
    const bundle = join(await makeTempDir(), 'bundle')
    const r = await spawnCli(['unpack', '--bundle', bundle, `oci:${dir}:latest`])
    expect(r.code).toBe(5)
    // The gzip stream breaks first, but the blob's digest is the root cause, and it is reported.
    expect(lastLine(r.stderr)).toMatch(
      /^ocipull: ERR_DIGEST_MISMATCH: oci:.*: (blob|layer) sha256:803bb492283c: digest mismatch/,
    )
    expect(execFileSync('ls', ['-A', bundle], { encoding: 'utf8' })).toBe('')
  })

  test('a layer whose diff_id does not match fails the same way and leaves no rootfs', async () => {
    const layout = join(await makeTempDir(), 'layout')
    await cp(BUSYBOX_LAYOUT, layout, { recursive: true })
    const info = fixturesInfo().busybox
    const blob = (d: string) => join(layout, 'blobs', 'sha256', d.slice(7))
    const put = async (bytes: Buffer) => {
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
      await writeFile(blob(digest), bytes)
      return { digest, size: bytes.length }
    }
    const config = JSON.parse(await readFile(blob(info.config.digest), 'utf8'))
    config.rootfs.diff_ids[1] = `sha256:${'0'.repeat(64)}`
    const newConfig = await put(Buffer.from(JSON.stringify(config)))
    const manifest = JSON.parse(await readFile(blob(info.digest), 'utf8'))
    manifest.config = { ...manifest.config, ...newConfig }
    const newManifest = await put(Buffer.from(JSON.stringify(manifest)))
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'))
    index.manifests[0] = { ...index.manifests[0], ...newManifest }
    await writeFile(join(layout, 'index.json'), JSON.stringify(index))

    const bundle = join(await makeTempDir(), 'bundle')
    const r = await spawnCli(['unpack', '--bundle', bundle, `oci:${layout}:latest`])
    expect(r.code).toBe(5)
    expect(lastLine(r.stderr)).toMatch(
      /^ocipull: ERR_DIGEST_MISMATCH: oci:.*: layer sha256:\w+: diff_id: digest mismatch: want sha256:0{64}/,
    )
    expect(execFileSync('ls', ['-A', bundle], { encoding: 'utf8' })).toBe('')
  })
})

describe.runIf(ready && requireRegistry('http'))('ocipull unpack from a registry matches umoci', () => {
  let reg: RigRegistry
  let reference: Record<string, TreeEntry>
  beforeAll(async () => {
    reg = await startRegistry('http')
    reference = snapshotTree(join(await umociUnpack(`${BUSYBOX_LAYOUT}:latest`), 'rootfs'))
  })
  afterAll(() => reg?.stop())

  test.each(['busybox:oci', 'busybox:v2s2', 'busybox:zstd', 'busybox:uncompressed'])('%s', async (tag) => {
    const bundle = join(await makeTempDir(), 'bundle')
    const r = await runCli(['unpack', '--insecure', '--json', '--bundle', bundle, reg.ref(tag)])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    type Event = { type: string; bytes?: number; bytesIn?: number }
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Event)
    expect(events.map((e) => e.type).filter((t) => t !== 'layer-progress')).toEqual([
      ...['phase', 'resolved', 'phase', 'phase'],
      ...['layer-start', 'layer-done', 'layer-start', 'layer-done', 'layer-start', 'layer-done'],
      ...['phase', 'phase', 'phase', 'committed'],
    ])
    // Every blob byte the manifest declares was read, and no more.
    const declared = events.find((e) => e.type === 'resolved')?.bytes
    const read = events.filter((e) => e.type === 'layer-done').reduce((n, e) => n + (e.bytesIn ?? 0), 0)
    expect(read).toBe(declared)
    expect(snapshotTree(join(bundle, 'rootfs'))).toEqual(reference)
  })
})
