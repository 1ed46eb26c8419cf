import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'
import {
  BUSYBOX_LAYOUT,
  type RigRegistry,
  requireRegistry,
  requireTool,
  run,
  startRegistry,
} from '../rig/index.js'

/**
 * `ocipull pull` from the rig's real docker-registry (TLS + basic auth) into the layer store,
 * with each snapshotter: the rootfs equals `umoci unpack`'s of the same image, the bundle runs
 * under runc, and a second pull downloads no blob (counted in the registry's own access log).
 * Needs root (umoci unpack, runc, overlay).
 */

const isRoot = process.getuid?.() === 0
const ready = requireRegistry('tls-basic') && requireTool('umoci', 'runc') && isRoot
const snapshotters = ['dir', 'overlay'] as const
afterAll(removeTempDirs)

describe.runIf(ready)('ocipull pull from a registry', () => {
  let reg: RigRegistry
  let umociTree: ReturnType<typeof snapshotTree>
  const mounts: string[] = []
  beforeAll(async () => {
    reg = await startRegistry('tls-basic')
    const theirs = join(await makeTempDir('ocipull-umoci-'), 'bundle')
    await run('umoci', ['unpack', '--image', `${BUSYBOX_LAYOUT}:latest`, theirs])
    umociTree = snapshotTree(join(theirs, 'rootfs'))
  })
  afterAll(async () => {
    for (const m of mounts) await run('umount', [m]).catch(() => undefined)
    await reg?.stop()
  })

  const pull = (ref: string, bundle: string, workDir: string, ...extra: string[]) =>
    runCli([
      'pull',
      '--authfile',
      reg.authFile as string,
      '--cacert',
      reg.caFile as string,
      '--bundle',
      bundle,
      '--work-dir',
      workDir,
      ...extra,
      `docker://${reg.ref(ref)}`,
    ])

  const blobGets = async () =>
    ((await readFile(reg.logFile, 'utf8')).match(/"GET \/v2\/[^ ]+\/blobs\/sha256:[0-9a-f]{64} /g) ?? [])
      .length

  test.each(snapshotters)(
    '--snapshotter %s: matches umoci, runs under runc, and a second pull downloads nothing',
    async (snapshotter) => {
      const work = await makeTempDir()
      const bundle = join(work, 'bundle')
      const store = join(work, 'store')
      const start = await blobGets()
      const first = await pull('busybox:oci', bundle, store, '--snapshotter', snapshotter)
      expect(first.stderr).not.toMatch(/ERR_/)
      expect(first.code).toBe(0)
      if (snapshotter === 'overlay') mounts.push(join(bundle, 'rootfs'))
      expect(snapshotTree(join(bundle, 'rootfs'))).toEqual(umociTree)

      const id = `ocipull-pull-${randomBytes(4).toString('hex')}`
      const out = execFileSync('runc', ['run', '--bundle', bundle, id], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      expect(out).toContain('hello from the ocipull fixture image')

      const before = await blobGets()
      expect(before).toBeGreaterThan(start) // the log does count this pull's downloads
      const second = await pull('busybox:oci', bundle, store, '--snapshotter', snapshotter, '--json')
      expect(second.code).toBe(0)
      expect(await blobGets()).toBe(before)
      const events = second.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string })
      expect(events.filter((e) => e.type === 'layer-cached')).toHaveLength(3)
      expect(events.filter((e) => e.type === 'layer-start')).toHaveLength(0)
      expect(snapshotTree(join(bundle, 'rootfs'))).toEqual(umociTree)
    },
  )

  test.each(['busybox:v2s2', 'busybox:zstd', 'busybox:uncompressed'])(
    '%s gives the same rootfs',
    async (ref) => {
      const work = await makeTempDir()
      const r = await pull(ref, join(work, 'bundle'), join(work, 'store'))
      expect(r.code).toBe(0)
      expect(snapshotTree(join(work, 'bundle', 'rootfs'))).toEqual(umociTree)
    },
  )

  test('--platform picks from a Docker manifest list', async () => {
    const work = await makeTempDir()
    const r = await pull(
      'multiarch:docker',
      join(work, 'bundle'),
      join(work, 'store'),
      '--platform',
      'linux/arm64',
    )
    expect(r.code).toBe(0)
    expect(await readFile(join(work, 'bundle', 'rootfs', 'etc', 'platform'), 'utf8')).toMatch(/^linux\/arm64/)
  })

  test('without credentials the pull fails with exit 4 and leaves no bundle', async () => {
    const work = await makeTempDir()
    const r = await runCli([
      'pull',
      '--cacert',
      reg.caFile as string,
      '--bundle',
      join(work, 'bundle'),
      '--work-dir',
      join(work, 'store'),
      `docker://${reg.ref('busybox:oci')}`,
    ])
    expect(r.code).toBe(4)
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^ocipull: ERR_UNAUTHORIZED: /)
    expect(execFileSync('ls', ['-A', work], { encoding: 'utf8' }).trim().split('\n')).not.toContain('bundle')
  })
})
