import { createHash } from 'node:crypto'
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, describe, expect, test } from 'vitest'
import { unpackTar } from '../../src/unpack/unpack-tar.js'
import { buildTarFull, type TarFullSpec } from '../helpers/tar-builder.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'

/**
 * Threat: absolute names (and absolute symlink and hardlink targets) used as host paths. Every
 * name is taken relative to the root, as if the root were '/'.
 */

afterAll(removeTempDirs)

async function arena() {
  const base = await makeTempDir('ocipull-sec-')
  const root = join(base, 'root')
  const outside = join(base, 'outside')
  mkdirSync(root)
  mkdirSync(join(outside, 'dir'), { recursive: true })
  writeFileSync(join(outside, 'canary'), 'canary', { mode: 0o644 })
  writeFileSync(join(outside, 'dir/inner'), 'inner', { mode: 0o600 })
  for (const p of ['canary', 'dir/inner', 'dir', '.']) utimesSync(join(outside, p), 1e9, 1e9)
  const before = snapshot(base)
  return { root, outside, unchanged: () => expect(snapshot(base)).toEqual(before) }
}

/** Everything under `dir` but the root: type, mode, owner, size, mtime, content hash, link target. */
function snapshot(dir: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {}
  const st = lstatSync(join(dir, rel))
  const hash = st.isFile()
    ? createHash('sha256')
        .update(readFileSync(join(dir, rel)))
        .digest('hex')
    : ''
  const link = st.isSymbolicLink() ? readlinkSync(join(dir, rel)) : ''
  out[rel || '.'] = `${st.mode} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${hash}${link}`
  if (st.isDirectory()) {
    for (const name of readdirSync(join(dir, rel))) {
      if (rel === '' && name === 'root') continue
      Object.assign(out, snapshot(dir, rel === '' ? name : `${rel}/${name}`))
    }
  }
  return out
}

async function unpack(
  root: string,
  specs: TarFullSpec[],
  whiteouts: 'apply' | 'overlay' = 'apply',
): Promise<string> {
  try {
    await unpackTar(Readable.from([buildTarFull(specs)]), root, {
      whiteouts,
      what: 'layer sha256:ab12',
    })
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

describe('absolute paths', () => {
  test('an absolute name naming the host file lands inside the root', async () => {
    const { root, outside, unchanged } = await arena()
    expect(await unpack(root, [{ name: `${outside}/canary`, data: 'PWNED', mode: 0o777 }])).toBe('ok')
    unchanged()
    expect(readFileSync(join(root, outside, 'canary'), 'utf8')).toBe('PWNED')
  })

  test('double slashes and an absolute PAX path', async () => {
    const { root, outside, unchanged } = await arena()
    const specs: TarFullSpec[] = [
      { name: '//etc//passwd', data: 'a' },
      { name: 'x', data: 'b', pax: { path: `${outside}/dir/inner` } },
    ]
    expect(await unpack(root, specs)).toBe('ok')
    unchanged()
    expect(readFileSync(join(root, 'etc/passwd'), 'utf8')).toBe('a')
    expect(readFileSync(join(root, outside, 'dir/inner'), 'utf8')).toBe('b')
  })

  test("'/' is the root entry, and must stay a directory", async () => {
    const { root, outside, unchanged } = await arena()
    expect(await unpack(root, [{ name: '/', type: '5', mode: 0o750 }])).toBe('ok')
    expect(lstatSync(root).mode & 0o777).toBe(0o750)
    expect(await unpack(root, [{ name: '/', type: '2', linkname: outside }])).toBe('ERR_PATH_UNSAFE')
    expect(await unpack(root, [{ name: '/', data: 'PWNED' }])).toBe('ERR_PATH_UNSAFE')
    unchanged()
    expect(lstatSync(root).isDirectory()).toBe(true)
  })

  test('absolute symlink targets resolve against the root when written through', async () => {
    const { root, outside, unchanged } = await arena()
    mkdirSync(join(root, 'usr/lib'), { recursive: true })
    const specs: TarFullSpec[] = [
      { name: 'lib', type: '2', linkname: '/usr/lib' },
      { name: 'lib/libc.so', data: 'elf' },
      { name: 'host', type: '2', linkname: `${outside}/dir` },
      { name: 'host/inner', data: 'PWNED' },
    ]
    expect(await unpack(root, specs)).toBe('ok')
    unchanged()
    expect(readFileSync(join(root, 'usr/lib/libc.so'), 'utf8')).toBe('elf')
    expect(readFileSync(join(root, outside, 'dir/inner'), 'utf8')).toBe('PWNED')
  })

  test('absolute hardlink targets name files inside the root', async () => {
    const { root, unchanged } = await arena()
    const specs: TarFullSpec[] = [
      { name: 'bin/busybox', data: 'bb' },
      { name: 'bin/sh', type: '1', linkname: '/bin/busybox' },
    ]
    expect(await unpack(root, specs)).toBe('ok')
    unchanged()
    expect(lstatSync(join(root, 'bin/sh')).ino).toBe(lstatSync(join(root, 'bin/busybox')).ino)
  })

  test('an absolute whiteout removes inside the root only', async () => {
    const { root, outside, unchanged } = await arena()
    mkdirSync(join(root, outside, 'dir'), { recursive: true })
    writeFileSync(join(root, outside, 'canary'), 'lower')
    writeFileSync(join(root, outside, 'dir/lower'), 'lower')
    const specs: TarFullSpec[] = [{ name: `${outside}/.wh.canary` }, { name: `${outside}/dir/.wh..wh..opq` }]
    expect(await unpack(root, specs)).toBe('ok')
    unchanged()
    expect(readdirSync(join(root, outside))).toEqual(['dir'])
    expect(readdirSync(join(root, outside, 'dir'))).toEqual([])
  })
})
