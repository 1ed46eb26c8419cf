import { createHash } from 'node:crypto'
import {
  chownSync,
  createReadStream,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { unpackTar } from '../../src/unpack/unpack-tar.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { run } from '../rig/exec.js'
import { isCI, requireTool } from '../rig/tools.js'

/**
 * The same layer, built by GNU tar from a tree made here, extracted by unpackTar and by
 * `tar -xpf --same-owner --xattrs` (as root); the two trees must match in paths (bytes), types,
 * modes, owners, sizes, contents, link targets, hardlink groups, device numbers, mtimes and xattrs.
 */

const ready = (() => {
  const tools = requireTool('tar', 'mknod', 'setfattr', 'getfattr')
  if (process.getuid?.() !== 0) {
    if (isCI()) throw new Error('the GNU tar comparison needs root (CI=true)')
    return false
  }
  return tools
})()

afterAll(removeTempDirs)

const T = 1_600_000_000
const NON_UTF8 = Buffer.from([0x6e, 0x6f, 0x6e, 0x2d, 0xe9, 0xff, 0x2e, 0x74, 0x78, 0x74]) // "non-\xe9\xff.txt"

async function makeSource(src: string): Promise<void> {
  const p = (rel: string) => join(src, rel)
  mkdirSync(p('etc/ssl'), { recursive: true })
  mkdirSync(p('usr/bin'), { recursive: true })
  mkdirSync(p('home/user'), { recursive: true, mode: 0o750 })
  writeFileSync(p('etc/hostname'), 'ocipull\n')
  writeFileSync(p('etc/ssl/key.pem'), 'secret', { mode: 0o600 })
  writeFileSync(p('usr/bin/busybox'), Buffer.alloc(70000, 0xab), { mode: 0o755 })
  linkSync(p('usr/bin/busybox'), p('usr/bin/sh'))
  linkSync(p('usr/bin/busybox'), p('usr/bin/ls'))
  writeFileSync(p('usr/bin/su'), 'setuid', { mode: 0o755 })
  await run('chmod', ['4755', p('usr/bin/su')])
  writeFileSync(p('usr/bin/wall'), 'setgid', { mode: 0o755 })
  await run('chmod', ['2755', p('usr/bin/wall')])
  mkdirSync(p('tmp'), { mode: 0o777 })
  await run('chmod', ['1777', p('tmp')])
  writeFileSync(p('home/user/notes'), 'mine')
  chownSync(p('home/user/notes'), 1000, 1000)
  chownSync(p('home/user'), 1000, 1000)
  symlinkSync('busybox', p('usr/bin/vi'))
  symlinkSync('/etc/hostname', p('etc/abs-link'))
  symlinkSync('../../nowhere', p('etc/dangling'))
  symlinkSync('usr/bin', p('bin'))
  await run('mkfifo', ['-m', '0640', p('tmp/fifo')])
  mkdirSync(p('dev'))
  await run('mknod', ['-m', '0666', p('dev/null'), 'c', '1', '3'])
  const deep = Array.from({ length: 40 }, (_, i) => `level${i}`).join('/')
  mkdirSync(p(deep), { recursive: true })
  writeFileSync(p(`${deep}/bottom`), 'deep')
  const long = `${'long-name-'.repeat(20)}end`
  writeFileSync(p(long), 'long name')
  symlinkSync(`${'target-'.repeat(20)}x`, p('long-link'))
  writeFileSync(Buffer.concat([Buffer.from(`${src}/`), NON_UTF8]), 'latin1')
  await run('setfattr', ['-n', 'user.comment', '-v', '0sAP8BAg==', p('etc/hostname')])
  await run('setfattr', [
    '-n',
    'security.capability',
    '-v',
    '0x0100000200200000000000000000000000000000',
    p('usr/bin/su'),
  ])
  // Fixed times, sub-second ones included; directories last so their children do not change them.
  await run('find', [src, '-not', '-type', 'd', '-exec', 'touch', '-h', '-d', `@${T}`, '{}', '+'])
  await run('touch', ['-h', '-d', `@${T}.123456789`, p('etc/hostname')])
  await run('find', [src, '-type', 'd', '-exec', 'touch', '-d', `@${T + 7}`, '{}', '+'])
}

interface Row {
  type: string
  mode: number
  uid: number
  gid: number
  size?: number
  sha256?: string
  link?: string
  rdev?: number
  /** Microseconds (unpackTar sets times through doubles; GNU tar to the nanosecond). */
  mtimeUs: bigint
  hardlinks: number
  xattrs: string
}

/** Every entry under `root` by its name bytes (hex for names that are not ASCII). */
async function listing(root: string): Promise<Map<string, Row>> {
  const out = new Map<string, Row>()
  const inodes = new Map<bigint, string>()
  const walk = async (dir: Buffer, rel: string) => {
    const st = lstatSync(dir, { bigint: true })
    const type = st.isDirectory()
      ? 'dir'
      : st.isSymbolicLink()
        ? 'symlink'
        : st.isFIFO()
          ? 'fifo'
          : st.isCharacterDevice()
            ? 'char'
            : 'file'
    const row: Row = {
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeUs: st.mtimeNs / 1000n,
      hardlinks: 0,
      xattrs:
        type === 'symlink'
          ? ''
          : (
              await run('getfattr', [
                '-d',
                '-m',
                '-',
                '-e',
                'hex',
                '--absolute-names',
                dir.toString('latin1'),
              ]).catch(() => ({ stdout: '?' }))
            ).stdout.replace(/^# file: .*$/m, ''),
    }
    if (type === 'file') {
      const data = readFileSync(dir)
      row.size = data.length
      row.sha256 = createHash('sha256').update(data).digest('hex')
      // Hardlink groups: 1 for the first path seen with an inode, 2 for the others (same walk order).
      if (st.nlink > 1n) {
        row.hardlinks = inodes.has(st.ino) ? 2 : 1
        inodes.set(st.ino, rel)
      }
    }
    if (type === 'symlink') row.link = readlinkSync(dir, { encoding: 'buffer' }).toString('hex')
    if (type === 'char') row.rdev = Number(st.rdev)
    out.set(rel, row)
    if (type === 'dir') {
      for (const name of readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)) {
        const shown = /^[\x20-\x7e]*$/.test(name.toString('latin1'))
          ? name.toString('latin1')
          : `hex:${name.toString('hex')}`
        await walk(Buffer.concat([dir, Buffer.from('/'), name]), rel === '.' ? shown : `${rel}/${shown}`)
      }
    }
  }
  await walk(Buffer.from(root), '.')
  return out
}

describe.skipIf(!ready)('unpackTar matches GNU tar', () => {
  let ours: Map<string, Row>
  let gnu: Map<string, Row>

  beforeAll(async () => {
    const base = await makeTempDir('ocipull-gnu-')
    const src = join(base, 'src')
    mkdirSync(src, { mode: 0o755 })
    await makeSource(src)
    const layer = join(base, 'layer.tar')
    await run('tar', ['--xattrs', '--xattrs-include=*', '--format=pax', '-cf', layer, '-C', src, '.'])
    const a = join(base, 'ours')
    const b = join(base, 'gnu')
    mkdirSync(a)
    mkdirSync(b)
    await unpackTar(createReadStream(layer), a, { whiteouts: 'apply', what: 'layer' })
    await run('tar', ['-xpf', layer, '--same-owner', '--xattrs', '--xattrs-include=*', '-C', b])
    ours = await listing(a)
    gnu = await listing(b)
  })

  test('the same paths', () => {
    expect([...ours.keys()]).toEqual([...gnu.keys()])
    expect(ours.size).toBeGreaterThan(60)
    expect(ours.has(`hex:${NON_UTF8.toString('hex')}`)).toBe(true)
  })

  test('the same type, mode, owner, size, content, link target, device and hardlinks', () => {
    const strip = (m: Map<string, Row>) =>
      [...m].map(([k, { mtimeUs: _, xattrs: __, ...rest }]) => [k, rest] as const)
    expect(strip(ours)).toEqual(strip(gnu))
  })

  test('the same mtimes (to the microsecond)', () => {
    for (const [path, row] of gnu) {
      const mine = ours.get(path)?.mtimeUs ?? 0n
      const diff = mine > row.mtimeUs ? mine - row.mtimeUs : row.mtimeUs - mine
      expect({ path, close: diff <= 1n }).toEqual({ path, close: true })
    }
  })

  test('the same xattrs', () => {
    const x = (m: Map<string, Row>) => [...m].map(([k, r]) => [k, r.xattrs] as const)
    expect(x(ours)).toEqual(x(gnu))
    expect(ours.get('usr/bin/su')?.xattrs).toContain('security.capability=0x01000002002')
    expect(ours.get('etc/hostname')?.xattrs).toContain('user.comment=0x00ff0102')
  })
})
