import type { TreeEntry } from './tree-snapshot.js'

/** One way two snapshots differ at one path. */
export interface TreeDifference {
  path: string
  /** `only-in-a` / `only-in-b` for a path one side lacks, else the field: `mode`, `xattrs.user.x`, … */
  field: string
  a?: unknown
  b?: unknown
  /** For only-in-* and a type change from or to a directory: how many paths below it are not listed. */
  below?: number
}

const FIELDS = ['mode', 'uid', 'gid', 'size', 'sha256', 'link', 'rdev', 'links'] as const

export interface DiffTreesOptions {
  /** mtimes closer than this many nanoseconds count as equal (default 0). */
  mtimeToleranceNs?: number
}

/**
 * The differences between two snapshots (from `snapshotTree`), sorted by path. A path missing on
 * one side is reported once, with the number of missing paths below it; a path whose type
 * differs is reported by type only. Hardlink groups, xattrs and mtimes are compared when either
 * side recorded them.
 */
export function diffTrees(
  a: Record<string, TreeEntry>,
  b: Record<string, TreeEntry>,
  options: DiffTreesOptions = {},
): TreeDifference[] {
  const tolerance = BigInt(options.mtimeToleranceNs ?? 0)
  const out: TreeDifference[] = []
  const paths = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
  // Directories reported as missing or retyped: what lies below them is counted, not listed.
  const collapsed = new Map<string, TreeDifference>()
  const collapsedAncestor = (path: string) => {
    for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
      const found = collapsed.get(path.slice(0, i))
      if (found) return found
    }
    return undefined
  }
  for (const path of paths) {
    const ancestor = collapsedAncestor(path)
    if (ancestor) {
      ancestor.below = (ancestor.below ?? 0) + 1
      continue
    }
    const x = a[path]
    const y = b[path]
    if (!x || !y) {
      const entry = (x ?? y) as TreeEntry
      const d: TreeDifference = { path, field: x ? 'only-in-a' : 'only-in-b', [x ? 'a' : 'b']: entry.type }
      out.push(d)
      if (entry.type === 'dir') collapsed.set(path, d)
      continue
    }
    if (x.type !== y.type) {
      const d: TreeDifference = { path, field: 'type', a: x.type, b: y.type }
      out.push(d)
      if (x.type === 'dir' || y.type === 'dir') collapsed.set(path, d)
      continue
    }
    for (const field of FIELDS) {
      if (x[field] !== y[field]) out.push({ path, field, a: x[field], b: y[field] })
    }
    if (x.mtime !== y.mtime) {
      const gap =
        x.mtime === undefined || y.mtime === undefined ? undefined : BigInt(x.mtime) - BigInt(y.mtime)
      if (gap === undefined || gap > tolerance || -gap > tolerance) {
        out.push({ path, field: 'mtime', a: x.mtime, b: y.mtime })
      }
    }
    const ha = x.hardlinks?.join(' ')
    const hb = y.hardlinks?.join(' ')
    if (ha !== hb) out.push({ path, field: 'hardlinks', a: x.hardlinks, b: y.hardlinks })
    const xa = x.xattrs ?? {}
    const xb = y.xattrs ?? {}
    for (const name of [...new Set([...Object.keys(xa), ...Object.keys(xb)])].sort()) {
      if (xa[name] !== xb[name]) out.push({ path, field: `xattrs.${name}`, a: xa[name], b: xb[name] })
    }
  }
  return out
}

export interface FormatTreeDifferencesOptions {
  /** Names of the two sides (default `a`, `b`). */
  labels?: [string, string]
  /** At most this many lines, then a count of the rest (default 60). */
  max?: number
}

/**
 * One line per difference, e.g. `/srv/x: mode: ocipull 755, umoci 4755` or
 * `/var/cache: only in umoci (dir, and 12 paths below)`; '' when there is none.
 */
export function formatTreeDifferences(
  differences: readonly TreeDifference[],
  options: FormatTreeDifferencesOptions = {},
): string {
  const [la, lb] = options.labels ?? ['a', 'b']
  const max = options.max ?? 60
  const show = (v: unknown) =>
    v === undefined
      ? '(none)'
      : Array.isArray(v)
        ? `[${v.join(', ')}]`
        : typeof v === 'string'
          ? v
          : String(v)
  const lines = differences.slice(0, max).map((d) => {
    if (d.field === 'only-in-a' || d.field === 'only-in-b') {
      const [label, type] = d.field === 'only-in-a' ? [la, d.a] : [lb, d.b]
      const below = d.below ? `, and ${d.below} path${d.below === 1 ? '' : 's'} below` : ''
      return `${d.path}: only in ${label} (${show(type)}${below})`
    }
    const below = d.below ? ` (and ${d.below} path${d.below === 1 ? '' : 's'} below)` : ''
    return `${d.path}: ${d.field}: ${la} ${show(d.a)}, ${lb} ${show(d.b)}${below}`
  })
  if (differences.length > max) lines.push(`… and ${differences.length - max} more differences`)
  return lines.join('\n')
}
