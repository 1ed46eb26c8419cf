import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { PullEvent } from '../../src/events.js'
import { requestsIn } from './rig-pair.js'

/** The events `ocipull pull --json` printed, one JSON object a line. */
export function pullEvents(stdout: string): PullEvent[] {
  return stdout
    .trim()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as PullEvent)
}

/** The most layers that were downloading at once (between their layer-start and layer-done). */
export function maxLayersInFlight(events: PullEvent[]): number {
  let now = 0
  let most = 0
  for (const e of events) {
    if (e.type === 'layer-start') most = Math.max(most, ++now)
    if (e.type === 'layer-done') now--
  }
  return most
}

/** `GET …/blobs/<digest> <status>` lines of a piece of registry log, as `<digest> <status>`. */
export function blobGetsIn(log: string): string[] {
  return requestsIn(log)
    .map((r) => /^GET \/v2\/.+\/blobs\/(\S+) (\d+)$/.exec(r))
    .filter((m) => m !== null)
    .map((m) => `${m[1]} ${m[2]}`)
}

/** Layer directories in a layer store (`<work dir>/layers/<alg>-<hex of the ChainID>`). */
export function storedLayers(workDir: string): string[] {
  const layers = join(workDir, 'layers')
  return existsSync(layers) ? readdirSync(layers) : []
}

/**
 * What the fixture busybox image (fixtures/README.md) leaves in a bundle: the image's command in
 * config.json and the result of its three layers (a changed file, a whiteout, an opaque directory).
 */
export function busyboxBundleFacts(bundle: string): Record<string, unknown> {
  const rootfs = join(bundle, 'rootfs')
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as {
    process?: { args?: string[]; env?: string[] }
  }
  return {
    args: config.process?.args,
    fixtureEnv: config.process?.env?.includes('FIXTURE=busybox'),
    motd: readFileSync(join(rootfs, 'etc', 'motd'), 'utf8').trim(),
    removedInLayer2: existsSync(join(rootfs, 'etc', 'removed-in-layer2')),
    optReplaced: readdirSync(join(rootfs, 'opt', 'replaced')),
    randomBin: statSync(join(rootfs, 'data', 'random.bin')).size,
  }
}

export const BUSYBOX_BUNDLE_FACTS = {
  args: ['/bin/hello'],
  fixtureEnv: true,
  motd: 'motd from layer 2',
  removedInLayer2: false,
  optReplaced: ['new-file'],
  randomBin: 256 * 1024,
}
