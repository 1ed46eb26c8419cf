import { renameSync, rmSync } from 'node:fs'
import { fsPath } from '../fs/resolve-in-root.js'
import { FD_PATH, runWithFd, type ToolResult } from './fd-tool.js'

export type NodeKind = 'char' | 'block' | 'fifo'

const LETTER: Record<NodeKind, string> = { char: 'c', block: 'b', fifo: 'p' }

let counter = 0

/**
 * Creates a device node or fifo named `base` in the directory `dir` (host byte-string paths;
 * `base` must not exist) with `mknod`, mode 0600 until the caller applies the entry's metadata.
 * The tool creates it under a temporary name of ours inside `dir` (reached through an O_PATH
 * descriptor, see fd-tool.ts); we then rename it to `base`, so hostile names never reach argv.
 * Resolves to the tool's result: status 0 on success, errno 'EPERM' without CAP_MKNOD.
 */
export async function makeNode(
  dir: string,
  base: string,
  kind: NodeKind,
  dev: { major: number; minor: number },
  signal: AbortSignal | undefined,
): Promise<ToolResult> {
  const tmp = `.ocipull-mknod-${process.pid}-${++counter}`
  const args = ['-m', '0600', `${FD_PATH}/${tmp}`, LETTER[kind]]
  if (kind !== 'fifo') args.push(String(dev.major), String(dev.minor))
  const result = await runWithFd('mknod', args, fsPath(dir), signal)
  if (result.status !== 0) return result
  try {
    renameSync(fsPath(`${dir}/${tmp}`), fsPath(`${dir}/${base}`))
  } catch (err) {
    rmSync(fsPath(`${dir}/${tmp}`), { force: true })
    throw err
  }
  return result
}
