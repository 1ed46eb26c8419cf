import { createHash } from 'node:crypto'
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { expect } from 'vitest'
import { type UnpackStats, unpackTar } from '../../src/unpack/unpack-tar.js'
import { buildTarFull, type TarFullSpec } from './tar-builder.js'
import { makeTempDir } from './temp-dirs.js'

/** An extraction root with a canary tree next to it, for tests of entries that try to escape. */
export interface EscapeArena {
  /** `<base>/root`: the extraction root, empty. */
  readonly root: string
  /** `<base>/outside`: `canary` (0644), `dir/`, `dir/inner` (0600), all with mtime 1e9 s. */
  readonly outside: string
  /**
   * Asserts that nothing under `<base>` but the root changed since the arena was made: no path
   * added or removed, and the same type, mode, owner, size, mtime, content and link target.
   */
  unchanged(): void
}

/**
 * A fresh arena in a temp dir from makeTempDir: the test file removes it with
 * `afterAll(removeTempDirs)`.
 */
export async function escapeArena(): Promise<EscapeArena> {
  const base = await makeTempDir('ocipull-sec-')
  const root = join(base, 'root')
  const outside = join(base, 'outside')
  mkdirSync(root)
  mkdirSync(join(outside, 'dir'), { recursive: true })
  writeFileSync(join(outside, 'canary'), 'canary', { mode: 0o644 })
  writeFileSync(join(outside, 'dir/inner'), 'inner', { mode: 0o600 })
  for (const p of ['canary', 'dir/inner', 'dir', '.']) utimesSync(join(outside, p), 1e9, 1e9)
  const before = snapshot(base)
  return { root, outside, unchanged: () => expect(snapshot(base)).toEqual(before) }
}

/** Everything under `dir` but the root: type, mode, owner, size, mtime, content hash, link target. */
function snapshot(dir: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {}
  const st = lstatSync(join(dir, rel))
  const hash = st.isFile()
    ? createHash('sha256')
        .update(readFileSync(join(dir, rel)))
        .digest('hex')
    : ''
  const link = st.isSymbolicLink() ? readlinkSync(join(dir, rel)) : ''
  out[rel || '.'] = `${st.mode} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${hash}${link}`
  if (st.isDirectory()) {
    for (const name of readdirSync(join(dir, rel))) {
      if (rel === '' && name === 'root') continue
      Object.assign(out, snapshot(dir, rel === '' ? name : `${rel}/${name}`))
    }
  }
  return out
}

/** Unpacks a tar of `specs` into `root` as 'layer sha256:ab12' (the name its errors carry). */
export function unpackLayer(
  root: string,
  specs: (TarFullSpec | Buffer)[],
  whiteouts: 'apply' | 'overlay' = 'apply',
): Promise<UnpackStats> {
  return unpackTar(Readable.from([buildTarFull(specs)]), root, { whiteouts, what: 'layer sha256:ab12' })
}

/** unpackLayer, settled: 'ok', or the error's code (its text when it has none). */
export async function unpackOutcome(
  root: string,
  specs: (TarFullSpec | Buffer)[],
  whiteouts: 'apply' | 'overlay' = 'apply',
): Promise<string> {
  try {
    await unpackLayer(root, specs, whiteouts)
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}
