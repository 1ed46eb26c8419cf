/**
 * The comparison the conformance suites rely on must see every kind of difference, or their
 * "no differences" proves nothing: each case below changes one thing in a copy of a small tree
 * and expects exactly the report line(s) for it. Plus the snapshot's own hostile inputs: symlinks
 * that point out of the tree are not followed, and file names that look like getfattr output do
 * not inject attributes. Needs getfattr/setfattr (attr); the owner case needs root.
 */
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  linkSync,
  mkdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { FULL_SNAPSHOT } from '../helpers/tree-compare-umoci.js'
import { diffTrees, formatTreeDifferences } from '../helpers/tree-diff.js'
import { nameKey, snapshotTree } from '../helpers/tree-snapshot.js'
import { requireTool } from '../rig/tools.js'

afterAll(removeTempDirs)

const isRoot = process.getuid?.() === 0
const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
const WEIRD = Buffer.from('x\n# file: shadow\nuser.evil=0x00\\')

/** A small tree with one of everything the comparison looks at. */
function makeTree(root: string): void {
  mkdirSync(join(root, 'sub/deeper'), { recursive: true })
  writeFileSync(join(root, 'a'), 'alpha\n')
  linkSync(join(root, 'a'), join(root, 'a-link'))
  writeFileSync(join(root, 'exe'), '#!/bin/sh\n', { mode: 0o755 })
  writeFileSync(join(root, 'sub/b'), 'beta\n')
  writeFileSync(join(root, 'sub/deeper/c'), 'gamma\n')
  symlinkSync('a', join(root, 'ln'))
  sh('mkfifo', join(root, 'fifo'))
  writeFileSync(Buffer.concat([Buffer.from(`${root}/caf`), Buffer.from([0xe9])]), 'latin-1 name\n')
  writeFileSync(Buffer.concat([Buffer.from(`${root}/`), WEIRD]), 'weird name\n')
  sh('setfattr', '-n', 'user.x', '-v', 'hi', join(root, 'a'))
  sh('setfattr', '-n', 'user.dir', '-v', '0x00ff', join(root, 'sub'))
  sh(
    'setfattr',
    '-n',
    'user.weird',
    '-v',
    'w',
    Buffer.concat([Buffer.from(`${root}/`), WEIRD]).toString('latin1'),
  )
  const t = new Date('2024-01-01T00:00:00Z')
  utimesSync(join(root, 'exe'), t, t)
}

/** Each case compares without mtimes (every write changes them) unless it sets `mtimes`. */
const cases: {
  name: string
  root?: boolean
  mtimes?: boolean
  change: (b: string) => void
  want: string[]
}[] = [
  { name: 'mode', change: (b) => chmodSync(join(b, 'exe'), 0o4755), want: ['/exe: mode: a 755, b 4755'] },
  {
    name: 'sticky dir',
    change: (b) => chmodSync(join(b, 'sub'), 0o1755),
    want: ['/sub: mode: a 755, b 1755'],
  },
  {
    name: 'content, same size',
    change: (b) => writeFileSync(join(b, 'sub/b'), 'BETA\n'),
    want: [/^\/sub\/b: sha256: a [0-9a-f]{64}, b [0-9a-f]{64}$/.source],
  },
  {
    name: 'size',
    change: (b) => writeFileSync(join(b, 'sub/deeper/c'), 'gamma!\n'),
    want: ['/sub/deeper/c: size: a 6, b 7', /^\/sub\/deeper\/c: sha256: /.source],
  },
  {
    name: 'symlink target',
    change: (b) => {
      unlinkSync(join(b, 'ln'))
      symlinkSync('exe', join(b, 'ln'))
    },
    want: ['/ln: link: a a, b exe'],
  },
  {
    name: 'a hardlink broken into a copy',
    change: (b) => {
      unlinkSync(join(b, 'a-link'))
      writeFileSync(join(b, 'a-link'), 'alpha\n')
    },
    want: [
      '/a: links: a 2, b (none)',
      '/a: hardlinks: a [/a, /a-link], b (none)',
      '/a-link: links: a 2, b (none)',
      '/a-link: hardlinks: a [/a, /a-link], b (none)',
      '/a-link: xattrs.user.x: a 6869, b (none)',
    ],
  },
  {
    name: 'xattr value',
    change: (b) => sh('setfattr', '-n', 'user.x', '-v', 'ho', join(b, 'a')),
    want: ['/a: xattrs.user.x: a 6869, b 686f', '/a-link: xattrs.user.x: a 6869, b 686f'],
  },
  {
    name: 'xattr removed from a directory',
    change: (b) => sh('setfattr', '-x', 'user.dir', join(b, 'sub')),
    want: ['/sub: xattrs.user.dir: a 00ff, b (none)'],
  },
  {
    name: 'a directory missing',
    change: (b) => rmSync(join(b, 'sub'), { recursive: true }),
    want: ['/sub: only in a (dir, and 3 paths below)'],
  },
  {
    name: 'an extra file',
    change: (b) => writeFileSync(join(b, 'sub/new'), ''),
    want: ['/sub/new: only in b (file)'],
  },
  {
    name: 'a file that became a directory',
    change: (b) => {
      unlinkSync(join(b, 'exe'))
      mkdirSync(join(b, 'exe'))
      writeFileSync(join(b, 'exe/inside'), '')
    },
    want: ['/exe: type: a file, b dir (and 1 path below)'],
  },
  {
    name: 'a fifo that became a file',
    change: (b) => {
      unlinkSync(join(b, 'fifo'))
      writeFileSync(join(b, 'fifo'), '')
    },
    want: ['/fifo: type: a fifo, b file'],
  },
  {
    name: 'mtime, by a second',
    mtimes: true,
    change: (b) =>
      utimesSync(join(b, 'exe'), new Date('2024-01-01T00:00:01Z'), new Date('2024-01-01T00:00:01Z')),
    want: ['/exe: mtime: a 1704067200000000000, b 1704067201000000000'],
  },
  {
    name: 'owner',
    root: true,
    change: (b) => sh('chown', '1000:1001', join(b, 'sub/b')),
    want: ['/sub/b: uid: a 0, b 1000', '/sub/b: gid: a 0, b 1001'],
  },
]

describe.runIf(requireTool('getfattr', 'setfattr', 'mkfifo', 'cp'))('tree snapshot and diff', () => {
  let base: string
  beforeAll(async () => {
    base = join(await makeTempDir('ocipull-tree-'), 'a')
    mkdirSync(base)
    makeTree(base)
  })

  const copy = async () => {
    const b = join(await makeTempDir('ocipull-tree-'), 'b')
    sh('cp', '-a', base, b)
    return b
  }

  test('a copy has no differences, and the snapshot saw every kind of entry', async () => {
    const a = snapshotTree(base, FULL_SNAPSHOT)
    expect(formatTreeDifferences(diffTrees(a, snapshotTree(await copy(), FULL_SNAPSHOT)))).toBe('')
    expect(a['/a']).toMatchObject({
      type: 'file',
      hardlinks: ['/a', '/a-link'],
      xattrs: { 'user.x': '6869' },
    })
    expect(a['/ln']).toMatchObject({ type: 'symlink', link: 'a' })
    expect(a['/fifo']).toMatchObject({ type: 'fifo' })
    expect(a['/caf\\xe9']).toMatchObject({ type: 'file', size: 13 })
    expect(a['/sub']).toMatchObject({ type: 'dir', xattrs: { 'user.dir': '00ff' } })
    expect(a['/']).toMatchObject({ type: 'dir' })
  })

  for (const c of cases) {
    test.runIf(!c.root || isRoot)(c.name, async () => {
      const b = await copy()
      c.change(b)
      const options = { ...FULL_SNAPSHOT, mtimes: c.mtimes ?? false }
      const report = formatTreeDifferences(diffTrees(snapshotTree(base, options), snapshotTree(b, options)))
      const lines = report.split('\n')
      expect(lines.length, report).toBe(c.want.length)
      for (const [i, want] of c.want.entries()) {
        const line = lines[i] ?? ''
        if (want.startsWith('^')) expect(line).toMatch(new RegExp(want))
        else expect(line).toBe(want)
      }
    })
  }

  test.each([
    ['1000', '1000', 0, false],
    ['1000', '1001', 0, true],
    ['1000', '2999', 2000, false],
    ['2999', '1000', 2000, false],
    ['1000', '3001', 2000, true],
    ['3001', '1000', 2000, true],
    ['1000', undefined, 2000, true],
  ])('mtime %s vs %s with tolerance %i: reported %s', (x, y, tolerance, reported) => {
    const entry = (mtime?: string) => ({
      type: 'file' as const,
      mode: '644',
      uid: 0,
      gid: 0,
      ...(mtime ? { mtime } : {}),
    })
    const differences = diffTrees({ '/f': entry(x) }, { '/f': entry(y) }, { mtimeToleranceNs: tolerance })
    expect(differences).toEqual(reported ? [{ path: '/f', field: 'mtime', a: x, b: y }] : [])
  })

  test('the default snapshot (no options) is unchanged: no root, groups, xattrs or mtimes', () => {
    const plain = snapshotTree(base)
    expect(plain['/']).toBeUndefined()
    expect(plain['/a']).toEqual({
      type: 'file',
      mode: '644',
      uid: plain['/a']?.uid,
      gid: plain['/a']?.gid,
      size: 6,
      sha256: 'b6a98d9ce9a2d9149288fa3df42d377c3e42737afdcdaf714e33c0a100b51060', // sha256sum of 'alpha\n'
      links: 2,
    })
  })

  test('nameKey: UTF-8 as is, other bytes and the backslash escaped', () => {
    expect(nameKey(Buffer.from('héllo wörld'))).toBe('héllo wörld')
    expect(nameKey(Buffer.from([0x63, 0x61, 0x66, 0xe9]))).toBe('caf\\xe9')
    expect(nameKey(Buffer.from([0x5c, 0xff]))).toBe('\\x5c\\xff')
  })

  describe('hostile trees', () => {
    test('symlinks out of the tree are recorded, never followed', async () => {
      const b = await copy()
      symlinkSync('/', join(b, 'host-root'))
      symlinkSync('..', join(b, 'sub/up'))
      symlinkSync('/etc', join(b, 'sub/deeper/etc'))
      const snap = snapshotTree(b, FULL_SNAPSHOT)
      expect(snap['/host-root']).toMatchObject({ type: 'symlink', link: '/' })
      expect(snap['/sub/deeper/etc']).toMatchObject({ type: 'symlink', link: '/etc' })
      expect(Object.keys(snap).filter((k) => k.includes('passwd'))).toEqual([])
      expect(Object.keys(snap)).toHaveLength(Object.keys(snapshotTree(base, FULL_SNAPSHOT)).length + 3)
    })

    test('a file name that looks like getfattr output cannot inject attributes', () => {
      const snap = snapshotTree(base, FULL_SNAPSHOT)
      expect(snap[`/${nameKey(WEIRD)}`]).toMatchObject({ type: 'file', xattrs: { 'user.weird': '77' } })
      expect(snap['/shadow']).toBeUndefined()
      const withXattrs = Object.entries(snap).filter(([, e]) => e.xattrs)
      expect(withXattrs.map(([k]) => k).sort()).toEqual(
        ['/a', '/a-link', '/sub', `/${nameKey(WEIRD)}`].sort(),
      )
    })
  })
})
