import { linkSync, lstatSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { escapeArena, unpackLayer, unpackOutcome } from '../helpers/escape-arena.js'
import type { TarFullSpec } from '../helpers/tar-builder.js'
import { removeTempDirs } from '../helpers/temp-dirs.js'

/**
 * Threat: a hardlink entry makes a name inside the root for a file outside it (a host file would
 * then be readable, and writable through any later chmod or write). Targets are resolved inside
 * the root (contained: an absolute target or one through an escaping symlink names the file inside
 * the root, which then usually does not exist); a target whose '..' climbs above the root is
 * rejected (ERR_PATH_UNSAFE). The canary's link count must stay 1.
 */

afterAll(removeTempDirs)

describe('hardlink escape', () => {
  const cases: { name: string; specs: (outside: string) => TarFullSpec[]; want: string }[] = [
    {
      name: 'relative target climbing out',
      specs: () => [{ name: 'h', type: '1', linkname: '../outside/canary' }],
      want: 'ERR_PATH_UNSAFE',
    },
    {
      name: 'target climbing out after a real directory',
      specs: () => [
        { name: 'd', type: '5' },
        { name: 'h', type: '1', linkname: 'd/../../outside/canary' },
      ],
      want: 'ERR_PATH_UNSAFE',
    },
    {
      name: 'absolute target naming the host file',
      specs: (o) => [{ name: 'h', type: '1', linkname: `${o}/canary` }],
      want: 'ERR_LAYER_INVALID',
    },
    {
      name: 'absolute target through /proc/self/root',
      specs: (o) => [{ name: 'h', type: '1', linkname: `/proc/self/root${o}/canary` }],
      want: 'ERR_LAYER_INVALID',
    },
    {
      name: 'target through a symlink to a host directory',
      specs: (o) => [
        { name: 'evil', type: '2', linkname: o },
        { name: 'h', type: '1', linkname: 'evil/canary' },
      ],
      want: 'ERR_LAYER_INVALID',
    },
    {
      name: 'target through a relative symlink climbing out',
      specs: () => [
        { name: 'up', type: '2', linkname: '../../..' },
        { name: 'h', type: '1', linkname: 'up/outside/canary' },
      ],
      want: 'ERR_LAYER_INVALID',
    },
    {
      name: 'PAX linkpath climbing out',
      specs: () => [{ name: 'h', type: '1', linkname: 'x', pax: { linkpath: '../../outside/canary' } }],
      want: 'ERR_PATH_UNSAFE',
    },
    {
      name: 'target is a directory',
      specs: () => [
        { name: 'd', type: '5' },
        { name: 'h', type: '1', linkname: 'd' },
      ],
      want: 'ERR_LAYER_INVALID',
    },
  ]
  for (const c of cases) {
    test(`${c.name} → ${c.want}`, async () => {
      const { root, outside, unchanged } = await escapeArena()
      expect(await unpackOutcome(root, c.specs(outside))).toBe(c.want)
      unchanged()
      expect(lstatSync(join(outside, 'canary')).nlink).toBe(1)
    })
  }

  test('the error names the entry and its target', async () => {
    const { root } = await escapeArena()
    await expect(
      unpackLayer(root, [{ name: 'h', type: '1', linkname: '../outside/canary' }]),
    ).rejects.toThrow('layer sha256:ab12: entry "h": hardlink target "../outside/canary" escapes the root')
  })

  test('a hardlink to a symlink pointing outside links the symlink; writing to either replaces it', async () => {
    const { root, outside, unchanged } = await escapeArena()
    const specs: TarFullSpec[] = [
      { name: 's', type: '2', linkname: `${outside}/canary` },
      { name: 'h', type: '1', linkname: 's' },
      { name: 'h', data: 'PWNED', mode: 0o777 },
      { name: 's', data: 'PWNED', mode: 0o777 },
    ]
    expect(await unpackOutcome(root, specs)).toBe('ok')
    unchanged()
    expect(readFileSync(join(root, 'h'), 'utf8')).toBe('PWNED')
  })

  test('a name that is a hardlink to a host file is replaced, never written, chmod-ed or chown-ed', async () => {
    // Hardlinks from the image cannot reach the host (above); this plants one by hand to show that
    // even then an entry of the same name unlinks the old name and creates a new inode.
    const { root, outside } = await escapeArena()
    const host = join(outside, 'dir/inner')
    const before = lstatSync(host)
    linkSync(host, join(root, 'planted'))
    expect(await unpackOutcome(root, [{ name: 'planted', data: 'PWNED', mode: 0o777, uid: 1234 }])).toBe('ok')
    const after = lstatSync(host)
    expect([after.mode, after.uid, after.size, after.mtimeMs]).toEqual([
      before.mode,
      before.uid,
      before.size,
      before.mtimeMs,
    ])
    expect(readFileSync(host, 'utf8')).toBe('inner')
  })
})
