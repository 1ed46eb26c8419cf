import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, expect, test } from 'vitest'
import { pullImage } from '../../src/pull-image.js'
import { ociLayoutSource } from '../../src/sources/oci-layout-source.js'
import { unpackImage } from '../../src/unpack-image.js'
import { writeLayeredImage } from '../helpers/layered-image.js'
import { buildTarFull } from '../helpers/tar-builder.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'
import { REPO_ROOT } from '../rig/paths.js'

/**
 * Crash safety: `ocipull pull` killed with SIGKILL while it unpacks leaves nothing a later pull
 * mistakes for complete. The next pull on the same store and bundle cleans the dead run's
 * staging directories and makes the right rootfs.
 */

afterAll(removeTempDirs)

const big = (name: string) =>
  buildTarFull([
    { name: `${name}/`, type: '5', mode: 0o755 },
    { name: `${name}/data`, data: randomBytes(8 << 20) },
    ...Array.from({ length: 500 }, (_, i) => ({ name: `${name}/f${i}`, data: `${name} ${i}\n` })),
  ])

test('a pull killed mid-layer is completed by the next pull', { timeout: 120_000 }, async () => {
  const work = await makeTempDir()
  const layout = join(work, 'layout')
  await writeLayeredImage(layout, [big('one'), big('two'), big('three')])
  const store = join(work, 'store')
  const bundle = join(work, 'bundle')

  // Kill the CLI as soon as it reports that it started unpacking layers.
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(REPO_ROOT, 'src/cli/main.ts'),
      'pull',
      '--json',
      '--bundle',
      bundle,
      '--work-dir',
      store,
      `oci:${layout}:latest`,
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let seen = ''
  const killed = await new Promise<boolean>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8')
      if (seen.includes('"type":"layer-start"') && child.exitCode === null) {
        child.kill('SIGKILL')
        resolve(true)
      }
    })
    child.on('close', () => resolve(false))
  })
  await new Promise((r) =>
    child.exitCode === null && child.signalCode === null ? child.on('close', r) : r(null),
  )
  expect(killed).toBe(true)
  expect(seen).not.toContain('"type":"committed"')
  expect(existsSync(join(bundle, 'config.json'))).toBe(false)
  // Whatever is under layers/ is complete: each has its record.
  for (const name of readdirSync(join(store, 'layers'))) {
    expect(readdirSync(join(store, 'layers', name)).sort()).toEqual(['diff', 'layer.json'])
  }

  const source = ociLayoutSource({ path: layout, tag: 'latest' })
  try {
    const result = await pullImage(source, { bundle, workDir: store })
    expect(readdirSync(join(store, 'staging'))).toEqual([])
    const reference = join(work, 'reference')
    await unpackImage(source, { bundle: reference })
    expect(snapshotTree(result.rootfs.path)).toEqual(snapshotTree(join(reference, 'rootfs')))
  } finally {
    await source.close()
  }
})
