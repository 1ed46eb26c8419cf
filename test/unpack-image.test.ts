import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { PULL_CHANNEL, type PullEvent } from '../src/events.js'
import { ociLayoutSource } from '../src/sources/oci-layout-source.js'
import { unpackImage } from '../src/unpack-image.js'
import { rejection } from './helpers/failure.js'
import { REF_NAME, writeBlob, writeImage, writeLayoutFiles } from './helpers/layout-writer.js'
import { makeTempDir, removeTempDirs } from './helpers/temp-dirs.js'
import { BUSYBOX_LAYOUT, fixturesInfo } from './rig/index.js'

/** unpackImage as a library: events, the diagnostics channel, abort, refusal of non-Linux images. */

afterAll(removeTempDirs)

describe('unpackImage', () => {
  test('reports resolved, per-layer start/done and committed, also on the diagnostics channel', async () => {
    const bundle = join(await makeTempDir(), 'bundle')
    const events: PullEvent[] = []
    const published: unknown[] = []
    const listener = (message: unknown) => published.push(message)
    subscribe(PULL_CHANNEL, listener)
    const source = ociLayoutSource({ path: BUSYBOX_LAYOUT, tag: 'latest' })
    try {
      await unpackImage(source, { bundle, onEvent: (e) => events.push(e), progressIntervalMs: 0 })
    } finally {
      unsubscribe(PULL_CHANNEL, listener)
      await source.close()
    }
    const info = fixturesInfo().busybox
    expect(published).toEqual(events)
    expect(events[0]).toMatchObject({ type: 'phase', phase: 'resolve', state: 'start' })
    expect(events.filter((e) => e.type === 'phase').map((e) => `${e.phase} ${e.state}`)).toEqual([
      'resolve start',
      'resolve end',
      'layers start',
      'layers end',
      'bundle start',
      'bundle end',
    ])
    expect(events.find((e) => e.type === 'resolved')).toMatchObject({
      type: 'resolved',
      digest: info.digest,
      platform: 'linux/amd64',
      layers: 3,
    })
    expect(events.at(-1)).toMatchObject({ type: 'committed', bundle })
    const done = events.filter((e) => e.type === 'layer-done')
    expect(done.map((e) => e.digest)).toEqual(info.layers.map((l) => l.digest))
    expect(done.map((e) => e.bytesIn)).toEqual(info.layers.map((l) => l.size))
    // With no throttling, the last progress event of the big first layer has seen all its bytes.
    const progress = events.filter((e) => e.type === 'layer-progress' && e.index === 0)
    expect(progress.at(-1)).toMatchObject({ bytesIn: info.layers[0]?.size })
    expect(readFileSync(join(bundle, 'rootfs/etc/motd'), 'utf8')).toBe('motd from layer 2\n')
  })

  test('an abort stops it with ERR_ABORTED and leaves no rootfs', async () => {
    const bundle = join(await makeTempDir(), 'bundle')
    const controller = new AbortController()
    const source = ociLayoutSource({ path: BUSYBOX_LAYOUT, tag: 'latest' })
    const err = await rejection(
      unpackImage(source, {
        bundle,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'layer-start' && e.index === 1) controller.abort()
        },
      }),
    )
    await source.close()
    expect(err).toMatchObject({ code: 'ERR_ABORTED' })
    expect(readdirSync(bundle)).toEqual([])
  })

  test('a non-Linux image is refused before any layer is read', async () => {
    const layout = join(await makeTempDir(), 'layout')
    const image = await writeImage(layout)
    const config = JSON.parse(image.configBytes.toString()) as Record<string, unknown>
    const configBytes = Buffer.from(JSON.stringify({ ...config, os: 'windows' }))
    const configDescriptor = await writeBlob(layout, configBytes, 'application/vnd.oci.image.config.v1+json')
    const manifest = Buffer.from(
      JSON.stringify({ ...JSON.parse(image.manifestBytes.toString()), config: configDescriptor }),
    )
    const manifestDescriptor = await writeBlob(layout, manifest, 'application/vnd.oci.image.manifest.v1+json')
    await writeLayoutFiles(layout, {
      schemaVersion: 2,
      manifests: [{ ...manifestDescriptor, annotations: { [REF_NAME]: 'win' } }],
    })
    const bundle = join(await makeTempDir(), 'bundle')
    const events: PullEvent[] = []
    const source = ociLayoutSource({ path: layout, tag: 'win' })
    const err = await rejection(unpackImage(source, { bundle, onEvent: (e) => events.push(e) }))
    await source.close()
    expect(err).toMatchObject({
      code: 'ERR_IMAGE_UNSUPPORTED',
      message: expect.stringMatching(/is for windows, not linux/),
    })
    expect(events.map((e) => e.type)).toEqual(['phase', 'resolved', 'phase'])
    expect(existsSync(bundle)).toBe(false)
  })
})
