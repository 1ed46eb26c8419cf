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
import { buildTarFull, type TarFullSpec, tarEntryFull } from '../helpers/tar-builder.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'

/**
 * Threat: '..' in an entry name (ustar, PAX path, GNU long name) walks out of the root. Names are
 * cleaned lexically, like umoci; a name whose '..' climbs above the root is rejected with
 * ERR_PATH_UNSAFE (umoci clamps it; GNU tar and image-rs refuse such names too), and one that
 * stays inside ('a/../b') is taken as cleaned.
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
      const { root, unchanged } = await arena()
      const tar = buildTarFull([c.spec])
      await expect(
        unpackTar(Readable.from([tar]), root, { whiteouts: 'apply', what: 'layer sha256:ab12' }),
      ).rejects.toMatchObject({
        code: 'ERR_PATH_UNSAFE',
        message: `layer sha256:ab12: entry ${JSON.stringify(c.shown)}: path escapes the root`,
      })
      unchanged()
      expect(readdirSync(root)).toEqual([])
    })
  }

  test("'..' that stays inside is cleaned lexically (umoci)", async () => {
    const { root, unchanged } = await arena()
    expect(
      await unpack(root, [
        { name: 'a/../b', data: 'ok' },
        { name: './c/./d/../e', data: 'ok' },
      ]),
    ).toBe('ok')
    unchanged()
    expect(readFileSync(join(root, 'b'), 'utf8')).toBe('ok')
    expect(readFileSync(join(root, 'c/e'), 'utf8')).toBe('ok')
  })

  test("'..' in a symlink target is resolved inside the root when written through", async () => {
    const { root, unchanged } = await arena()
    const specs: TarFullSpec[] = [
      { name: 'up', type: '2', linkname: '../../../../..' },
      { name: 'up/outside/canary', data: 'PWNED' },
    ]
    expect(await unpack(root, specs)).toBe('ok')
    unchanged()
    expect(readFileSync(join(root, 'outside/canary'), 'utf8')).toBe('PWNED')
    // The link itself is kept verbatim: what it means at run time is the runtime's business.
    expect(readlinkSync(join(root, 'up'))).toBe('../../../../..')
  })
})
