import { lstatSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { pullImage } from '../../src/pull-image.js'
import type { Rootfs } from '../../src/snapshot/snapshotter.js'
import { ociLayoutSource } from '../../src/sources/oci-layout-source.js'
import { unpackImage } from '../../src/unpack-image.js'
import { failure } from '../helpers/failure.js'
import { writeLayeredImage } from '../helpers/layered-image.js'
import { buildTarFull, type TarFullSpec } from '../helpers/tar-builder.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'

/**
 * One conformance suite for both snapshotters: each case is an image whose layers stress one
 * layering rule; the rootfs each snapshotter makes from the layer store must equal the rootfs of
 * a flattening unpack (unpackImage, itself checked against umoci in test/interop), including
 * directory modes, owners and mtimes. Hostile cases must fail alike, with the same code.
 * overlay needs root and overlayfs; it is skipped only where the machine is not root (CI is).
 */

const isRoot = process.getuid?.() === 0
const snapshotters = isRoot ? (['dir', 'overlay'] as const) : (['dir'] as const)
const T = 1_600_000_000

const d = (name: string, extra: Partial<TarFullSpec> = {}): TarFullSpec => ({
  name,
  type: '5',
  mode: 0o755,
  mtime: T,
  ...extra,
})
const f = (name: string, data: string, extra: Partial<TarFullSpec> = {}): TarFullSpec => ({
  name,
  data,
  mode: 0o644,
  mtime: T,
  ...extra,
})
const l = (name: string, target: string): TarFullSpec => ({ name, type: '2', linkname: target, mtime: T })
const h = (name: string, target: string): TarFullSpec => ({ name, type: '1', linkname: target, mtime: T })
const wh = (name: string): TarFullSpec => ({ name, mtime: T, mode: 0o644 })

interface Case {
  name: string
  layers: TarFullSpec[][]
  /** Expected failure code instead of a rootfs. */
  code?: string
  /**
   * A hardlink across layers: overlayfs cannot share an inode between layer directories, so the
   * overlay snapshotter (like containerd's) shows two equal files with one link each.
   */
  crossLayerLink?: boolean
}

const cases: Case[] = [
  {
    name: 'files, modes, owners, setuid and sticky',
    layers: [
      [
        d('bin/'),
        f('bin/su', 'su', { mode: 0o4755 }),
        d('tmp/', { mode: 0o1777 }),
        d('home/'),
        d('home/user/', { uid: 1000, gid: 1000, mode: 0o700 }),
        f('home/user/.profile', 'p', { uid: 1000, gid: 1000 }),
      ],
      [f('bin/sh', 'sh', { mode: 0o755 }), f('home/user/notes', 'n', { uid: 1000, gid: 100, mode: 0o600 })],
    ],
  },
  {
    name: 'whiteouts of a file, a directory and a missing name',
    layers: [
      [d('etc/'), f('etc/a', 'a'), f('etc/b', 'b'), d('var/'), d('var/cache/'), f('var/cache/x', 'x')],
      [d('etc/'), wh('etc/.wh.a'), d('var/'), wh('var/.wh.cache'), wh('var/.wh.nothing')],
    ],
  },
  {
    name: 'an opaque directory keeps only the upper layer children',
    layers: [
      [d('opt/'), d('opt/app/'), f('opt/app/old1', '1'), d('opt/app/sub/'), f('opt/app/sub/old2', '2')],
      [d('opt/'), d('opt/app/', { mode: 0o750 }), wh('opt/app/.wh..wh..opq'), f('opt/app/new', 'new')],
    ],
  },
  {
    name: 'type changes across layers: file → dir → symlink → file',
    layers: [
      [f('a', 'file'), d('b/'), f('b/inner', 'i'), l('c', 'a'), d('e/'), f('e/x', 'x')],
      [d('a/'), f('a/child', 'c'), l('b', 'a'), f('c', 'now a file'), f('e', 'dir became file')],
      [l('a', '/b'), d('b/'), f('b/again', 'again')],
    ],
  },
  {
    name: 'hardlinks within a layer and to a file of a lower layer',
    crossLayerLink: true,
    layers: [
      [d('usr/'), d('usr/bin/'), f('usr/bin/perl', 'perl', { mode: 0o755 })],
      [
        d('usr/'),
        d('usr/bin/'),
        h('usr/bin/perl5', 'usr/bin/perl'),
        f('usr/bin/x', 'x'),
        h('usr/bin/y', 'usr/bin/x'),
      ],
    ],
  },
  {
    name: 'an implied directory keeps the lower one metadata',
    layers: [
      [d('srv/', { mode: 0o711, uid: 5, gid: 6, mtime: T - 1000 }), f('srv/a', 'a')],
      [f('srv/b', 'b')],
    ],
  },
  {
    name: 'an implied directory through a lower symlink lands in its target',
    layers: [[d('usr/'), d('usr/lib/'), f('usr/lib/a', 'a'), l('lib', 'usr/lib')], [f('lib/b', 'b')]],
  },
  {
    name: 'fifos and long names',
    layers: [
      [d('run/'), { name: 'run/pipe', type: '6', mode: 0o600, mtime: T }],
      [f(`deep/${'x'.repeat(120)}/${'y'.repeat(120)}/file`, 'deep')],
    ],
  },
  {
    name: 'a hardlink to a lower file through an escaping symlink stays inside',
    crossLayerLink: true,
    layers: [
      [d('etc/'), f('etc/passwd', 'root:x:0:0::/root:/bin/sh\n'), l('up', '/')],
      [h('copy', 'up/etc/passwd')],
    ],
  },
  {
    name: 'a whiteout through a symlink that points outside removes inside',
    layers: [[d('etc/'), f('etc/keep', 'k'), l('out', '/etc')], [wh('out/.wh.keep')]],
  },
  {
    name: 'a hardlink to a name no lower layer has',
    layers: [[f('a', 'a')], [h('b', 'missing')]],
    code: 'ERR_LAYER_INVALID',
  },
]

if (isRoot) {
  cases.push({
    name: 'devices (root)',
    layers: [
      [d('dev/'), { name: 'dev/null', type: '3', devmajor: 1, devminor: 3, mode: 0o666, mtime: T }],
      [f('x', 'x')],
    ],
  })
}

afterAll(removeTempDirs)

async function expected(layout: string): Promise<{ tree: unknown; times: unknown } | { code: unknown }> {
  const bundle = join(await makeTempDir(), 'bundle')
  const source = ociLayoutSource({ path: layout, tag: 'latest' })
  try {
    await unpackImage(source, { bundle })
  } catch (err) {
    return { code: (err as { code?: unknown }).code }
  } finally {
    await source.close()
  }
  const rootfs = join(bundle, 'rootfs')
  return { tree: snapshotTree(rootfs), times: mtimes(rootfs) }
}

/** mtimes in whole seconds of every non-symlink path (tar times are whole seconds). */
function mtimes(root: string): Record<string, number> {
  const out: Record<string, number> = {}
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir)) {
      const st = lstatSync(join(dir, name))
      if (!st.isSymbolicLink()) out[`${rel}/${name}`] = Math.floor(st.mtimeMs / 1000)
      if (st.isDirectory()) walk(join(dir, name), `${rel}/${name}`)
    }
  }
  walk(root, '')
  return out
}

describe.each(snapshotters)('snapshotter %s', (snapshotter) => {
  test.each(cases)('$name', async ({ layers, code, crossLayerLink }) => {
    const work = await makeTempDir()
    const layout = join(work, 'layout')
    await writeLayeredImage(
      layout,
      layers.map((specs) => buildTarFull(specs)),
    )
    const want = await expected(layout)
    // The reference must have made a tree unless the case expects a failure.
    expect(want).toEqual(
      code === undefined ? { tree: expect.any(Object), times: expect.any(Object) } : { code },
    )

    const bundle = join(work, 'bundle')
    const source = ociLayoutSource({ path: layout, tag: 'latest' })
    let rootfs: Rootfs | undefined
    try {
      if ('code' in want) {
        expect(
          await failure(pullImage(source, { bundle, workDir: join(work, 'store'), snapshotter })),
        ).toMatchObject({
          code: want.code,
        })
        return
      }
      rootfs = (await pullImage(source, { bundle, workDir: join(work, 'store'), snapshotter })).rootfs
      if (snapshotter === 'overlay' && crossLayerLink) {
        const tree = want.tree as Record<string, { links?: number }>
        const linked = ['/usr/bin/perl', '/usr/bin/perl5', '/copy', '/etc/passwd'].filter((p) => p in tree)
        for (const p of linked) delete tree[p]?.links
      }
      expect(snapshotTree(rootfs.path)).toEqual(want.tree)
      expect(mtimes(rootfs.path)).toEqual(want.times)
    } finally {
      await rootfs?.release()
      await source.close()
    }
  })
})
