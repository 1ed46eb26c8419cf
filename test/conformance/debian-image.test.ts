/**
 * ocipull's rootfs of the conformance image (scripts/make-conformance-image.sh: Debian minbase by
 * debootstrap, or the fallback rootfs, + whiteouts/opaque dirs + umoci-made edge cases + a GNU tar
 * layer) equals `umoci unpack`'s: paths, types, modes, owners, sizes, content, symlink targets,
 * devices, hardlink groups, xattrs and mtimes. The expected tree below checks that the image
 * really holds every case (and that umoci and the OCI image spec agree on them), so a script
 * change that loses a case fails here instead of making the comparison vacuous.
 * Needs root, umoci, debootstrap (or OCIPULL_CONFORMANCE_ROOTFS=fallback), attr, busybox-static.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { removeTempDirs } from '../helpers/temp-dirs.js'
import { compareWithUmoci, MTIME_TOLERANCE_NS, type RootfsComparison } from '../helpers/tree-compare-umoci.js'
import { diffTrees, formatTreeDifferences } from '../helpers/tree-diff.js'
import type { TreeEntry } from '../helpers/tree-snapshot.js'
import {
  type ConformanceImages,
  type ConformanceRootfs,
  conformanceImages,
  ocipullUnpack,
  requireConformanceTools,
} from './conformance-image.js'

afterAll(removeTempDirs)

const S = '/srv/conformance'
const long = (c: string, n: number) => c.repeat(n)
const PAX_DEEP = `${S}/special/${long('d', 120)}/${long('e', 120)}/${long('f', 120)}/${long('g', 80)}`
const GNU_DEEP = `${S}/gnu/${long('h', 110)}/${long('i', 110)}/${long('j', 90)}`
const hex = (text: string) => Buffer.from(text).toString('hex')

/** What the image must contain after all layers (null: must not exist). */
const EXPECTED: [string, Partial<TreeEntry> | null][] = [
  // layer 1 (umoci repack of the base): device nodes
  ['/dev/null', { type: 'char', mode: '666', rdev: (1 << 8) | 3 }],
  ['/dev/zero', { type: 'char', rdev: (1 << 8) | 5 }],
  // layer 2 (GNU tar, PAX): whiteouts of a file, a directory tree, a symlink, a missing path
  [`${S}/removed-file`, null],
  [`${S}/removed-dir`, null],
  [`${S}/removed-symlink`, null],
  [`${S}/never-existed`, null],
  [`${S}/.wh.removed-file`, null],
  // opaque directories: the marker before and after new entries, and a real Debian directory
  [
    `${S}/opaque-dir`,
    { type: 'dir', mode: '750', xattrs: { 'user.opaque': hex('set on the opaque directory') } },
  ],
  [`${S}/opaque-dir/old-1`, null],
  [`${S}/opaque-dir/old-sub`, null],
  [`${S}/opaque-dir/.wh..wh..opq`, null],
  [`${S}/opaque-dir/new-1`, { type: 'file', size: 28 }],
  [`${S}/opaque-dir/new-sub/new-2`, { type: 'file' }],
  [`${S}/opaque-late/old`, null],
  [`${S}/opaque-late/new`, { type: 'file' }],
  ['/usr/share/doc/README.conformance', { type: 'file' }],
  ['/usr/share/locale', null],
  // type changes without whiteouts
  [`${S}/file-becomes-dir`, { type: 'dir' }],
  [`${S}/file-becomes-dir/inside`, { type: 'file' }],
  [`${S}/dir-becomes-file`, { type: 'file', size: 25 }],
  [`${S}/dir-becomes-file/child-dir`, null],
  [`${S}/file-becomes-symlink`, { type: 'symlink', link: 'file-becomes-dir' }],
  [`${S}/symlink-becomes-file`, { type: 'file' }],
  // layer 3 (umoci repack): hardlinks, with an xattr on the inode
  [
    `${S}/links/h1`,
    { hardlinks: [`${S}/links/h1`, `${S}/links/h3`], xattrs: { 'user.shared': hex('on the inode') } },
  ],
  // ...of which layer 4 replaced h2: a new inode, the others keep the old content
  [`${S}/links/h2`, { type: 'file', size: 53 }],
  // a hardlink to a lower-layer file (umoci re-emits /usr/bin/env) plus layer 4's, to the same inode
  [
    '/usr/bin/env',
    {
      type: 'file',
      mode: '755',
      hardlinks: [`${S}/gnu/env-hardlink`, `${S}/links/env-hardlink`, '/usr/bin/env'],
    },
  ],
  // symlinks
  [`${S}/symlinks/relative`, { type: 'symlink', link: '../links/h1' }],
  [`${S}/symlinks/absolute`, { type: 'symlink', link: '/srv/conformance/links/h1' }],
  [`${S}/symlinks/dangling`, { type: 'symlink', link: '/does/not/exist' }],
  [`${S}/symlinks/above-root`, { type: 'symlink', link: '../../../../../../etc/passwd' }],
  // modes
  [`${S}/modes/setuid`, { type: 'file', mode: '4755' }],
  [`${S}/modes/setgid`, { type: 'file', mode: '2755' }],
  [`${S}/modes/both`, { type: 'file', mode: '6750' }],
  [`${S}/modes/mode-0000`, { type: 'file', mode: '0' }],
  [`${S}/modes/sticky-dir`, { type: 'dir', mode: '1777' }],
  [`${S}/modes/setgid-dir`, { type: 'dir', mode: '2775' }],
  // owners
  [`${S}/owners/u1000`, { uid: 1000, gid: 1000 }],
  [`${S}/owners/u1000-g1001`, { uid: 1000, gid: 1001 }],
  [`${S}/owners/g1000`, { uid: 0, gid: 1000 }],
  [`${S}/owners/dir-1000`, { type: 'dir', uid: 1000, gid: 1000 }],
  [`${S}/owners/symlink-1000`, { type: 'symlink', uid: 1000, gid: 1000 }],
  // fifo, a non-UTF-8 name, a 467-byte PAX path with an xattr, xattrs on a directory
  [`${S}/special/fifo`, { type: 'fifo', mode: '620' }],
  [`${S}/special/caf\\xe9`, { type: 'file' }],
  [PAX_DEEP, { type: 'file', xattrs: { 'user.deep': hex('xattr on a deep path') } }],
  [
    `${S}/special/xattr-dir`,
    { xattrs: { 'user.binary': '00ff10fe', 'user.on-a-dir': hex('directory xattr') } },
  ],
  // xattrs changed (one dropped) by umoci; a file replaced by one without xattrs
  [`${S}/xattr-changed`, { xattrs: { 'user.layer': hex('3') } }],
  [`${S}/umoci-removed`, null],
  // layer 4 (GNU format): long names and link names, hardlinks to lower-layer files
  [GNU_DEEP, { type: 'file', hardlinks: [GNU_DEEP, `${S}/gnu/long-hardlink`] }],
  [`${S}/gnu/long-symlink`, { type: 'symlink', link: GNU_DEEP }],
  [`${S}/gnu/lower-hardlink`, { type: 'file', hardlinks: [`${S}/gnu/lower-hardlink`, `${S}/lower-target`] }],
  [`${S}/existing-dir`, { type: 'dir', mode: '750', uid: 0, gid: 1000 }],
  [`${S}/existing-dir/child`, { type: 'file' }],
]

function conformanceSuite(rootfs?: ConformanceRootfs) {
  let images: ConformanceImages
  let comparison: RootfsComparison

  beforeAll(async () => {
    images = await conformanceImages(rootfs ? { rootfs } : {})
    const ours = await ocipullUnpack({ layout: images.layout, tag: 'conformance' })
    expect(ours.warnings).toEqual([])
    comparison = await compareWithUmoci({ rootfs: ours.rootfs, image: `${images.layout}:conformance` })
  }, 20 * 60_000)

  test('ocipull rootfs equals umoci rootfs', () => {
    expect(comparison.report).toBe('')
    expect(Object.keys(comparison.ours).length).toBeGreaterThan(images.kind === 'fallback' ? 500 : 4000)
  })

  test.each(EXPECTED)('%s', (path, want) => {
    const entry = comparison.umoci[path]
    if (want === null) expect(entry).toBeUndefined()
    else expect(entry).toMatchObject(want)
  })

  test('entries that must be without xattrs or hardlinks have none', () => {
    expect(comparison.umoci[`${S}/xattr-replaced`]).not.toHaveProperty('xattrs')
    expect(comparison.umoci[`${S}/links/h2`]).not.toHaveProperty('hardlinks')
    const doc = Object.keys(comparison.umoci).filter((p) => p.startsWith('/usr/share/doc/'))
    expect(doc).toEqual(['/usr/share/doc/README.conformance'])
  })

  test("mtimes are umoci's within 2 µs, in whole µs (node utimes takes doubles, libuv truncates)", () => {
    const exact = diffTrees(comparison.ours, comparison.umoci)
    const report = formatTreeDifferences(exact, { labels: ['ocipull', 'umoci'] })
    expect(
      exact.every((d) => d.field === 'mtime'),
      report,
    ).toBe(true)
    for (const d of exact) {
      const gap = BigInt(d.b as string) - BigInt(d.a as string)
      expect(
        gap < BigInt(MTIME_TOLERANCE_NS) && gap > -BigInt(MTIME_TOLERANCE_NS),
        `${d.path}: ${gap} ns`,
      ).toBe(true)
      expect(BigInt(d.a as string) % 1000n).toBe(0n)
    }
  })

  test('the base rootfs is the one asked for, or the fallback for a stated reason', () => {
    if (rootfs === 'fallback') expect(images.kind).toBe('fallback')
    else if (images.kind === 'fallback') expect(images.reason).toMatch(/unreachable|failed|forced/)
    else expect(images.kind).toBe('debootstrap')
  })
}

describe.runIf(requireConformanceTools())('conformance image vs umoci unpack', () => {
  describe('base rootfs: debootstrap (or the fallback when the mirror is unreachable)', () => {
    conformanceSuite()
  })
  describe('base rootfs: fallback (OCIPULL_CONFORMANCE_ROOTFS=fallback)', () => {
    conformanceSuite('fallback')
  })
})
