import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { afterAll, describe, expect, test } from 'vitest'
import { type UnpackOptions, type UnpackWarning, unpackTar } from '../../src/unpack/unpack-tar.js'
import { buildTarFull, gnuLongName, type TarFullSpec, tarEntry } from '../helpers/tar-builder.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { run } from '../rig/exec.js'
import { hasTool, isCI } from '../rig/tools.js'

afterAll(removeTempDirs)

const isRoot = process.getuid?.() === 0
/** Tests that need root skip without it, and fail under CI=true (CI runs as root). */
function requireRoot(): boolean {
  if (!isRoot && isCI()) throw new Error('these tests need root (CI=true)')
  return isRoot
}
function requireXattrTools(): boolean {
  if (hasTool('setfattr') && hasTool('getfattr')) return true
  if (isCI()) throw new Error('setfattr/getfattr (Debian attr) are required under CI=true')
  return false
}

async function unpack(specs: (TarFullSpec | Buffer)[], options: Partial<UnpackOptions> = {}) {
  const root = join(await makeTempDir('ocipull-unpack-'), 'root')
  mkdirSync(root)
  const warnings: UnpackWarning[] = []
  const stats = await unpackTar(Readable.from([buildTarFull(specs)]), root, {
    whiteouts: 'apply',
    what: 'layer sha256:ab12',
    onWarning: (w) => warnings.push(w),
    ...options,
  })
  return { root, stats, warnings }
}

const T = 1_600_000_000

describe('entry types and metadata', () => {
  test('regular file: content, mode, owner, mtime', async () => {
    const { root, stats } = await unpack([
      { name: 'f.txt', data: 'hello', mode: 0o640, uid: 1000, gid: 1001, mtime: T },
    ])
    const st = lstatSync(join(root, 'f.txt'))
    expect(readFileSync(join(root, 'f.txt'), 'utf8')).toBe('hello')
    expect(st.mode & 0o7777).toBe(0o640)
    expect(st.mtimeMs).toBe(T * 1000)
    if (isRoot) expect([st.uid, st.gid]).toEqual([1000, 1001])
    expect(stats).toEqual({ entries: 1, bytes: 5 })
  })

  test.skipIf(!requireRoot())('setuid, setgid and sticky survive the chown', async () => {
    const { root } = await unpack([
      { name: 'su', data: 'x', mode: 0o6755, uid: 1000, gid: 1000 },
      { name: 'sticky', type: '5', mode: 0o1777, uid: 1000 },
      { name: 'sgdir', type: '5', mode: 0o2775, gid: 50 },
    ])
    expect(lstatSync(join(root, 'su')).mode & 0o7777).toBe(0o6755)
    expect(lstatSync(join(root, 'sticky')).mode & 0o7777).toBe(0o1777)
    expect(lstatSync(join(root, 'sgdir')).mode & 0o7777).toBe(0o2775)
  })

  test('directory mode and mtime are applied after its children', async () => {
    const { root } = await unpack([
      { name: 'd/', type: '5', mode: 0o750, mtime: T },
      { name: 'd/a', data: 'a', mtime: T + 5 },
      { name: 'd/sub/', type: '5', mode: 0o555, mtime: T + 1 },
      { name: 'd/sub/b', data: 'b' },
    ])
    expect(lstatSync(join(root, 'd')).mtimeMs).toBe(T * 1000)
    expect(lstatSync(join(root, 'd')).mode & 0o7777).toBe(0o750)
    expect(lstatSync(join(root, 'd/sub')).mtimeMs).toBe((T + 1) * 1000)
    expect(lstatSync(join(root, 'd/sub')).mode & 0o7777).toBe(0o555)
  })

  test('missing parents are created (0755)', async () => {
    const { root } = await unpack([{ name: 'x/y/z/f', data: 'deep' }])
    expect(readFileSync(join(root, 'x/y/z/f'), 'utf8')).toBe('deep')
    expect(lstatSync(join(root, 'x/y')).mode & 0o777).toBe(0o755)
  })

  test('symlink: target kept verbatim, own owner and mtime', async () => {
    const { root } = await unpack([
      { name: 'abs', type: '2', linkname: '/etc/passwd', uid: 1000, mtime: T },
      { name: 'rel', type: '2', linkname: '../../x' },
    ])
    expect(readlinkSync(join(root, 'abs'))).toBe('/etc/passwd')
    expect(readlinkSync(join(root, 'rel'))).toBe('../../x')
    expect(lstatSync(join(root, 'abs')).mtimeMs).toBe(T * 1000)
    if (isRoot) expect(lstatSync(join(root, 'abs')).uid).toBe(1000)
  })

  test('hardlink within the layer shares the inode, also through an absolute name', async () => {
    const { root } = await unpack([
      { name: 'a', data: 'same', mode: 0o600 },
      { name: 'b', type: '1', linkname: 'a' },
      { name: 'c', type: '1', linkname: '/a' },
      { name: 'l', type: '2', linkname: 'nowhere' },
      { name: 'hl', type: '1', linkname: 'l' },
    ])
    const ino = lstatSync(join(root, 'a')).ino
    expect(lstatSync(join(root, 'b')).ino).toBe(ino)
    expect(lstatSync(join(root, 'c')).ino).toBe(ino)
    expect(lstatSync(join(root, 'a')).nlink).toBe(3)
    // A hardlink to a symlink links the symlink itself (link(2) does not follow).
    expect(lstatSync(join(root, 'hl')).isSymbolicLink()).toBe(true)
  })

  test('fifo', async () => {
    const { root } = await unpack([{ name: 'p', type: '6', mode: 0o620, mtime: T }])
    const st = lstatSync(join(root, 'p'))
    expect(st.isFIFO()).toBe(true)
    expect(st.mode & 0o7777).toBe(0o620)
    expect(st.mtimeMs).toBe(T * 1000)
  })

  test.skipIf(!requireRoot())('char and block devices (root)', async () => {
    const { root } = await unpack([
      { name: 'null', type: '3', devmajor: 1, devminor: 3, mode: 0o666, uid: 5 },
      { name: 'sda', type: '4', devmajor: 8, devminor: 0, mode: 0o660 },
    ])
    const c = lstatSync(join(root, 'null'))
    expect(c.isCharacterDevice()).toBe(true)
    expect([Math.floor(c.rdev / 256), c.rdev % 256, c.mode & 0o7777, c.uid]).toEqual([1, 3, 0o666, 5])
    expect(lstatSync(join(root, 'sda')).isBlockDevice()).toBe(true)
  })

  test('names that are not UTF-8 round-trip byte-exact (ustar, PAX, GNU)', async () => {
    const raw = Buffer.from([0x63, 0x61, 0x66, 0xe9]) // "caf\xe9" in latin1
    const pax = Buffer.from([0x70, 0xff, 0xfe])
    const { root } = await unpack([
      { name: raw, data: 'ustar' },
      { name: 'x', data: 'pax', pax: { path: pax } },
      tarEntry(gnuLongName('g'.repeat(150))),
      { name: 'g', data: 'gnu' },
    ])
    const names = readdirSync(Buffer.from(root), { encoding: 'buffer' })
    expect(names.map((n) => n.toString('hex')).sort()).toEqual(
      [raw, pax, Buffer.from('g'.repeat(150))].map((b) => b.toString('hex')).sort(),
    )
    expect(readFileSync(Buffer.concat([Buffer.from(`${root}/`), raw]), 'utf8')).toBe('ustar')
  })

  test('a symlink target that is not UTF-8 round-trips', async () => {
    const target = Buffer.from([0x2e, 0x2e, 0x2f, 0xe9])
    const { root } = await unpack([{ name: 'l', type: '2', linkname: target }])
    expect(readlinkSync(join(root, 'l'), { encoding: 'buffer' })).toEqual(target)
  })

  test('the root entry gives its metadata to the root', async () => {
    const { root } = await unpack([
      { name: './', type: '5', mode: 0o711, uid: 7, mtime: T },
      { name: './f', data: 'x' },
    ])
    const st = lstatSync(root)
    expect(st.mode & 0o7777).toBe(0o711)
    expect(st.mtimeMs).toBe(T * 1000)
    if (isRoot) expect(st.uid).toBe(7)
  })

  test('times before 1970 and far in the future (Node reads negative numbers as now)', async () => {
    const { root } = await unpack([
      { name: 'old', pax: { mtime: '-100.5' } },
      { name: 'olddir', type: '5', pax: { mtime: '-86400' } },
      { name: 'oldlink', type: '2', linkname: 'x', pax: { mtime: '-1' } },
      { name: 'future', pax: { mtime: '10000000000' } },
    ])
    expect(lstatSync(join(root, 'old')).mtimeMs).toBe(-100500)
    expect(lstatSync(join(root, 'olddir')).mtimeMs).toBe(-86400000)
    expect(lstatSync(join(root, 'oldlink')).mtimeMs).toBe(-1000)
    expect(lstatSync(join(root, 'future')).mtimeMs).toBe(10000000000000)
  })

  test('PAX mtime keeps sub-second precision (to the microsecond)', async () => {
    const { root } = await unpack([{ name: 'f', pax: { mtime: '1600000000.123456' } }])
    expect(statSync(join(root, 'f'), { bigint: true }).mtimeNs / 1000n).toBe(1600000000123456n)
  })
})

describe.skipIf(!requireXattrTools())('xattrs', () => {
  const getfattr = (path: string) =>
    spawnSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', path], { encoding: 'utf8' }).stdout

  test('user xattr with a binary value', async () => {
    const value = Buffer.from([0, 1, 0xff, 0x0a])
    const { root } = await unpack([{ name: 'f', data: 'x', pax: { 'SCHILY.xattr.user.bin': value } }])
    expect(getfattr(join(root, 'f'))).toContain('user.bin=0x0001ff0a')
  })

  test.skipIf(!requireRoot())(
    'security.capability is applied after chown, which would clear it',
    async () => {
      // VFS_CAP_REVISION_2 with cap_net_raw (bit 13) permitted + effective.
      const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex')
      const { root } = await unpack([
        { name: 'ping', data: 'elf', mode: 0o755, uid: 0, pax: { 'SCHILY.xattr.security.capability': cap } },
      ])
      expect(getfattr(join(root, 'ping'))).toContain(`security.capability=0x${cap.toString('hex')}`)
    },
  )

  test('forbidden xattrs are skipped with a warning', async () => {
    const { root, warnings } = await unpack([
      { name: 'f', pax: { 'SCHILY.xattr.security.selinux': 'system_u:object_r:bin_t:s0' } },
    ])
    expect(getfattr(join(root, 'f'))).not.toContain('selinux="system_u')
    expect(warnings.map((w) => w.code)).toEqual(['WARN_XATTR_FORBIDDEN'])
    expect(warnings[0]?.message).toMatch(/^layer sha256:ab12: entry "f": /)
  })

  test.skipIf(!requireRoot())('xattrs on directories and symlinks', async () => {
    const { root } = await unpack([
      { name: 'd', type: '5', pax: { 'SCHILY.xattr.user.d': 'dir' } },
      { name: 'l', type: '2', linkname: '/nowhere', pax: { 'SCHILY.xattr.trusted.l': 'link' } },
    ])
    expect(getfattr(join(root, 'd'))).toContain('user.d=0x646972')
    expect(getfattr(join(root, 'l'))).toContain('trusted.l=0x6c696e6b')
  })
})

describe('streams, limits and cancellation', () => {
  test('consumes every byte, trailing junk included', async () => {
    const tar = Buffer.concat([buildTarFull([{ name: 'f', data: 'x' }]), Buffer.alloc(70000, 7)])
    const root = await makeTempDir()
    let seen = 0
    const input = new PassThrough()
    input.on('data', (c: Buffer) => {
      seen += c.length
    })
    input.end(tar)
    await unpackTar(input, root, { whiteouts: 'apply' })
    expect(seen).toBe(tar.length)
  })

  test('backpressure: input is read at most a bounded window ahead of what is written', async () => {
    // 200 pairs of a fifo (a spawn, ~2 ms: a slow writer) and a 64 KiB file: 13 MB of tar.
    const pair = 512 + 512 + 65536
    const specs = Array.from({ length: 200 }, (_, i) => [
      { name: `p${i}`, type: '6' },
      { name: `f${i}`, data: Buffer.alloc(65536, i) },
    ]).flat()
    const tar = buildTarFull(specs)
    const root = await makeTempDir()
    let produced = 0
    let maxLag = 0
    const input = new Readable({
      highWaterMark: 65536,
      read() {
        const written = Math.floor(readdirSync(root).length / 2) * pair
        maxLag = Math.max(maxLag, produced - written)
        const next = tar.subarray(produced, produced + 65536)
        produced += next.length
        this.push(next.length > 0 ? next : null)
      },
    })
    await unpackTar(input, root, { whiteouts: 'apply' })
    expect(readdirSync(root)).toHaveLength(400)
    // The sink's 4 MiB write-ahead plus the streams' own buffers; far less than the whole tar.
    expect(maxLag).toBeLessThan(6 << 20)
    expect(tar.length).toBeGreaterThan(12 << 20)
  })

  test('large files are streamed in chunks', async () => {
    const size = 8 << 20
    const tar = buildTarFull([{ name: 'big', data: Buffer.alloc(size, 1) }])
    const root = await makeTempDir()
    const chunks = Array.from({ length: Math.ceil(tar.length / 65536) }, (_, i) =>
      tar.subarray(i * 65536, (i + 1) * 65536),
    )
    const stats = await unpackTar(Readable.from(chunks), root, { whiteouts: 'apply' })
    expect(stats.bytes).toBe(size)
    expect(statSync(join(root, 'big')).size).toBe(size)
  })

  const limits: {
    name: string
    specs: TarFullSpec[]
    limits: NonNullable<UnpackOptions['limits']>
    message: RegExp
  }[] = [
    {
      name: 'maxEntries',
      specs: [{ name: 'a' }, { name: 'b' }, { name: 'c' }],
      limits: { maxEntries: 2 },
      message: /more than 2 entries/,
    },
    {
      name: 'maxBytes',
      specs: [{ name: 'a', data: Buffer.alloc(5000) }],
      limits: { maxBytes: 4096 },
      message: /limit of 4096 bytes/,
    },
    {
      name: 'maxPathLength',
      specs: [{ name: 'a'.repeat(60) }],
      limits: { maxPathLength: 50 },
      message: /exceeds the limit of 50/,
    },
  ]
  for (const c of limits) {
    test(`${c.name} → ERR_LIMIT_EXCEEDED`, async () => {
      await expect(unpack(c.specs, { limits: c.limits })).rejects.toMatchObject({
        code: 'ERR_LIMIT_EXCEEDED',
        message: expect.stringMatching(c.message),
      })
    })
  }

  test('an already-aborted signal: ERR_ABORTED, input destroyed', async () => {
    const input = Readable.from([buildTarFull([{ name: 'f' }])])
    const root = await makeTempDir()
    await expect(
      unpackTar(input, root, { whiteouts: 'apply', signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(input.destroyed).toBe(true)
  })

  test('abort while extracting: ERR_ABORTED', async () => {
    const ac = new AbortController()
    const root = await makeTempDir()
    const input = new PassThrough()
    input.write(buildTarFull([{ name: 'f', data: 'x' }], { end: false }))
    const p = unpackTar(input, root, { whiteouts: 'apply', signal: ac.signal })
    setTimeout(() => ac.abort(), 20)
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(existsSync(join(root, 'f'))).toBe(true)
  })

  test('errors name the layer and the entry', async () => {
    await expect(unpack([{ name: 'h', type: '1', linkname: 'nope' }])).rejects.toMatchObject({
      code: 'ERR_LAYER_INVALID',
      message: 'layer sha256:ab12: entry "h": hardlink target "nope" does not exist',
    })
  })

  test('bad options', async () => {
    const root = await makeTempDir()
    const tar = () => Readable.from([buildTarFull([])])
    await expect(unpackTar(tar(), root, { whiteouts: 'bogus' as 'apply' })).rejects.toThrow(TypeError)
    await expect(unpackTar(tar(), join(root, 'missing'), { whiteouts: 'apply' })).rejects.toMatchObject({
      code: 'ERR_OPTIONS_INVALID',
    })
    await expect(unpackTar(tar(), root, { whiteouts: 'apply', limits: { maxEntries: 0 } })).rejects.toThrow(
      TypeError,
    )
  })
})

const CHILD = `
import { lstatSync, mkdtempSync } from 'node:fs'
import { Readable } from 'node:stream'
import { unpackTar } from '${join(process.cwd(), 'src/unpack/unpack-tar.ts')}'
import { buildTarFull } from '${join(process.cwd(), 'test/helpers/tar-builder.ts')}'
const root = mkdtempSync('/tmp/ocipull-nobody-')
const warnings = []
const tar = buildTarFull([
  { name: 'dev/null', type: '3', devmajor: 1, devminor: 3 },
  { name: 'hl', type: '1', linkname: 'dev/null' },
  { name: 'p', type: '6', mode: 0o600 },
  { name: 'f', data: 'x', uid: 1000, mode: 0o4755 },
  { name: 'ro', type: '5', mode: 0o555 },
  { name: 'ro/inside', data: 'y' },
])
const stats = await unpackTar(Readable.from([tar]), root, { whiteouts: 'apply', onWarning: (w) => warnings.push(w.code) })
const st = (p) => lstatSync(root + '/' + p)
console.log(JSON.stringify({ root, uid: process.getuid(), stats, warnings, fifo: st('p').isFIFO(), fmode: st('f').mode & 0o7777,
  fuid: st('f').uid, romode: st('ro').mode & 0o777, inside: st('ro/inside').isFile(), dev: lstatSync(root + '/dev').isDirectory() }))
`

describe.skipIf(!(requireRoot() && hasTool('setpriv')))('not root (run as nobody)', () => {
  test('devices are skipped with warnings, fifos made, no chown, read-only directories still filled', async () => {
    const dir = await makeTempDir('ocipull-nobody-')
    chmodSync(dir, 0o755)
    const script = join(dir, 'child.mts')
    writeFileSync(script, CHILD, { mode: 0o644 })
    const { stdout } = await run('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      'env',
      'HOME=/tmp',
      process.execPath,
      '--import',
      'tsx',
      script,
    ])
    const { root, ...got } = JSON.parse(stdout)
    rmSync(root, { recursive: true, force: true })
    expect(got).toEqual({
      uid: 65534,
      stats: { entries: 6, bytes: 2 },
      warnings: ['WARN_DEVICE_SKIPPED', 'WARN_DEVICE_SKIPPED'],
      fifo: true,
      fmode: 0o4755,
      fuid: 65534,
      romode: 0o555,
      inside: true,
      dev: true,
    })
  })
})
