import { lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { escapeArena, unpackOutcome } from '../helpers/escape-arena.js'
import type { TarFullSpec } from '../helpers/tar-builder.js'
import { removeTempDirs } from '../helpers/temp-dirs.js'

/**
 * Threat: a whiteout (or opaque marker) that deletes outside the root: through '..', through a
 * symlink of this or a lower layer, or by naming its own directory or the parent ('.wh.',
 * '.wh..', '.wh...'). Whiteouts are resolved like any entry (the directory inside the root, the
 * name never followed: a whiteout of a symlink removes the link, not its target).
 */

afterAll(removeTempDirs)

const isRoot = process.getuid?.() === 0

describe('whiteout escape', () => {
  const rejected: { name: string; path: string }[] = [
    { name: 'climbing out', path: '../.wh.outside' },
    { name: 'climbing out to a file', path: '../outside/.wh.canary' },
    { name: 'opaque marker climbing out', path: '../outside/.wh..wh..opq' },
    { name: 'empty name', path: 'd/.wh.' },
    { name: 'naming its directory', path: 'd/.wh..' },
    { name: 'naming the parent', path: 'd/.wh...' },
    { name: 'naming the parent of the root', path: '.wh...' },
  ]
  for (const c of rejected) {
    test(`${c.name} (${c.path}) → ERR_PATH_UNSAFE`, async () => {
      const { root, unchanged } = await escapeArena()
      mkdirSync(join(root, 'd'))
      writeFileSync(join(root, 'd/lower'), 'x')
      expect(await unpackOutcome(root, [{ name: c.path }])).toBe('ERR_PATH_UNSAFE')
      unchanged()
      expect(readdirSync(join(root, 'd'))).toEqual(['lower'])
    })
  }

  const contained: {
    name: string
    specs: (outside: string) => TarFullSpec[]
    lower?: (root: string, outside: string) => void
  }[] = [
    {
      name: 'whiteouts through a symlink of this layer',
      specs: (o) => [
        { name: 'evil', type: '2', linkname: o },
        { name: 'evil/.wh.canary' },
        { name: 'evil/.wh.dir' },
      ],
    },
    {
      name: 'opaque marker through a relative symlink climbing out',
      specs: () => [{ name: 'evil', type: '2', linkname: '../../outside' }, { name: 'evil/.wh..wh..opq' }],
    },
    {
      name: 'whiteouts through a symlink of a lower layer',
      lower: (r, o) => symlinkSync(o, join(r, 'evil')),
      specs: () => [{ name: 'evil/.wh.canary' }, { name: 'evil/dir/.wh..wh..opq' }],
    },
    {
      name: 'a whiteout of a symlink to a host directory removes the link only',
      lower: (r, o) => symlinkSync(`${o}/dir`, join(r, 'link')),
      specs: () => [{ name: '.wh.link' }],
    },
    {
      name: 'an opaque root holding a symlink to a host directory',
      lower: (r, o) => symlinkSync(o, join(r, 'link')),
      specs: () => [{ name: '.wh..wh..opq' }],
    },
    {
      name: 'a lower symlink to a host directory replaced by a file',
      lower: (r, o) => symlinkSync(`${o}/dir`, join(r, 'd')),
      specs: () => [{ name: 'd', data: 'file now' }],
    },
  ]
  for (const c of contained) {
    test(c.name, async () => {
      const { root, outside, unchanged } = await escapeArena()
      c.lower?.(root, outside)
      expect(await unpackOutcome(root, c.specs(outside))).toBe('ok')
      unchanged()
    })
  }

  test.skipIf(!isRoot)(
    "'overlay' mode: a whiteout device through a symlink is made inside the root",
    async () => {
      const { root, outside, unchanged } = await escapeArena()
      const specs: TarFullSpec[] = [
        { name: 'evil', type: '2', linkname: outside },
        { name: 'evil/.wh.canary' },
      ]
      expect(await unpackOutcome(root, specs, 'overlay')).toBe('ok')
      unchanged()
      expect(lstatSync(join(root, outside, 'canary')).isCharacterDevice()).toBe(true)
    },
  )
})
