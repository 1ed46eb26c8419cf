import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { escapeArena, unpackOutcome } from '../helpers/escape-arena.js'
import type { TarFullSpec } from '../helpers/tar-builder.js'
import { removeTempDirs } from '../helpers/temp-dirs.js'

/**
 * Threat: absolute names (and absolute symlink and hardlink targets) used as host paths. Every
 * name is taken relative to the root, as if the root were '/'.
 */

afterAll(removeTempDirs)

describe('absolute paths', () => {
  test('an absolute name naming the host file lands inside the root', async () => {
    const { root, outside, unchanged } = await escapeArena()
    expect(await unpackOutcome(root, [{ name: `${outside}/canary`, data: 'PWNED', mode: 0o777 }])).toBe('ok')
    unchanged()
    expect(readFileSync(join(root, outside, 'canary'), 'utf8')).toBe('PWNED')
  })

  test('double slashes and an absolute PAX path', async () => {
    const { root, outside, unchanged } = await escapeArena()
    const specs: TarFullSpec[] = [
      { name: '//etc//passwd', data: 'a' },
      { name: 'x', data: 'b', pax: { path: `${outside}/dir/inner` } },
    ]
    expect(await unpackOutcome(root, specs)).toBe('ok')
    unchanged()
    expect(readFileSync(join(root, 'etc/passwd'), 'utf8')).toBe('a')
    expect(readFileSync(join(root, outside, 'dir/inner'), 'utf8')).toBe('b')
  })

  test("'/' is the root entry, and must stay a directory", async () => {
    const { root, outside, unchanged } = await escapeArena()
    expect(await unpackOutcome(root, [{ name: '/', type: '5', mode: 0o750 }])).toBe('ok')
    expect(lstatSync(root).mode & 0o777).toBe(0o750)
    expect(await unpackOutcome(root, [{ name: '/', type: '2', linkname: outside }])).toBe('ERR_PATH_UNSAFE')
    expect(await unpackOutcome(root, [{ name: '/', data: 'PWNED' }])).toBe('ERR_PATH_UNSAFE')
    unchanged()
    expect(lstatSync(root).isDirectory()).toBe(true)
  })

  test('absolute symlink targets resolve against the root when written through', async () => {
    const { root, outside, unchanged } = await escapeArena()
    mkdirSync(join(root, 'usr/lib'), { recursive: true })
    const specs: TarFullSpec[] = [
      { name: 'lib', type: '2', linkname: '/usr/lib' },
      { name: 'lib/libc.so', data: 'elf' },
      { name: 'host', type: '2', linkname: `${outside}/dir` },
      { name: 'host/inner', data: 'PWNED' },
    ]
    expect(await unpackOutcome(root, specs)).toBe('ok')
    unchanged()
    expect(readFileSync(join(root, 'usr/lib/libc.so'), 'utf8')).toBe('elf')
    expect(readFileSync(join(root, outside, 'dir/inner'), 'utf8')).toBe('PWNED')
  })

  test('absolute hardlink targets name files inside the root', async () => {
    const { root, unchanged } = await escapeArena()
    const specs: TarFullSpec[] = [
      { name: 'bin/busybox', data: 'bb' },
      { name: 'bin/sh', type: '1', linkname: '/bin/busybox' },
    ]
    expect(await unpackOutcome(root, specs)).toBe('ok')
    unchanged()
    expect(lstatSync(join(root, 'bin/sh')).ino).toBe(lstatSync(join(root, 'bin/busybox')).ino)
  })

  test('an absolute whiteout removes inside the root only', async () => {
    const { root, outside, unchanged } = await escapeArena()
    mkdirSync(join(root, outside, 'dir'), { recursive: true })
    writeFileSync(join(root, outside, 'canary'), 'lower')
    writeFileSync(join(root, outside, 'dir/lower'), 'lower')
    const specs: TarFullSpec[] = [{ name: `${outside}/.wh.canary` }, { name: `${outside}/dir/.wh..wh..opq` }]
    expect(await unpackOutcome(root, specs)).toBe('ok')
    unchanged()
    expect(readdirSync(join(root, outside))).toEqual(['dir'])
    expect(readdirSync(join(root, outside, 'dir'))).toEqual([])
  })
})
