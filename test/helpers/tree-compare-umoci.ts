import { join } from 'node:path'
import { run } from '../rig/exec.js'
import { makeTempDir } from './temp-dirs.js'
import { diffTrees, formatTreeDifferences, type TreeDifference } from './tree-diff.js'
import { type SnapshotOptions, snapshotTree, type TreeEntry } from './tree-snapshot.js'

/** Everything a rootfs comparison can look at: the root itself, hardlink groups, xattrs, mtimes. */
export const FULL_SNAPSHOT: SnapshotOptions = { root: true, hardlinks: true, xattrs: true, mtimes: true }

/**
 * How far apart ocipull's and umoci's mtimes may be. ocipull sets times through node's utimes
 * functions, which take seconds as a double (about 0.24 µs apart at today's dates) and which libuv
 * truncates to whole microseconds; umoci sets the nanoseconds of PAX mtimes (GNU tar's posix
 * format writes them). So ocipull's time is up to 1.12 µs below umoci's, or 0.12 µs above.
 * test/conformance pins this difference down.
 */
export const MTIME_TOLERANCE_NS = 2000

/**
 * `umoci unpack --image IMAGE` (IMAGE is `LAYOUT:TAG`) into a fresh temp dir, removed by
 * `removeTempDirs()`; returns the rootfs path. Needs root (umoci restores owners and devices only
 * as root) and umoci: gate the suite on `requireTool('umoci')`.
 */
export async function umociUnpack(image: string): Promise<string> {
  const bundle = join(await makeTempDir('ocipull-umoci-'), 'bundle')
  await run('umoci', ['unpack', '--image', image, bundle], { timeoutMs: 600_000 })
  return join(bundle, 'rootfs')
}

export interface CompareWithUmociOptions {
  /** The rootfs to check (ocipull's). */
  rootfs: string
  /** The same image for umoci, `LAYOUT:TAG`; unpacked with `umociUnpack`. */
  image?: string
  /** Or a rootfs umoci already unpacked (to compare several rootfs with one umoci unpack). */
  umociRootfs?: string
  /** What to compare (default FULL_SNAPSHOT). */
  snapshot?: SnapshotOptions
  /** Default MTIME_TOLERANCE_NS. */
  mtimeToleranceNs?: number
}

export interface RootfsComparison {
  /** Empty when the trees are the same. `a` is ocipull's side, `b` umoci's. */
  differences: TreeDifference[]
  /** The differences, one readable line each (`/x: mode: ocipull 755, umoci 4755`); '' when none. */
  report: string
  ours: Record<string, TreeEntry>
  umoci: Record<string, TreeEntry>
  umociRootfs: string
}

/**
 * Compares ocipull's rootfs with umoci's rootfs of the same image: paths, types, modes (with
 * setuid/setgid/sticky), uid/gid, sizes, content hashes, symlink targets, device numbers,
 * hardlink groups, xattrs (every namespace) and mtimes (within MTIME_TOLERANCE_NS). Costs one `umoci unpack` (unless
 * `umociRootfs` is given), a read of every file of both trees and two `getfattr` runs.
 *
 * ```ts
 * const { report } = await compareWithUmoci({ rootfs: join(bundle, 'rootfs'), image: `${layout}:latest` })
 * expect(report).toBe('')
 * ```
 */
export async function compareWithUmoci(options: CompareWithUmociOptions): Promise<RootfsComparison> {
  const { rootfs, image } = options
  let umociRootfs = options.umociRootfs
  if (umociRootfs === undefined) {
    if (image === undefined) throw new TypeError('compareWithUmoci: give image or umociRootfs')
    umociRootfs = await umociUnpack(image)
  }
  const snapshot = options.snapshot ?? FULL_SNAPSHOT
  const ours = snapshotTree(rootfs, snapshot)
  const umoci = snapshotTree(umociRootfs, snapshot)
  const differences = diffTrees(ours, umoci, {
    mtimeToleranceNs: options.mtimeToleranceNs ?? MTIME_TOLERANCE_NS,
  })
  const report = formatTreeDifferences(differences, { labels: ['ocipull', 'umoci'] })
  return { differences, report, ours, umoci, umociRootfs }
}
