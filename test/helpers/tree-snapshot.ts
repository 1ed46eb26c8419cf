import { createHash } from 'node:crypto'
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'

/** What a conformance comparison looks at for one path in a tree. */
export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket'
  mode: string
  uid: number
  gid: number
  size?: number
  sha256?: string
  link?: string
  rdev?: number
  /** Paths of this tree that share the inode (hardlinks), sorted; only when more than one. */
  links?: number
}

/**
 * Walks a tree without following symlinks and records, per path (relative, `/`-rooted): type,
 * permission bits (with setuid/setgid/sticky, octal), owner, size and content hash for regular
 * files, symlink targets, device numbers, and the hardlink count.
 */
export function snapshotTree(root: string): Record<string, TreeEntry> {
  const out: Record<string, TreeEntry> = {}
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name)
      const key = `${rel}/${name}`
      const st = lstatSync(path)
      const entry: TreeEntry = {
        type: st.isFile()
          ? 'file'
          : st.isDirectory()
            ? 'dir'
            : st.isSymbolicLink()
              ? 'symlink'
              : st.isCharacterDevice()
                ? 'char'
                : st.isBlockDevice()
                  ? 'block'
                  : st.isFIFO()
                    ? 'fifo'
                    : 'socket',
        mode: (st.mode & 0o7777).toString(8),
        uid: st.uid,
        gid: st.gid,
      }
      if (entry.type === 'file') {
        entry.size = st.size
        entry.sha256 = createHash('sha256').update(readFileSync(path)).digest('hex')
        if (st.nlink > 1) entry.links = st.nlink
      }
      if (entry.type === 'symlink') {
        entry.link = readlinkSync(path)
        delete (entry as { mode?: string }).mode // symlink permission bits are not meaningful on Linux
      }
      if (entry.type === 'char' || entry.type === 'block') entry.rdev = st.rdev
      out[key] = entry
      if (entry.type === 'dir') walk(path, key)
    }
  }
  walk(root, '')
  return out
}
