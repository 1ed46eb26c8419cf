import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { escapeArena, unpackLayer, unpackOutcome } from '../helpers/escape-arena.js'
import { type TarFullSpec, tarEntryFull } from '../helpers/tar-builder.js'
import { removeTempDirs } from '../helpers/temp-dirs.js'

/**
 * Threat: '..' in an entry name (ustar, PAX path, GNU long name) walks out of the root. Names are
 * cleaned lexically, like umoci; a name whose '..' climbs above the root is rejected with
 * ERR_PATH_UNSAFE (umoci clamps it; GNU tar and image-rs refuse such names too), and one that
 * stays inside ('a/../b') is taken as cleaned.
 */

afterAll(removeTempDirs)

const longName = `${'x/'.repeat(60)}${'../'.repeat(62)}outside/canary`

describe("'..' traversal", () => {
  const bad: { name: string; spec: TarFullSpec | Buffer; shown: string }[] = [
    { name: 'leading ..', spec: { name: '../outside/canary', data: 'PWNED' }, shown: '../outside/canary' },
    { name: './..', spec: { name: './../outside/canary', data: 'PWNED' }, shown: './../outside/canary' },
    {
      name: 'climbing past a real directory',
      spec: { name: 'a/../../outside/canary', data: 'PWNED' },
      shown: 'a/../../outside/canary',
    },
    {
      name: 'deep climb',
      spec: { name: 'a/b/../../../../../../tmp/x', data: 'PWNED' },
      shown: 'a/b/../../../../../../tmp/x',
    },
    { name: 'bare ..', spec: { name: '..', type: '5', mode: 0o777 }, shown: '..' },
    {
      name: 'directory entry',
      spec: { name: '../outside/dir/', type: '5', mode: 0o777 },
      shown: '../outside/dir/',
    },
    {
      name: 'symlink entry',
      spec: { name: '../outside/link', type: '2', linkname: '/' },
      shown: '../outside/link',
    },
    { name: 'fifo entry', spec: { name: '../outside/fifo', type: '6' }, shown: '../outside/fifo' },
    {
      name: 'PAX path',
      spec: { name: 'innocent', data: 'PWNED', pax: { path: '../outside/canary' } },
      shown: '../outside/canary',
    },
    {
      name: 'GNU long name',
      spec: Buffer.concat([
        tarEntryFull({ name: '././@LongLink', type: 'L', data: `${longName}\0` }),
        tarEntryFull({ name: 'innocent', data: 'PWNED' }),
      ]),
      shown: longName,
    },
  ]
  for (const c of bad) {
    test(`${c.name} → ERR_PATH_UNSAFE`, async () => {
      const { root, unchanged } = await escapeArena()
      await expect(unpackLayer(root, [c.spec])).rejects.toMatchObject({
        code: 'ERR_PATH_UNSAFE',
        message: `layer sha256:ab12: entry ${JSON.stringify(c.shown)}: path escapes the root`,
      })
      unchanged()
      expect(readdirSync(root)).toEqual([])
    })
  }

  test("'..' that stays inside is cleaned lexically (umoci)", async () => {
    const { root, unchanged } = await escapeArena()
    expect(
      await unpackOutcome(root, [
        { name: 'a/../b', data: 'ok' },
        { name: './c/./d/../e', data: 'ok' },
      ]),
    ).toBe('ok')
    unchanged()
    expect(readFileSync(join(root, 'b'), 'utf8')).toBe('ok')
    expect(readFileSync(join(root, 'c/e'), 'utf8')).toBe('ok')
  })

  test("'..' in a symlink target is resolved inside the root when written through", async () => {
    const { root, unchanged } = await escapeArena()
    const specs: TarFullSpec[] = [
      { name: 'up', type: '2', linkname: '../../../../..' },
      { name: 'up/outside/canary', data: 'PWNED' },
    ]
    expect(await unpackOutcome(root, specs)).toBe('ok')
    unchanged()
    expect(readFileSync(join(root, 'outside/canary'), 'utf8')).toBe('PWNED')
    // The link itself is kept verbatim: what it means at run time is the runtime's business.
    expect(readlinkSync(join(root, 'up'))).toBe('../../../../..')
  })
})
