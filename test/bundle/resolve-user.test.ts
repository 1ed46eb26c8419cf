import { spawnSync } from 'node:child_process'
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { MAX_ID, type ResolvedUser, resolveUser } from '../../src/bundle/resolve-user.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { hasTool } from '../rig/tools.js'

afterAll(removeTempDirs)

type Entry = string | { symlink: string } | { dir: true }

/** A fresh rootfs holding `files` (path inside the rootfs → content, symlink target or directory). */
async function makeRootfs(files: Record<string, Entry>): Promise<string> {
  const root = join(await makeTempDir('ocipull-user-'), 'rootfs')
  await mkdir(root)
  for (const [path, entry] of Object.entries(files)) {
    const host = join(root, path)
    await mkdir(dirname(host), { recursive: true })
    if (typeof entry === 'string') await writeFile(host, entry)
    else if ('symlink' in entry) await symlink(entry.symlink, host)
    else await mkdir(host, { recursive: true })
  }
  return root
}

const PASSWD = [
  '# comment line',
  'root:x:0:0:root:/root:/bin/sh',
  '',
  'alice:x:1000:1000:Alice:/home/alice:/bin/sh',
  'bob:x:1001:1001::/home/bob:/bin/sh',
  'alice:x:2000:2000::/duplicate:/bin/sh',
  'nohome:x:1002:1002',
  'relhome:x:1003:1003::relative/home:/bin/sh',
  'crlf:x:1004:1004::/home/crlf:/bin/sh\r',
  '+nis::::::',
  'badid:x:abc:1::/x:/bin/sh',
  'toobig:x:4294967295:1::/x:/bin/sh',
  'neg:x:-1:1::/x:/bin/sh',
  'short:x',
  'nul\0name:x:1005:1005::/x:/bin/sh',
  'max:x:4294967294:4294967294::/max:/bin/sh',
].join('\n')

const GROUP = [
  'root:x:0:',
  'wheel:x:10:root,alice',
  'staff:x:50:alice,bob',
  'staff-again:x:50:alice',
  'alice:x:1000:alice',
  'devs:x:2000: alice , bob ',
  'audio:x:63:',
  'bad:x:zz:alice',
  'staff:x:51:',
  '# other:x:70:alice',
].join('\n')

let rootfs: string
beforeAll(async () => {
  rootfs = await makeRootfs({ 'etc/passwd': PASSWD, 'etc/group': GROUP })
})

const user = (uid: number, gid: number, additionalGids: number[], home: string): ResolvedUser => ({
  uid,
  gid,
  additionalGids,
  home,
})
const ROOT = user(0, 0, [10], '/root')
const ALICE = user(1000, 1000, [10, 50, 2000], '/home/alice')

describe('resolveUser: every form', () => {
  const cases: { spec: string | undefined; want: ResolvedUser }[] = [
    { spec: undefined, want: ROOT },
    { spec: '', want: ROOT },
    { spec: 'root', want: ROOT },
    { spec: '0', want: ROOT },
    { spec: 'alice', want: ALICE },
    { spec: '1000', want: ALICE },
    { spec: 'bob', want: user(1001, 1001, [50, 2000], '/home/bob') },
    // an explicit group replaces the passwd gid and drops supplementary groups (docker, umoci)
    { spec: 'alice:staff', want: user(1000, 50, [], '/home/alice') },
    { spec: 'alice:7', want: user(1000, 7, [], '/home/alice') },
    { spec: 'alice:0', want: user(1000, 0, [], '/home/alice') },
    { spec: '1000:staff', want: user(1000, 50, [], '/home/alice') },
    { spec: '1000:1234', want: user(1000, 1234, [], '/home/alice') },
    // a uid without a passwd entry: gid 0 and home "/" (libcontainer, docker, umoci)
    { spec: '4242', want: user(4242, 0, [], '/') },
    { spec: '4242:staff', want: user(4242, 50, [], '/') },
    { spec: '4242:4343', want: user(4242, 4343, [], '/') },
    { spec: '007', want: user(7, 0, [], '/') },
    { spec: 'nohome', want: user(1002, 1002, [], '/') },
    { spec: 'relhome', want: user(1003, 1003, [], '/') },
    { spec: 'crlf', want: user(1004, 1004, [], '/home/crlf') },
    { spec: 'max', want: user(MAX_ID, MAX_ID, [], '/max') },
    { spec: `${MAX_ID}:${MAX_ID}`, want: user(MAX_ID, MAX_ID, [], '/max') },
  ]
  for (const c of cases) {
    test(`${JSON.stringify(c.spec)}`, () => expect(resolveUser(rootfs, c.spec)).toEqual(c.want))
  }
})

describe('resolveUser: rejects', () => {
  const cases: { spec: string; message: RegExp }[] = [
    { spec: 'nosuch', message: /^app:1: user "nosuch": no user "nosuch" in \/etc\/passwd$/ },
    { spec: 'alice:nogroup', message: /no group "nogroup" in \/etc\/group/ },
    { spec: '4294967295', message: /uid 4294967295 is out of range/ },
    { spec: '1:4294967295', message: /gid 4294967295 is out of range/ },
    { spec: '99999999999999999999', message: /out of range/ },
    { spec: '-1', message: /no user "-1"/ },
    { spec: 'a:b:c', message: /want user\[:group\]/ },
    { spec: 'alice:', message: /want user\[:group\]/ },
    { spec: ':staff', message: /want user\[:group\]/ },
    // malformed lines are skipped, so their names are unknown
    { spec: 'badid', message: /no user "badid"/ },
    { spec: 'toobig', message: /no user "toobig"/ },
    { spec: 'neg', message: /no user "neg"/ },
    { spec: 'short', message: /no user "short"/ },
    { spec: '+nis', message: /no user "\+nis"/ },
    { spec: 'alice:bad', message: /no group "bad"/ },
    { spec: 'alice:other', message: /no group "other"/ },
  ]
  for (const c of cases) {
    test(JSON.stringify(c.spec), () => {
      expect(() => resolveUser(rootfs, c.spec, { image: 'app:1' })).toThrow(
        expect.objectContaining({ code: 'ERR_USER_INVALID', message: expect.stringMatching(c.message) }),
      )
    })
  }

  test('duplicate names: the first entry wins', () => {
    expect(resolveUser(rootfs, 'alice').uid).toBe(1000)
    expect(resolveUser(rootfs, 'alice:staff').gid).toBe(50)
  })
})

describe('resolveUser: missing and hostile files', () => {
  test('no /etc/passwd: numeric users work, names fail naming the image', async () => {
    const root = await makeRootfs({ 'etc/group': GROUP })
    expect(resolveUser(root, '1234')).toEqual(user(1234, 0, [], '/'))
    expect(resolveUser(root, '')).toEqual(user(0, 0, [], '/'))
    expect(resolveUser(root, '1234:staff')).toEqual(user(1234, 50, [], '/'))
    expect(() => resolveUser(root, 'root', { image: 'oci:x' })).toThrow(
      expect.objectContaining({
        code: 'ERR_USER_INVALID',
        message: 'oci:x: user "root": the image has no /etc/passwd',
      }),
    )
  })

  test('no /etc/group: no supplementary groups, group names fail', async () => {
    const root = await makeRootfs({ 'etc/passwd': PASSWD })
    expect(resolveUser(root, 'alice')).toEqual(user(1000, 1000, [], '/home/alice'))
    expect(resolveUser(root, 'alice:5')).toEqual(user(1000, 5, [], '/home/alice'))
    expect(() => resolveUser(root, 'alice:staff')).toThrow(
      expect.objectContaining({ code: 'ERR_USER_INVALID' }),
    )
  })

  test('a file over the size cap is refused', async () => {
    const big = `${'#'.repeat(4 * 1024 * 1024)}\nroot:x:0:0::/root:/bin/sh\n`
    const root = await makeRootfs({ 'etc/passwd': big })
    expect(() => resolveUser(root, 'root', { image: 'big' })).toThrow(
      expect.objectContaining({
        code: 'ERR_LIMIT_EXCEEDED',
        message: expect.stringMatching(/^big: user "root": \/etc\/passwd: /),
      }),
    )
    const small = await makeRootfs({ 'etc/passwd': PASSWD })
    expect(() => resolveUser(small, 'root', { maxBytes: 100 })).toThrow(
      expect.objectContaining({ code: 'ERR_LIMIT_EXCEEDED' }),
    )
  })

  test('a huge line under the cap is skipped, the rest still parses', async () => {
    const huge = `${'x'.repeat(3 * 1024 * 1024)}:x:1:1::/h:/bin/sh`
    const root = await makeRootfs({
      'etc/passwd': `${huge}\nalice:x:1000:1000::/home/alice:/bin/sh\n${'9'.repeat(100_000)}\n`,
      'etc/group': `${'g'.repeat(1024 * 1024)}:x:5:alice\nstaff:x:50:${'m,'.repeat(100_000)}alice\n`,
    })
    expect(resolveUser(root, 'alice')).toEqual(user(1000, 1000, [5, 50], '/home/alice'))
  })

  test('binary junk is no users at all', async () => {
    const junk = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) % 256)).toString('latin1')
    const root = await makeRootfs({ 'etc/passwd': junk, 'etc/group': junk })
    expect(resolveUser(root, '5')).toEqual(user(5, 0, [], '/'))
    expect(() => resolveUser(root, 'root')).toThrow(expect.objectContaining({ code: 'ERR_USER_INVALID' }))
  })

  test('/etc/passwd -> /etc/shadow resolves to the image shadow, never the host one', async () => {
    const absent = await makeRootfs({ 'etc/passwd': { symlink: '/etc/shadow' } })
    expect(() => resolveUser(absent, 'root')).toThrow(/the image has no \/etc\/passwd/)
    const present = await makeRootfs({
      'etc/passwd': { symlink: '/etc/shadow' },
      'etc/shadow': 'root:x:0:0::/image-shadow:/bin/sh\n',
    })
    expect(resolveUser(present, 'root').home).toBe('/image-shadow')
  })

  test('a relative symlink climbing out of the rootfs stays inside it', async () => {
    const base = await makeTempDir('ocipull-user-escape-')
    await mkdir(join(base, 'outside', 'etc'), { recursive: true })
    await writeFile(join(base, 'outside', 'etc', 'passwd'), 'escaped:x:1:1::/outside:/bin/sh\n')
    const root = join(base, 'rootfs')
    await mkdir(join(root, 'etc'), { recursive: true })
    await mkdir(join(root, 'outside', 'etc'), { recursive: true })
    await writeFile(join(root, 'outside', 'etc', 'passwd'), 'contained:x:2:2::/inside:/bin/sh\n')
    // Followed naively from rootfs/etc, the link names base/outside/etc/passwd on the host.
    await symlink('../../outside/etc/passwd', join(root, 'etc', 'passwd'))
    expect(await readFile(join(root, 'etc', 'passwd'), 'utf8')).toMatch(/^escaped:/)
    expect(resolveUser(root, 'contained')).toEqual(user(2, 2, [], '/inside'))
    expect(() => resolveUser(root, 'escaped')).toThrow(expect.objectContaining({ code: 'ERR_USER_INVALID' }))
  })

  test('/etc itself a symlink to an absolute host dir is resolved inside the rootfs', async () => {
    const root = await makeRootfs({ etc: { symlink: '/etc' } })
    // rootfs/etc -> /etc -> rootfs/etc again: a loop, never the host's /etc
    expect(() => resolveUser(root, 'root')).toThrow(expect.objectContaining({ code: expect.any(String) }))
    const hostDir = await makeTempDir('ocipull-user-host-')
    await writeFile(join(hostDir, 'passwd'), 'hostuser:x:3:3::/host:/bin/sh\n')
    const other = await makeRootfs({ etc: { symlink: hostDir } })
    expect(() => resolveUser(other, 'hostuser')).toThrow(/the image has no \/etc\/passwd/)
  })

  test('a directory or fifo at /etc/passwd counts as no file (and does not hang)', async () => {
    const dir = await makeRootfs({ 'etc/passwd': { dir: true } })
    expect(resolveUser(dir, '9')).toEqual(user(9, 0, [], '/'))
    if (!hasTool('mkfifo')) return
    const fifo = await makeRootfs({ 'etc/group': GROUP })
    expect(spawnSync('mkfifo', [join(fifo, 'etc', 'passwd')]).status).toBe(0)
    expect(() => resolveUser(fifo, 'root')).toThrow(/the image has no \/etc\/passwd/)
  })
})
