import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { writeLayeredImage } from '../helpers/layered-image.js'
import { buildTarFull } from '../helpers/tar-builder.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'

/** `ocipull store list|rm|gc` on a store filled by `ocipull pull` from local layouts. */

afterAll(removeTempDirs)

const base = buildTarFull([
  { name: 'etc/', type: '5', mode: 0o755 },
  { name: 'etc/base', data: 'base' },
])
const app = (text: string) => buildTarFull([{ name: 'app', data: text }])

describe('ocipull store', () => {
  test('list shows pulled images; rm forgets one; gc removes only its own layer', async () => {
    const work = await makeTempDir()
    const store = join(work, 'store')
    const one = await writeLayeredImage(join(work, 'one'), [base, app('one')])
    const two = await writeLayeredImage(join(work, 'two'), [base, app('two')])
    for (const name of ['one', 'two']) {
      const r = await runCli([
        'pull',
        '--work-dir',
        store,
        '--bundle',
        join(work, `b-${name}`),
        `oci:${join(work, name)}:latest`,
      ])
      expect(r.code).toBe(0)
    }
    const list = await runCli(['store', 'list', '--work-dir', store])
    expect(list.code).toBe(0)
    const lines = list.stdout.trim().split('\n')
    expect(lines).toHaveLength(2)
    expect(lines.join('\n')).toContain(one.manifest.digest)
    expect(lines.join('\n')).toContain(two.manifest.digest)
    expect(lines[0]).toMatch(/ linux\/amd64 {2}2 layers {2}\d+ bytes {2}oci:/)

    expect((await runCli(['store', 'gc', '--work-dir', store])).stdout).toBe(
      'removed 0 layers and 0 configs\n',
    )
    expect((await runCli(['store', 'rm', '--work-dir', store, one.manifest.digest])).code).toBe(0)
    const gc = await runCli(['store', 'gc', '--work-dir', store, '--json'])
    expect(JSON.parse(gc.stdout)).toEqual({
      layers: [expect.stringMatching(/^sha256:/)],
      blobs: [one.config.digest],
    })
    expect(readdirSync(join(store, 'layers'))).toHaveLength(2) // the shared base and two's app
    expect(existsSync(join(work, 'b-one', 'rootfs', 'app'))).toBe(true) // the dir bundle is a copy
  })

  test.each([
    [['store', 'rm', 'sha256:nothex'], 5, 'ERR_DIGEST_INVALID'],
    [['store', 'frobnicate'], 2, 'ERR_OPTIONS_INVALID'],
    [['store', 'rm'], 2, 'ERR_OPTIONS_INVALID'],
  ])('%j fails with exit %i (%s)', async (args, code, errCode) => {
    const work = await makeTempDir()
    const r = await runCli([...args, '--work-dir', join(work, 's')])
    expect(r.code).toBe(code)
    expect(r.stderr).toContain(errCode)
  })

  test('rm of an image the store does not have is ERR_IMAGE_NOT_FOUND (exit 3)', async () => {
    const work = await makeTempDir()
    const r = await runCli(['store', 'rm', '--work-dir', join(work, 's'), `sha256:${'a'.repeat(64)}`])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/^ocipull: ERR_IMAGE_NOT_FOUND: /)
  })
})
