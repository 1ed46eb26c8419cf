import { lstatSync, readFileSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { readFileInRoot } from '../../src/fs/resolve-in-root.js'
import { escapeArena, unpackOutcome } from '../helpers/escape-arena.js'
import type { TarFullSpec } from '../helpers/tar-builder.js'
import { removeTempDirs } from '../helpers/temp-dirs.js'

/**
 * Threat: a symlink in the image (from this layer or a lower one) leads a later write, mkdir,
 * chmod, chown, link or mknod outside the root. Symlinks are followed only inside the root
 * (securejoin); the last component is never followed. A canary tree next to the root must not
 * change in content, mode, owner or mtime, and nothing may appear next to it.
 */

afterAll(removeTempDirs)

const isRoot = process.getuid?.() === 0

describe('symlink escape', () => {
  const cases: { name: string; specs: (outside: string) => TarFullSpec[]; inside?: string; want?: string }[] =
    [
      {
        name: 'absolute symlink to a host directory, then a file through it',
        specs: (o) => [
          { name: 'evil', type: '2', linkname: o },
          { name: 'evil/canary', data: 'PWNED' },
        ],
        inside: 'OUTSIDE/canary',
      },
      {
        name: 'relative symlink climbing out, then a file through it',
        specs: () => [
          { name: 'evil', type: '2', linkname: '../../../../outside' },
          { name: 'evil/canary', data: 'PWNED' },
        ],
        inside: 'outside/canary',
      },
      {
        name: 'symlink chain out of the root',
        specs: (o) => [
          { name: 'a', type: '2', linkname: 'b' },
          { name: 'b', type: '2', linkname: `${o}/../outside` },
          { name: 'a/canary', data: 'PWNED', mode: 0o777 },
        ],
        inside: 'OUTSIDE/canary',
      },
      {
        name: 'symlink to the canary file, then a file of the same name (the link is replaced)',
        specs: (o) => [
          { name: 'c', type: '2', linkname: `${o}/canary` },
          { name: 'c', data: 'PWNED', mode: 0o777 },
        ],
        inside: 'c',
      },
      {
        name: 'symlink to a host directory, then a directory entry of the same name with mode 0777',
        specs: (o) => [
          { name: 'd', type: '2', linkname: `${o}/dir` },
          { name: 'd', type: '5', mode: 0o777, uid: 1234, mtime: 5 },
        ],
      },
      {
        name: 'symlink to a host directory, then directories, links and fifos through it',
        specs: (o) => [
          { name: 'evil', type: '2', linkname: o },
          { name: 'evil/dir', type: '5', mode: 0o777, uid: 1234, mtime: 5 },
          { name: 'evil/dir/new', type: '5' },
          { name: 'evil/link', type: '2', linkname: '/etc/shadow' },
          { name: 'plain', data: 'x' },
          { name: 'evil/hard', type: '1', linkname: 'plain' },
          { name: 'evil/fifo', type: '6' },
        ],
        inside: 'OUTSIDE/dir/new',
      },
      {
        name: "symlink whose target hides '..' behind a missing component",
        specs: (o) => [
          { name: 'evil', type: '2', linkname: o },
          { name: 's', type: '2', linkname: 'missing/../evil' },
          { name: 's/canary', data: 'PWNED' },
        ],
        inside: 'OUTSIDE/canary',
      },
      {
        name: 'a file with xattrs written through a symlink',
        specs: (o) => [
          { name: 'evil', type: '2', linkname: o },
          { name: 'evil/canary', data: 'PWNED', pax: { 'SCHILY.xattr.user.pwned': 'yes' } },
        ],
        inside: 'OUTSIDE/canary',
      },
      {
        name: 'the root entry as a symlink',
        specs: (o) => [
          { name: './', type: '2', linkname: o },
          { name: 'canary', data: 'PWNED' },
        ],
        want: 'ERR_PATH_UNSAFE',
      },
      {
        name: 'a symlink loop',
        specs: () => [
          { name: 'l1', type: '2', linkname: 'l2' },
          { name: 'l2', type: '2', linkname: 'l1' },
          { name: 'l1/x' },
        ],
        want: 'ERR_PATH_UNSAFE',
      },
    ]
  for (const c of cases) {
    test(c.name, async () => {
      const { root, outside, unchanged } = await escapeArena()
      expect(await unpackOutcome(root, c.specs(outside))).toBe(c.want ?? 'ok')
      unchanged()
      if (c.inside !== undefined) {
        const path = join(root, c.inside.replace('OUTSIDE', outside))
        expect(lstatSync(path).isSymbolicLink()).toBe(false)
      }
    })
  }

  test.skipIf(!isRoot)('a device node through a symlink stays inside', async () => {
    const { root, outside, unchanged } = await escapeArena()
    const specs: TarFullSpec[] = [
      { name: 'evil', type: '2', linkname: outside },
      { name: 'evil/null', type: '3', devmajor: 1, devminor: 3, mode: 0o666 },
    ]
    expect(await unpackOutcome(root, specs)).toBe('ok')
    unchanged()
    expect(lstatSync(join(root, outside, 'null')).isCharacterDevice()).toBe(true)
  })

  test('a symlink left by a lower layer', async () => {
    const { root, outside, unchanged } = await escapeArena()
    symlinkSync(outside, join(root, 'evil'))
    symlinkSync('../outside', join(root, 'rel'))
    const specs: TarFullSpec[] = [
      { name: 'evil/canary', data: 'PWNED' },
      { name: 'rel/dir/inner', data: 'PWNED' },
      { name: 'evil/dir', type: '5', mode: 0o777 },
    ]
    expect(await unpackOutcome(root, specs)).toBe('ok')
    unchanged()
    expect(readFileSync(join(root, outside, 'canary'), 'utf8')).toBe('PWNED')
  })

  test('readFileInRoot never reads through an escaping symlink', async () => {
    const { root, outside } = await escapeArena()
    symlinkSync(outside, join(root, 'evil'))
    symlinkSync('missing/../evil', join(root, 'etc'))
    symlinkSync(`${outside}/canary`, join(root, 'direct'))
    for (const path of ['/etc/canary', 'evil/canary', 'direct', '../outside/canary']) {
      expect(readFileInRoot(root, path, { maxBytes: 100 })).toBeUndefined()
    }
  })
})
