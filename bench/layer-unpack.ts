/**
 * Layer throughput: `ocipull unpack` (the built CLI, in its own process) against native tools on
 * the same single-layer images, pulled from the same local docker-registry (rig 'http' mode), in
 * the same run. Each round runs every variant once per layer, the variants' order rotating from
 * round to round; outputs go to tmpfs (/dev/shm) and are removed after each run.
 *
 *   native        curl -sf BLOB | tar -xzf -   (gzip)
 *                 curl -sf BLOB | zstd -dc | tar -xf -   (zstd)
 *                 curl -sf BLOB | tar -xf -   (uncompressed)
 *   skopeo+umoci  skopeo copy docker://REF oci:DIR:latest && umoci unpack --image DIR:latest BUNDLE
 *   ocipull       node dist/cli/main.js unpack --insecure --json --bundle BUNDLE REF
 *   pull-dir      node dist/cli/main.js pull --insecure --json --bundle BUNDLE --work-dir STORE REF
 *                 (a fresh store each run: download, unpack into the store, copy into the bundle)
 *   pull-overlay  the same with --snapshotter overlay (root only; unmounted after the run)
 *
 * MB/s counts uncompressed tar bytes (10^6) per second of wall time, process start-up included;
 * `vs native` is the native pipeline's median time ÷ this row's (above 1: faster than native).
 * Peak RSS comes from GNU time: for ocipull the node process, for a shell pipeline its largest
 * process. In the first round the three trees are compared (type, mode, owner, size, mtime, link
 * target of every entry) and any difference is reported.
 */
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { REPO_ROOT, startRegistry } from '../test/rig/index.js'
import { type BenchImage, LAYERS, prepareLayers } from './layer-data.js'
import { capture, median, q, type Timed, timedRun } from './util.js'

export interface LayerRow {
  layer: string
  tool: string
  seconds: number
  mbPerS: number
  /** The native pipeline's median time ÷ this row's: above 1 means faster than native. */
  vsNative: number
  peakRssMiB: number
}

export interface LayerBenchResult {
  rows: LayerRow[]
  /** Runs that failed (variant skipped from then on) and trees that differed. */
  problems: string[]
}

type Variant = 'native' | 'ocipull' | 'skopeo+umoci' | 'pull-dir' | 'pull-overlay'
const VARIANTS: readonly Variant[] = [
  'native',
  'ocipull',
  'skopeo+umoci',
  'pull-dir',
  ...(process.getuid?.() === 0 ? (['pull-overlay'] as const) : []),
]

const WORK = '/dev/shm/ocipull-bench'
const CLI = join(REPO_ROOT, 'dist', 'cli', 'main.js')
/** What the bin's shebang (`#!/usr/bin/env -S node --max-semi-space-size=1`) gives node. */
const NODE_FLAGS = ['--max-semi-space-size=1']

export async function layerUnpackBench(options: {
  rounds: number
  /** Layer ids to run (default: all of LAYERS). */
  layers?: string[]
  log?: (line: string) => void
}): Promise<LayerBenchResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const specs = options.layers ? LAYERS.filter((l) => options.layers?.includes(l.id)) : LAYERS
  if (specs.length === 0) throw new Error(`no such layers; known: ${LAYERS.map((l) => l.id).join(', ')}`)
  const reg = await startRegistry('http', { push: false })
  const problems: string[] = []
  try {
    const images = await prepareLayers(reg, specs, log)
    await rm(WORK, { recursive: true, force: true })
    await mkdir(WORK, { recursive: true })
    // Warm-up: every blob once through the registry, so no variant pays for a cold page cache.
    for (const image of images) await capture('curl', ['-sf', '-o', '/dev/null', image.blobUrl])

    const times = new Map<string, Timed[]>()
    const failed = new Set<string>()
    for (let round = 0; round < options.rounds; round++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length] as Variant)
      for (const image of images) {
        const listings = new Map<Variant, string>()
        for (const variant of order) {
          const key = `${image.id}/${variant}`
          if (failed.has(key)) continue
          const dir = join(WORK, variant)
          try {
            const { timed, root } = await runVariant(variant, image, dir)
            log(`round ${round + 1}/${options.rounds} ${key}: ${timed.seconds.toFixed(2)} s`)
            times.set(key, [...(times.get(key) ?? []), timed])
            if (round === 0) listings.set(variant, await listing(root))
          } catch (err) {
            failed.add(key)
            const last = String((err as Error).message)
              .trim()
              .split('\n')
              .at(-1)
            problems.push(`${key} failed, skipped from then on: ${last}`)
            log(`round ${round + 1} ${key} FAILED: ${(err as Error).message}`)
          } finally {
            await rm(dir, { recursive: true, force: true })
          }
        }
        if (round === 0) problems.push(...compareListings(image.id, listings))
      }
    }
    return { rows: images.flatMap((image) => rowsFor(image, times)), problems }
  } finally {
    await rm(WORK, { recursive: true, force: true })
    await reg.stop()
  }
}

async function runVariant(
  variant: Variant,
  image: BenchImage,
  dir: string,
): Promise<{ timed: Timed; root: string }> {
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const timeFile = join(WORK, 'time.out')
  if (variant === 'native') {
    const out = join(dir, 'out')
    await mkdir(out)
    const extract =
      image.compression === 'gzip'
        ? `tar -xzf - -C ${q(out)}`
        : image.compression === 'zstd'
          ? `zstd -dc | tar -xf - -C ${q(out)}`
          : `tar -xf - -C ${q(out)}`
    const script = `curl -sf ${q(image.blobUrl)} | ${extract}`
    return { timed: await timedRun('bash', ['-o', 'pipefail', '-c', script], timeFile), root: out }
  }
  const bundle = join(dir, 'bundle')
  if (variant === 'pull-dir' || variant === 'pull-overlay') {
    const snapshotter = variant === 'pull-dir' ? 'dir' : 'overlay'
    const args = [
      'pull',
      '--insecure',
      '--json',
      '--snapshotter',
      snapshotter,
      '--work-dir',
      join(dir, 'store'),
    ]
    const timed = await timedRun(
      process.execPath,
      [...NODE_FLAGS, CLI, ...args, '--bundle', bundle, image.ref],
      timeFile,
    )
    checkOneLayer(timed.stdout, image)
    if (variant === 'pull-overlay') {
      // The tree is listed before the run's directory is removed: list it now, then unmount.
      const copy = join(dir, 'listing')
      await capture('cp', ['-a', join(bundle, 'rootfs'), copy])
      await capture('umount', [join(bundle, 'rootfs')])
      return { timed, root: copy }
    }
    return { timed, root: join(bundle, 'rootfs') }
  }
  if (variant === 'skopeo+umoci') {
    const layout = join(dir, 'layout')
    const script =
      `skopeo copy -q --src-tls-verify=false ${q(`docker://${image.ref}`)} ${q(`oci:${layout}:latest`)}` +
      ` && umoci unpack --image ${q(`${layout}:latest`)} ${q(bundle)}`
    return {
      timed: await timedRun('bash', ['-o', 'pipefail', '-c', script], timeFile),
      root: join(bundle, 'rootfs'),
    }
  }
  const timed = await timedRun(
    process.execPath,
    [...NODE_FLAGS, CLI, 'unpack', '--insecure', '--json', '--bundle', bundle, image.ref],
    timeFile,
  )
  checkOneLayer(timed.stdout, image)
  return { timed, root: join(bundle, 'rootfs') }
}

/** --json prints PullEvents (src/events.ts): check that one layer of the whole tar was applied. */
function checkOneLayer(stdout: string, image: BenchImage): void {
  const done = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { type?: string; bytesOut?: number })
    .filter((e) => e.type === 'layer-done')
  if (done.length !== 1 || done[0]?.bytesOut !== image.tarBytes) {
    throw new Error(`ocipull reported ${JSON.stringify(done)}, expected one layer of ${image.tarBytes} bytes`)
  }
}

/** One line per entry below `root`: path, type, mode, owner, size (not for dirs), mtime, link target. */
async function listing(root: string): Promise<string> {
  const out = await capture('find', [root, '-mindepth', '1', '-printf', '%P\t%y\t%m\t%U:%G\t%s\t%Ts\t%l\n'])
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const f = l.split('\t')
      if (f[1] === 'd') f[4] = ''
      return f.join('\t')
    })
    .sort()
    .join('\n')
}

function compareListings(id: string, listings: Map<Variant, string>): string[] {
  const reference = listings.get('native')
  if (reference === undefined) return []
  const problems: string[] = []
  for (const [variant, text] of listings) {
    if (variant === 'native' || text === reference) continue
    const a = new Set(reference.split('\n'))
    const b = new Set(text.split('\n'))
    const onlyNative = [...a].filter((l) => !b.has(l))
    const onlyThis = [...b].filter((l) => !a.has(l))
    problems.push(
      `${id}: ${variant}'s tree differs from tar's: ${onlyNative.length} entries only in tar's, ` +
        `${onlyThis.length} only in ${variant}'s; e.g. ${JSON.stringify(onlyNative.slice(0, 2))} vs ` +
        `${JSON.stringify(onlyThis.slice(0, 2))}`,
    )
  }
  return problems
}

function rowsFor(image: BenchImage, times: Map<string, Timed[]>): LayerRow[] {
  const mb = (n: number) => (n / 1e6).toFixed(0)
  const size =
    image.compression === 'none'
      ? `${mb(image.tarBytes)} MB`
      : `${mb(image.tarBytes)} → ${mb(image.blobBytes)} MB`
  const files = image.files === 1 ? '1 file' : `${image.files.toLocaleString('en-US')} files`
  const layer = `${image.label} (${files}), ${image.compression === 'none' ? 'uncompressed' : image.compression} ${size}`
  const stat = (variant: Variant) => {
    const runs = times.get(`${image.id}/${variant}`) ?? []
    return {
      seconds: median(runs.map((r) => r.seconds)),
      peakRssMiB: runs.length ? Math.max(...runs.map((r) => r.maxRssKiB)) / 1024 : Number.NaN,
    }
  }
  const native = stat('native')
  const nativeName =
    image.compression === 'gzip'
      ? 'curl | tar -xzf'
      : image.compression === 'zstd'
        ? 'curl | zstd -dc | tar -xf'
        : 'curl | tar -xf'
  const toolNames: Record<Variant, string> = {
    native: nativeName,
    'skopeo+umoci': 'skopeo copy + umoci unpack',
    ocipull: 'ocipull unpack',
    'pull-dir': 'ocipull pull (dir)',
    'pull-overlay': 'ocipull pull (overlay)',
  }
  return VARIANTS.map((variant) => {
    const s = stat(variant)
    return {
      layer,
      tool: toolNames[variant],
      seconds: s.seconds,
      mbPerS: image.tarBytes / 1e6 / s.seconds,
      vsNative: native.seconds / s.seconds,
      peakRssMiB: s.peakRssMiB,
    }
  })
}
