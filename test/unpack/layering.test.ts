import { spawnSync } from 'node:child_process'
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, describe, expect, test } from 'vitest'
import { type UnpackWarning, unpackTar } from '../../src/unpack/unpack-tar.js'
import { buildTarFull, type TarFullSpec } from '../helpers/tar-builder.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { hasTool, isCI } from '../rig/tools.js'

afterAll(removeTempDirs)

/** A lower layer as a tree: path → file contents, or null for a directory. */
type Tree = Record<string, string | null>

async function lowerTree(tree: Tree): Promise<string> {
  const root = join(await makeTempDir('ocipull-layer-'), 'rootfs')
  mkdirSync(root)
  for (const [path, content] of Object.entries(tree)) {
    if (content === null) mkdirSync(join(root, path), { recursive: true })
    else writeFileSync(join(root, path), content)
  }
  return root
}

async function apply(root: string, specs: TarFullSpec[], whiteouts: 'apply' | 'overlay' = 'apply') {
  const warnings: UnpackWarning[] = []
  await unpackTar(Readable.from([buildTarFull(specs)]), root, {
    whiteouts,
    what: 'layer sha256:cd34',
    onWarning: (w) => warnings.push(w),
  })
  return warnings
}

/** Every path under root, sorted, directories with a trailing '/'. */
function list(root: string, dir = ''): string[] {
  const out: string[] = []
  for (const name of readdirSync(join(root, dir)).sort()) {
    const rel = dir === '' ? name : `${dir}/${name}`
    const st = lstatSync(join(root, rel))
    if (st.isDirectory()) out.push(`${rel}/`, ...list(root, rel))
    else out.push(rel)
  }
  return out
}

describe("whiteouts in 'apply' mode", () => {
  const cases: { name: string; lower: Tree; layer: TarFullSpec[]; want: string[] }[] = [
    {
      name: '.wh.NAME removes a file',
      lower: { a: '1', b: '2' },
      layer: [{ name: '.wh.a' }],
      want: ['b'],
    },
    {
      name: '.wh.NAME removes a directory recursively',
      lower: { d: null, 'd/e': null, 'd/e/f': 'x', keep: '1' },
      layer: [{ name: './.wh.d' }],
      want: ['keep'],
    },
    {
      name: 'a whiteout for a missing path does nothing',
      lower: { a: '1' },
      layer: [{ name: 'nope/.wh.x' }, { name: '.wh.y' }],
      want: ['a'],
    },
    {
      name: 'opaque marker before the new entries',
      lower: { d: null, 'd/old': '1', 'd/sub': null, 'd/sub/old': '2' },
      layer: [{ name: 'd/', type: '5' }, { name: 'd/.wh..wh..opq' }, { name: 'd/new', data: 'n' }],
      want: ['d/', 'd/new'],
    },
    {
      name: 'opaque marker after the new entries (order does not matter)',
      lower: { d: null, 'd/old': '1', 'd/sub': null, 'd/sub/old': '2', 'd/sub/x': '3' },
      layer: [
        { name: 'd/', type: '5' },
        { name: 'd/new', data: 'n' },
        { name: 'd/sub/added', data: 'a' },
        { name: 'd/.wh..wh..opq' },
      ],
      want: ['d/', 'd/new', 'd/sub/', 'd/sub/added'],
    },
    {
      name: 'a whiteout spares an entry of the same layer (umoci)',
      lower: {},
      layer: [{ name: 'x', data: 'new' }, { name: '.wh.x' }],
      want: ['x'],
    },
    {
      name: 'AUFS bookkeeping names are ignored',
      lower: { a: '1' },
      layer: [{ name: '.wh..wh.plnk', type: '5' }, { name: '.wh..wh.aufs' }],
      want: ['a'],
    },
    {
      name: 'a whiteout through a symlink inside the root removes the target inside the root',
      lower: { real: null, 'real/x': '1', 'real/y': '2' },
      layer: [{ name: 'link', type: '2', linkname: '/real' }, { name: 'link/.wh.x' }],
      want: ['link', 'real/', 'real/y'],
    },
  ]
  for (const c of cases) {
    test(c.name, async () => {
      const root = await lowerTree(c.lower)
      await apply(root, c.layer)
      expect(list(root)).toEqual(c.want)
    })
  }
})

describe('type changes across layers', () => {
  test('file → dir → symlink → file', async () => {
    const root = await lowerTree({ p: 'file' })
    await apply(root, [
      { name: 'p', type: '5' },
      { name: 'p/child', data: 'c' },
    ])
    expect(list(root)).toEqual(['p/', 'p/child'])
    await apply(root, [{ name: 'p', type: '2', linkname: '/elsewhere' }])
    expect(readlinkSync(join(root, 'p'))).toBe('/elsewhere')
    await apply(root, [{ name: 'p', data: 'file again' }])
    expect(readFileSync(join(root, 'p'), 'utf8')).toBe('file again')
  })

  test('a directory replaced by a directory keeps its children and takes the new metadata', async () => {
    const root = await lowerTree({ d: null, 'd/lower': 'l' })
    await apply(root, [
      { name: 'd', type: '5', mode: 0o700 },
      { name: 'd/upper', data: 'u' },
    ])
    expect(list(root)).toEqual(['d/', 'd/lower', 'd/upper'])
    expect(lstatSync(join(root, 'd')).mode & 0o7777).toBe(0o700)
  })

  test('a symlink to a directory replaced by a directory: the link goes, its target stays', async () => {
    const root = await lowerTree({ target: null, 'target/t': '1' })
    symlinkSync('target', join(root, 'lib'))
    await apply(root, [
      { name: 'lib', type: '5' },
      { name: 'lib/x', data: 'x' },
    ])
    expect(list(root)).toEqual(['lib/', 'lib/x', 'target/', 'target/t'])
  })

  test('a file in a lower symlinked directory is written through the link (inside the root)', async () => {
    const root = await lowerTree({ usr: null, 'usr/lib': null })
    symlinkSync('usr/lib', join(root, 'lib'))
    await apply(root, [{ name: 'lib/libc.so', data: 'elf' }])
    expect(readFileSync(join(root, 'usr/lib/libc.so'), 'utf8')).toBe('elf')
  })

  test('a hardlink to a file of a lower layer', async () => {
    const root = await lowerTree({ bin: null, 'bin/busybox': 'bb' })
    await apply(root, [{ name: 'bin/sh', type: '1', linkname: 'bin/busybox' }])
    expect(lstatSync(join(root, 'bin/sh')).ino).toBe(lstatSync(join(root, 'bin/busybox')).ino)
  })

  test('a lower directory keeps its mtime when this layer adds to it', async () => {
    const root = await lowerTree({ etc: null })
    utimesSync(join(root, 'etc'), 1_000_000, 1_000_000)
    await apply(root, [{ name: 'etc/new', data: 'x' }, { name: 'etc/.wh.gone' }])
    expect(lstatSync(join(root, 'etc')).mtimeMs).toBe(1_000_000_000)
  })

  test('a file replaced by a file is a new inode (a lower hardlink keeps the old content)', async () => {
    const root = await lowerTree({ a: 'old' })
    await apply(root, [{ name: 'b', type: '1', linkname: 'a' }])
    await apply(root, [{ name: 'a', data: 'new' }])
    expect(readFileSync(join(root, 'b'), 'utf8')).toBe('old')
    expect(readFileSync(join(root, 'a'), 'utf8')).toBe('new')
  })
})

const overlayReady = (() => {
  const ok = process.getuid?.() === 0 && hasTool('getfattr') && hasTool('setfattr')
  if (!ok && isCI()) throw new Error('overlay-mode tests need root and setfattr/getfattr (CI=true)')
  return ok
})()

describe.skipIf(!overlayReady)("'overlay' mode", () => {
  const getfattr = (path: string) =>
    spawnSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'text', path], { encoding: 'utf8' }).stdout

  test('.wh.NAME becomes a 0/0 character device', async () => {
    const root = await lowerTree({})
    await apply(root, [{ name: 'd/', type: '5' }, { name: 'd/.wh.gone' }], 'overlay')
    const st = lstatSync(join(root, 'd/gone'))
    expect(st.isCharacterDevice()).toBe(true)
    expect(st.rdev).toBe(0)
  })

  test('.wh..wh..opq sets trusted.overlay.opaque=y and is not extracted', async () => {
    const root = await lowerTree({})
    await apply(
      root,
      [{ name: 'd/', type: '5' }, { name: 'd/.wh..wh..opq' }, { name: 'd/f', data: 'x' }],
      'overlay',
    )
    expect(getfattr(join(root, 'd'))).toContain('trusted.overlay.opaque="y"')
    expect(list(root)).toEqual(['d/', 'd/f'])
  })

  test('overlayfs xattrs from the image are not applied', async () => {
    const root = await lowerTree({})
    const warnings = await apply(
      root,
      [{ name: 'd', type: '5', pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y' } }],
      'overlay',
    )
    expect(getfattr(join(root, 'd'))).not.toContain('trusted.overlay.opaque')
    expect(warnings.map((w) => w.code)).toEqual(['WARN_XATTR_FORBIDDEN'])
  })

  test('nothing is deleted in overlay mode', async () => {
    const root = await lowerTree({ keep: '1' })
    await apply(root, [{ name: '.wh.other' }], 'overlay')
    expect(existsSync(join(root, 'keep'))).toBe(true)
    expect(lstatSync(join(root, 'other')).isCharacterDevice()).toBe(true)
  })
})
