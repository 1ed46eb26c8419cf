import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { PullEvent } from '../../src/events.js'
import type { PlatformSpec } from '../../src/platform.js'
import { ociLayoutSource } from '../../src/sources/oci-layout-source.js'
import { unpackImage } from '../../src/unpack-image.js'
import { makeTempDir } from '../helpers/temp-dirs.js'
import { run } from '../rig/exec.js'
import { REPO_ROOT } from '../rig/paths.js'
import { isCI, requireTool } from '../rig/tools.js'

/**
 * The conformance images of scripts/make-conformance-image.sh, for test/conformance and for any
 * suite that wants a big real image: `const { layout } = await conformanceImages()`, then
 * `${layout}:conformance` or `${layout}:busybox`.
 */

export const CONFORMANCE_SCRIPT = join(REPO_ROOT, 'scripts', 'make-conformance-image.sh')

/** Which base rootfs: `auto` tries debootstrap and falls back when the mirror is unreachable. */
export type ConformanceRootfs = 'auto' | 'debootstrap' | 'fallback'

export interface ConformanceImages {
  /** The cache directory of this build (`.cache/conformance/<hash>-<kind>`). */
  dir: string
  /** OCI layout with the tags `conformance` and `busybox`. */
  layout: string
  kind: 'debootstrap' | 'fallback'
  /** Why this kind (e.g. the mirror was unreachable). */
  reason: string
  busybox: { greeting: string; defaultOutput: string }
}

/**
 * Builds the images, or finds them in the cache (keyed by a hash of the script): the first build
 * takes 1–2 minutes (debootstrap) or about 15 s (fallback), later calls well under a second.
 */
export async function conformanceImages(
  options: { rootfs?: ConformanceRootfs } = {},
): Promise<ConformanceImages> {
  const env = { ...process.env }
  if (options.rootfs) env['OCIPULL_CONFORMANCE_ROOTFS'] = options.rootfs
  const { stdout } = await run('bash', [CONFORMANCE_SCRIPT], { env, timeoutMs: 15 * 60_000 })
  const dir = stdout.trim().split('\n').at(-1) ?? ''
  const info = JSON.parse(await readFile(join(dir, 'info.json'), 'utf8')) as Omit<
    ConformanceImages,
    'dir' | 'layout'
  >
  return { ...info, dir, layout: join(dir, 'layout') }
}

/**
 * True when this process is root and has every tool the script and the comparison use. When not:
 * false (skip) on a developer machine, and a thrown error under CI=true.
 */
export function requireConformanceTools(...more: string[]): boolean {
  const tools = ['umoci', 'jq', 'tar', 'setfattr', 'getfattr', 'flock', 'findmnt', 'curl', 'busybox', ...more]
  // debootstrap is needed unless the fallback is forced; CI must have it.
  if (process.env['OCIPULL_CONFORMANCE_ROOTFS'] !== 'fallback' || isCI()) tools.push('debootstrap')
  if (!requireTool(...tools)) return false
  if (process.getuid?.() === 0) return true
  if (isCI()) throw new Error('the conformance tests need root (CI=true, so this is an error)')
  return false
}

export interface OcipullUnpackOptions {
  layout: string
  tag: string
  platform?: PlatformSpec
  runtime?: Parameters<typeof unpackImage>[1]['runtime']
}

/** `unpackImage` of `layout:tag` into a fresh bundle in a temp dir; returns the bundle and any warnings. */
export async function ocipullUnpack(
  options: OcipullUnpackOptions,
): Promise<{ bundle: string; rootfs: string; warnings: PullEvent[] }> {
  const bundle = join(await makeTempDir('ocipull-conformance-'), 'bundle')
  const warnings: PullEvent[] = []
  const source = ociLayoutSource({ path: options.layout, tag: options.tag })
  try {
    const { rootfs } = await unpackImage(source, {
      bundle,
      ...(options.platform ? { platform: options.platform } : {}),
      ...(options.runtime ? { runtime: options.runtime } : {}),
      onEvent: (e) => {
        if (e.type === 'warning') warnings.push(e)
      },
    })
    return { bundle, rootfs, warnings }
  } finally {
    await source.close()
  }
}
