import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import type { PullEvent } from '../../src/events.js'
import { pullImage } from '../../src/pull-image.js'
import type { ImageSource } from '../../src/sources/image-source.js'
import { ociLayoutSource } from '../../src/sources/oci-layout-source.js'
import { chainIds } from '../../src/store/chain-id.js'
import { LayerStore } from '../../src/store/layer-store.js'
import { failure } from '../helpers/failure.js'
import { writeLayeredImage } from '../helpers/layered-image.js'
import { blobPath, sha256 } from '../helpers/layout-writer.js'
import { buildTarFull } from '../helpers/tar-builder.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'

/** The layer store under pullImage: reuse, commit only verified layers, crash leftovers, gc. */

afterAll(removeTempDirs)

const base = buildTarFull([
  { name: 'etc/', type: '5', mode: 0o755 },
  { name: 'etc/os-release', data: 'base\n' },
])
const app = (text: string) =>
  buildTarFull([
    { name: 'app/', type: '5', mode: 0o755 },
    { name: 'app/run', data: text },
  ])

/** Counts the blob downloads a source serves. */
function counting(source: ImageSource): { source: ImageSource; blobs: string[] } {
  const blobs: string[] = []
  return {
    blobs,
    source: {
      name: source.name,
      manifest: (r) => source.manifest(r),
      blob: (d, r) => {
        blobs.push(d.digest)
        return source.blob(d, r)
      },
      close: () => source.close(),
    },
  }
}

async function pullLayout(layout: string, bundle: string, workDir: string, onEvent?: (e: PullEvent) => void) {
  const { source, blobs } = counting(ociLayoutSource({ path: layout, tag: 'latest' }))
  try {
    const result = await pullImage(source, { bundle, workDir, ...(onEvent ? { onEvent } : {}) })
    await result.rootfs.release()
    return { result, blobs }
  } finally {
    await source.close()
  }
}

describe('layer store', () => {
  test('a second pull downloads no blob; a related image downloads only its own layer', async () => {
    const work = await makeTempDir()
    const store = join(work, 'store')
    const one = await writeLayeredImage(join(work, 'one'), [base, app('one')])
    const first = await pullLayout(join(work, 'one'), join(work, 'b1'), store)
    expect(first.blobs.sort()).toEqual([...one.layers.map((l) => l.digest), one.config.digest].sort())

    const events: PullEvent[] = []
    const again = await pullLayout(join(work, 'one'), join(work, 'b1'), store, (e) => events.push(e))
    expect(again.blobs).toEqual([])
    expect(again.result.cachedLayers).toBe(2)
    expect(events.filter((e) => e.type === 'layer-cached')).toHaveLength(2)
    expect(readFileSync(join(work, 'b1', 'rootfs', 'app', 'run'), 'utf8')).toBe('one')

    const two = await writeLayeredImage(join(work, 'two'), [base, app('two')])
    const second = await pullLayout(join(work, 'two'), join(work, 'b2'), store)
    expect(second.blobs.sort()).toEqual([two.layers[1]?.digest, two.config.digest].sort())
    expect(readFileSync(join(work, 'b2', 'rootfs', 'etc', 'os-release'), 'utf8')).toBe('base\n')
  })

  test.each([
    ['a layer blob with one byte flipped', 'blob'],
    ['a layer whose diff_id does not match', 'diffid'],
  ])(
    '%s fails with ERR_DIGEST_MISMATCH and leaves no layer directory, staging or bundle',
    async (_, fault) => {
      const work = await makeTempDir()
      const layout = join(work, 'layout')
      const bad = app('tampered')
      let image: Awaited<ReturnType<typeof writeLayeredImage>>
      if (fault === 'diffid') {
        image = await writeLayeredImage(layout, [base, bad])
        // Same manifest and blobs, but a config naming another diff_id for layer 2.
        const configPath = join(layout, blobPath(image.config.digest))
        const config = JSON.parse(readFileSync(configPath, 'utf8'))
        config.rootfs.diff_ids[1] = sha256('something else')
        const bytes = Buffer.from(JSON.stringify(config))
        image = await writeLayeredImage(layout, [base, bad], {})
        // Rewrite: keep layers, swap the config for the lying one.
        const manifestPath = join(layout, blobPath(image.manifest.digest))
        const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'))
        manifest.config = { ...manifest.config, digest: sha256(bytes), size: bytes.length }
        writeFileSync(join(layout, blobPath(sha256(bytes))), bytes)
        const manifestBytes = Buffer.from(JSON.stringify(manifest))
        writeFileSync(join(layout, blobPath(sha256(manifestBytes))), manifestBytes)
        const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'))
        index.manifests[0] = {
          ...index.manifests[0],
          digest: sha256(manifestBytes),
          size: manifestBytes.length,
        }
        writeFileSync(join(layout, 'index.json'), JSON.stringify(index))
      } else {
        image = await writeLayeredImage(layout, [base, bad])
        const path = join(layout, blobPath(image.layers[1]?.digest as string))
        const bytes = readFileSync(path)
        bytes.writeUInt8(bytes.readUInt8(bytes.length >> 1) ^ 0x01, bytes.length >> 1)
        writeFileSync(path, bytes)
      }
      const store = join(work, 'store')
      const bundle = join(work, 'bundle')
      const source = ociLayoutSource({ path: layout, tag: 'latest' })
      try {
        const err = await failure(pullImage(source, { bundle, workDir: store }))
        expect(err.code).toBe('ERR_DIGEST_MISMATCH')
        expect(err.message).toContain(
          fault === 'blob' ? (image.layers[1]?.digest ?? '').slice(0, 19) : 'diff_id',
        )
      } finally {
        await source.close()
      }
      const [, badChain] = chainIds(image.diffIds)
      expect(existsSync(join(store, 'layers', (badChain as string).replace(':', '-')))).toBe(false)
      expect(readdirSync(join(store, 'staging'))).toEqual([])
      expect(existsSync(join(bundle, 'rootfs'))).toBe(false)
      expect(existsSync(join(bundle, 'config.json'))).toBe(false)
      expect(readdirSync(join(store, 'images'))).toEqual([])
    },
  )

  test('opening a store removes what a crashed run left in staging, not what a live one has', async () => {
    const root = await makeTempDir()
    await LayerStore.open(root)
    const dead = join(root, 'staging', '999999999-abc')
    const live = join(root, 'staging', `${process.ppid}-def`)
    await mkdir(join(dead, 'diff'), { recursive: true })
    await mkdir(join(live, 'diff'), { recursive: true })
    await LayerStore.open(root)
    expect(existsSync(dead)).toBe(false)
    expect(existsSync(live)).toBe(true)
  })

  test('images are listed and removed; gc removes only what no image uses', async () => {
    const work = await makeTempDir()
    const storeDir = join(work, 'store')
    const one = await writeLayeredImage(join(work, 'one'), [base, app('one')])
    const two = await writeLayeredImage(join(work, 'two'), [base, app('two')])
    await pullLayout(join(work, 'one'), join(work, 'b1'), storeDir)
    await pullLayout(join(work, 'two'), join(work, 'b2'), storeDir)
    const store = await LayerStore.open(storeDir)
    expect((await store.listImages()).map((i) => i.manifestDigest).sort()).toEqual(
      [one.manifest.digest, two.manifest.digest].sort(),
    )
    expect(await store.gc()).toEqual({ layers: [], blobs: [] })
    await store.removeImage(one.manifest.digest)
    expect(await failure(store.removeImage(one.manifest.digest))).toMatchObject({
      code: 'ERR_IMAGE_NOT_FOUND',
    })
    const removed = await store.gc()
    expect(removed).toEqual({ layers: [chainIds(one.diffIds)[1]], blobs: [one.config.digest] })
    expect(await store.getLayer(chainIds(two.diffIds)[0] as string)).toBeDefined()
    // The bundle made before gc keeps working: the dir snapshotter copied the files.
    expect(readFileSync(join(work, 'b1', 'rootfs', 'app', 'run'), 'utf8')).toBe('one')
    // Pulling it again downloads only what gc removed.
    const again = await pullLayout(join(work, 'one'), join(work, 'b1'), storeDir)
    expect(again.blobs.sort()).toEqual([one.layers[1]?.digest, one.config.digest].sort())
  })

  test('leased layers survive gc while a pull is using them', async () => {
    const root = await makeTempDir()
    const store = await LayerStore.open(root)
    const staged = await store.stageLayer()
    const id = sha256('x')
    await store.commitLayer(staged, {
      chainId: id,
      diffId: id,
      digest: id,
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      size: 0,
      format: 'record',
      changes: [],
      bytes: 0,
      entries: 0,
      created: new Date().toISOString(),
    })
    const release = store.lease([id])
    expect((await store.gc()).layers).toEqual([])
    release()
    expect((await store.gc()).layers).toEqual([id])
  })

  test.runIf(process.getuid?.() === 0)('gc keeps the layers an overlay bundle has mounted', async () => {
    const work = await makeTempDir()
    const storeDir = join(work, 'store')
    const one = await writeLayeredImage(join(work, 'one'), [base, app('one')])
    const source = ociLayoutSource({ path: join(work, 'one'), tag: 'latest' })
    const pulled = await pullImage(source, {
      bundle: join(work, 'b'),
      workDir: storeDir,
      snapshotter: 'overlay',
    })
    await source.close()
    try {
      const store = await LayerStore.open(storeDir)
      await store.removeImage(one.manifest.digest)
      expect((await store.gc()).layers).toEqual([])
      expect(readFileSync(join(pulled.rootfs.path, 'app', 'run'), 'utf8')).toBe('one')
    } finally {
      await pulled.rootfs.release()
    }
    const store = await LayerStore.open(storeDir)
    expect((await store.gc()).layers.sort()).toEqual(chainIds(one.diffIds).sort())
  })

  test('a layer directory without its record is unpacked again; a garbled record is ERR_STORE_CORRUPT', async () => {
    const work = await makeTempDir()
    const storeDir = join(work, 'store')
    const one = await writeLayeredImage(join(work, 'one'), [base, app('one')])
    await pullLayout(join(work, 'one'), join(work, 'b'), storeDir)
    const [, top] = chainIds(one.diffIds)
    const dir = join(storeDir, 'layers', (top as string).replace(':', '-'))
    // Damaged from outside: the files are gone and so is the record.
    rmSync(join(dir, 'layer.json'))
    rmSync(join(dir, 'diff', 'app'), { recursive: true })
    const again = await pullLayout(join(work, 'one'), join(work, 'b'), storeDir)
    expect(again.blobs).toEqual([one.layers[1]?.digest])
    expect(readFileSync(join(work, 'b', 'rootfs', 'app', 'run'), 'utf8')).toBe('one')
    expect(readdirSync(dir).sort()).toEqual(['diff', 'layer.json'])

    writeFileSync(join(dir, 'layer.json'), '{"chainId": "sha256:')
    const source = ociLayoutSource({ path: join(work, 'one'), tag: 'latest' })
    try {
      const err = await failure(pullImage(source, { bundle: join(work, 'b'), workDir: storeDir }))
      expect(err.code).toBe('ERR_STORE_CORRUPT')
      expect(err.message).toContain(join(dir, 'layer.json'))
    } finally {
      await source.close()
    }
  })
})
