import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs'

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
  /** The file's link count (st_nlink), only when more than one. */
  links?: number
  /** With `hardlinks`: every path of this tree on the same inode (this one included), sorted. */
  hardlinks?: string[]
  /** With `xattrs`: every extended attribute, name → value as hex. */
  xattrs?: Record<string, string>
  /** With `mtimes`: st_mtime in nanoseconds since the epoch, as a decimal string. */
  mtime?: string
}

export interface SnapshotOptions {
  /** Record the root directory itself too, under the key `/`. */
  root?: boolean
  /** Record hardlink groups: same-inode sets of regular files (and others) within the tree. */
  hardlinks?: boolean
  /** Record extended attributes of every namespace, read with `getfattr` (package attr). */
  xattrs?: boolean
  /** Record modification times. */
  mtimes?: boolean
}

/**
 * Walks a tree without following symlinks and records, per path (relative, `/`-rooted): type,
 * permission bits (with setuid/setgid/sticky, octal), owner, size and content hash for regular
 * files, symlink targets, device numbers, and the hardlink count; with `options`, also the root,
 * hardlink groups, xattrs and mtimes. Names that are not UTF-8 are keyed with `\xNN` escapes.
 * Reads every regular file once; one `getfattr` run for xattrs.
 */
export function snapshotTree(root: string, options: SnapshotOptions = {}): Record<string, TreeEntry> {
  const out: Record<string, TreeEntry> = {}
  const inodes = new Map<string, string[]>()
  const record = (path: Buffer, key: string) => {
    const st = lstatSync(path, { bigint: true })
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
      mode: (st.mode & 0o7777n).toString(8),
      uid: Number(st.uid),
      gid: Number(st.gid),
    }
    if (entry.type === 'file') {
      entry.size = Number(st.size)
      entry.sha256 = sha256File(path)
      if (st.nlink > 1n) entry.links = Number(st.nlink)
    }
    if (entry.type === 'symlink') {
      entry.link = nameKey(readlinkSync(path, { encoding: 'buffer' }))
      delete (entry as { mode?: string }).mode // symlink permission bits are not meaningful on Linux
    }
    if (entry.type === 'char' || entry.type === 'block') entry.rdev = Number(st.rdev)
    if (options.mtimes) entry.mtime = st.mtimeNs.toString()
    if (options.hardlinks && entry.type !== 'dir' && st.nlink > 1n) {
      const id = `${st.dev}:${st.ino}`
      const group = inodes.get(id) ?? []
      group.push(key)
      inodes.set(id, group)
    }
    out[key] = entry
    return entry
  }
  const walk = (dir: Buffer, rel: string) => {
    const names = readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)
    for (const name of names) {
      const path = Buffer.concat([dir, Buffer.from('/'), name])
      const key = `${rel}/${nameKey(name)}`
      if (record(path, key).type === 'dir') walk(path, key)
    }
  }
  const rootPath = Buffer.from(root)
  if (options.root) record(rootPath, '/')
  walk(rootPath, '')
  if (options.hardlinks) {
    for (const group of inodes.values()) {
      if (group.length < 2) continue
      const sorted = [...group].sort()
      for (const key of group) (out[key] as TreeEntry).hardlinks = sorted
    }
  }
  if (options.xattrs) {
    for (const [key, attrs] of readXattrs(root)) {
      const entry = out[key]
      if (entry) entry.xattrs = attrs
      else if (key !== '/') throw new Error(`snapshotTree: getfattr names ${key}, which the walk did not see`)
    }
  }
  return out
}

/** sha256 of a file's content, read in 1 MiB chunks (a rootfs may hold big files). */
function sha256File(path: Buffer): string {
  const hash = createHash('sha256')
  const chunk = Buffer.allocUnsafe(1024 * 1024)
  const fd = openSync(path, 'r')
  try {
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) hash.update(chunk.subarray(0, n))
  } finally {
    closeSync(fd)
  }
  return hash.digest('hex')
}

/** A file name as a snapshot key: UTF-8 as is; otherwise bytes ≥ 0x80 and `\` as `\xNN`. */
export function nameKey(name: Buffer): string {
  const text = name.toString('utf8')
  if (Buffer.from(text, 'utf8').equals(name)) return text
  let out = ''
  for (const byte of name) {
    out +=
      byte >= 0x80 || byte === 0x5c ? `\\x${byte.toString(16).padStart(2, '0')}` : String.fromCharCode(byte)
  }
  return out
}

/**
 * All xattrs under `root` (symlinks not followed, every namespace), from one
 * `getfattr -R -P -h -d -m - -e hex .` run, keyed like snapshotTree.
 */
function readXattrs(root: string): Map<string, Record<string, string>> {
  const output = execFileSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '.'], {
    cwd: root,
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const result = new Map<string, Record<string, string>>()
  let current: Record<string, string> | undefined
  const marker = Buffer.from('# file: ')
  for (const line of splitLines(output)) {
    if (line.subarray(0, marker.length).equals(marker)) {
      let name = unescapeGetfattr(line.subarray(marker.length))
      if (name.subarray(0, 2).toString('latin1') === './') name = name.subarray(2)
      current = {}
      result.set(name.toString('latin1') === '.' ? '/' : `/${nameKey(name)}`, current)
      continue
    }
    const text = line.toString('latin1')
    if (text === '') continue
    const eq = text.indexOf('=')
    if (!current) throw new Error(`snapshotTree: unexpected getfattr line ${JSON.stringify(text)}`)
    if (eq < 0) throw new Error(`snapshotTree: unexpected getfattr line ${JSON.stringify(text)}`)
    current[text.slice(0, eq)] = text.slice(eq + 1).replace(/^0x/, '')
  }
  return result
}

function splitLines(bytes: Buffer): Buffer[] {
  const lines: Buffer[] = []
  let start = 0
  for (let i = bytes.indexOf(0x0a); i >= 0; i = bytes.indexOf(0x0a, start)) {
    lines.push(bytes.subarray(start, i))
    start = i + 1
  }
  if (start < bytes.length) lines.push(bytes.subarray(start))
  return lines
}

/** getfattr writes `\`, newline, CR and other control bytes of names as `\ooo` octal escapes. */
function unescapeGetfattr(escaped: Buffer): Buffer {
  const out: number[] = []
  for (let i = 0; i < escaped.length; i++) {
    const c = escaped[i] as number
    const octal = escaped.subarray(i + 1, i + 4).toString('latin1')
    if (c === 0x5c && /^[0-7]{3}$/.test(octal)) {
      out.push(Number.parseInt(octal, 8))
      i += 3
    } else {
      out.push(c)
    }
  }
  return Buffer.from(out)
}
