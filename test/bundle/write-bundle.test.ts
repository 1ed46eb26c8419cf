import { mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { toRuntimeConfig } from '../../src/bundle/runtime-config.js'
import type { RuntimeConfig } from '../../src/bundle/runtime-spec.js'
import { writeBundle } from '../../src/bundle/write-bundle.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'

afterAll(removeTempDirs)

let config: RuntimeConfig

beforeAll(async () => {
  const rootfs = join(await makeTempDir('ocipull-write-'), 'rootfs')
  await mkdir(rootfs)
  config = toRuntimeConfig(
    {
      config: {
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [] },
        config: { Cmd: ['/bin/hello'] },
      },
    },
    { rootfs },
  )
})

describe('writeBundle', () => {
  test('writes config.json as 2-space JSON with a final newline, mode 0644', async () => {
    const dir = await makeTempDir()
    const path = await writeBundle(dir, config)
    expect(path).toBe(join(dir, 'config.json'))
    const text = await readFile(path, 'utf8')
    expect(text).toBe(`${JSON.stringify(config, null, 2)}\n`)
    expect(text.split('\n')[1]).toMatch(/^ {2}"ociVersion"/)
    expect((await stat(path)).mode & 0o777).toBe(0o644)
    expect(await readdir(dir)).toEqual(['config.json'])
  })

  test('writing the same bundle twice replaces config.json (image-rs refuses)', async () => {
    const dir = await makeTempDir()
    await writeBundle(dir, config)
    const second = { ...config, hostname: 'again' }
    await writeBundle(dir, second)
    expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))).toEqual(second)
    expect(await readdir(dir)).toEqual(['config.json'])
  })

  test('concurrent writes leave one complete file and no temp files', async () => {
    const dir = await makeTempDir()
    const configs = Array.from({ length: 8 }, (_, i) => ({ ...config, hostname: `h${i}` }))
    await Promise.all(configs.map((c) => writeBundle(dir, c)))
    const written = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as RuntimeConfig
    expect(configs).toContainEqual(written)
    expect(await readdir(dir)).toEqual(['config.json'])
  })

  test('creates a missing bundle dir', async () => {
    const dir = join(await makeTempDir(), 'a', 'bundle')
    await writeBundle(dir, config)
    expect(await readdir(dir)).toEqual(['config.json'])
  })

  test('a config.json symlink is replaced, its target left alone', async () => {
    const dir = await makeTempDir()
    const outside = join(await makeTempDir(), 'victim')
    await writeFile(outside, 'keep me')
    await symlink(outside, join(dir, 'config.json'))
    await writeBundle(dir, config)
    expect(await readFile(outside, 'utf8')).toBe('keep me')
    await expect(readlink(join(dir, 'config.json'))).rejects.toMatchObject({ code: 'EINVAL' })
  })

  test('a failed rename leaves no temp file behind', async () => {
    const dir = await makeTempDir()
    await mkdir(join(dir, 'config.json', 'x'), { recursive: true })
    await expect(writeBundle(dir, config)).rejects.toThrow()
    expect(await readdir(dir)).toEqual(['config.json'])
  })

  test('an aborted signal writes nothing', async () => {
    const dir = await makeTempDir()
    const controller = new AbortController()
    controller.abort()
    await expect(writeBundle(dir, config, { signal: controller.signal })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    })
    expect(await readdir(dir)).toEqual([])
  })
})
