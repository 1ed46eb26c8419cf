/**
 * `pullImage` (layer store + snapshotter) on the conformance image (see debian-image.test.ts)
 * equals `umoci unpack`, as `unpackImage` does: with the dir snapshotter exactly (mtimes within
 * 2 µs, as there), with the overlay snapshotter except the link counts of hardlinks that join a
 * file of a lower layer (overlayfs cannot share an inode across layer directories; containerd's
 * overlay snapshotter shows the same). Needs root and the conformance tools.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { PullEvent } from '../../src/events.js'
import { pullImage } from '../../src/pull-image.js'
import type { Rootfs } from '../../src/snapshot/snapshotter.js'
import { ociLayoutSource } from '../../src/sources/oci-layout-source.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { compareWithUmoci } from '../helpers/tree-compare-umoci.js'
import { type ConformanceImages, conformanceImages, requireConformanceTools } from './conformance-image.js'

const mounted: Rootfs[] = []
afterAll(async () => {
  for (const r of mounted) await r.release()
  await removeTempDirs()
})

describe.runIf(requireConformanceTools())('pullImage of the conformance image vs umoci unpack', () => {
  let images: ConformanceImages
  let umociRootfs: string | undefined
  beforeAll(async () => {
    images = await conformanceImages()
  }, 20 * 60_000)

  test.each(['dir', 'overlay'] as const)('snapshotter %s', { timeout: 10 * 60_000 }, async (snapshotter) => {
    const work = await makeTempDir('ocipull-pull-conformance-')
    const warnings: PullEvent[] = []
    const source = ociLayoutSource({ path: images.layout, tag: 'conformance' })
    let rootfs: Rootfs
    try {
      const pulled = await pullImage(source, {
        bundle: join(work, 'bundle'),
        workDir: join(work, 'store'),
        snapshotter,
        onEvent: (e) => {
          if (e.type === 'warning') warnings.push(e)
        },
      })
      rootfs = pulled.rootfs
      if (snapshotter === 'overlay') mounted.push(rootfs)
    } finally {
      await source.close()
    }
    expect(warnings).toEqual([])
    const comparison = await compareWithUmoci({
      rootfs: rootfs.path,
      ...(umociRootfs ? { umociRootfs } : { image: `${images.layout}:conformance` }),
    })
    umociRootfs = comparison.umociRootfs
    const differences = comparison.differences.filter(
      (d) => !(snapshotter === 'overlay' && (d.field === 'hardlinks' || d.field === 'links')),
    )
    expect(differences).toEqual([])
    if (snapshotter === 'overlay') {
      // Only the groups that span layers split; hardlinks within one layer stay one inode.
      expect(comparison.ours['/srv/conformance/links/h1']).toMatchObject({
        hardlinks: ['/srv/conformance/links/h1', '/srv/conformance/links/h3'],
      })
    }
  })
})
