/**
 * The paths this layer has created, and all their ancestors, relative to the root and fully
 * resolved (so `lib/x` through the symlink `lib -> usr/lib` is `usr/lib/x`). A whiteout or an
 * opaque marker removes only what is NOT in here, which makes them independent of entry order:
 * an opaque marker that comes after its siblings keeps them, as in umoci.
 * Memory: one string per created path, bounded by the entry limit.
 */
export class UpperPaths {
  private readonly paths = new Set<string>()

  /** Adds `rel` ('' is the root, always implied) and its ancestors. */
  add(rel: string): void {
    while (rel !== '' && !this.paths.has(rel)) {
      this.paths.add(rel)
      const slash = rel.lastIndexOf('/')
      rel = slash === -1 ? '' : rel.slice(0, slash)
    }
  }

  has(rel: string): boolean {
    return rel === '' || this.paths.has(rel)
  }
}
