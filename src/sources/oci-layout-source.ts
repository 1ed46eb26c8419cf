import { constants, type Stats } from 'node:fs'
import { type FileHandle, lstat, open, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { OcipullError } from '../errors.js'
import type { ImageSource } from './image-source.js'
import {
  checkLayoutOptions,
  type LayoutFile,
  type LayoutFiles,
  type LayoutReferenceOptions,
  layoutName,
  layoutSource,
} from './layout-source.js'
import { rangeStream, readRange } from './local-source-io.js'

export interface OciLayoutSourceOptions extends LayoutReferenceOptions {
  /** The layout directory (holding `oci-layout`, `index.json` and `blobs/`). */
  path: string
}

/**
 * An OCI image layout directory as an ImageSource, named `oci:<path>[:tag][@digest]`.
 * The reference is resolved against index.json (see resolveLayoutTarget): by `digest`, by
 * `tag` (the `org.opencontainers.image.ref.name` annotation), or the only manifest.
 *
 * The directory is untrusted. Files are opened with O_NOFOLLOW and O_NONBLOCK and must be
 * regular files (fstat on the open handle, so there is no check-then-open race); `blobs` and
 * `blobs/<alg>` must be real directories; blob paths are built only from validated digests.
 * A layout cannot make us read /etc/shadow through a symlink or hang on a FIFO.
 */
export function ociLayoutSource(options: OciLayoutSourceOptions): ImageSource {
  checkLayoutOptions(options, 'oci')
  const root = options.path
  const name = layoutName('oci', options)
  return layoutSource({
    name,
    tag: options.tag,
    digest: options.digest,
    maxManifestSize: options.maxManifestSize,
    open: async () => {
      // The root is the caller's own path, so it may be a symlink; nothing below it may.
      const rootStat = await stat(root).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw new OcipullError('ERR_NOT_FOUND', `${name}: no such directory`)
        throw new OcipullError('ERR_SOURCE_INVALID', `${name}: ${err.message}`, { cause: err })
      })
      if (!rootStat.isDirectory()) throw new OcipullError('ERR_SOURCE_INVALID', `${name}: not a directory`)
      return directoryFiles(root, name)
    },
  })
}

async function lstatOrUndefined(path: string, what: string): Promise<Stats | undefined> {
  try {
    return await lstat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new OcipullError('ERR_SOURCE_INVALID', `${what}: ${(err as Error).message}`, { cause: err })
  }
}

function directoryFiles(root: string, name: string): LayoutFiles {
  const handles = new Set<FileHandle>()
  return {
    async open(path) {
      const what = `${name}: ${path}`
      const parts = path.split('/')
      // Intermediate directories (`blobs`, `blobs/sha256`) must not be symlinks either.
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/')
        const stat = await lstatOrUndefined(join(root, dir), `${name}: ${dir}`)
        if (stat === undefined) return undefined
        if (!stat.isDirectory())
          throw new OcipullError('ERR_SOURCE_INVALID', `${name}: ${dir}: not a directory`)
      }
      let handle: FileHandle
      try {
        handle = await open(
          join(root, path),
          constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
        )
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'ENOENT') return undefined
        if (code === 'ELOOP')
          throw new OcipullError('ERR_SOURCE_INVALID', `${what}: is a symlink, refusing to follow it`)
        throw new OcipullError('ERR_SOURCE_INVALID', `${what}: cannot open: ${(err as Error).message}`, {
          cause: err,
        })
      }
      try {
        const stat = await handle.stat()
        if (!stat.isFile()) throw new OcipullError('ERR_SOURCE_INVALID', `${what}: not a regular file`)
        handles.add(handle)
        return handleFile(handle, stat.size, what, handles)
      } catch (err) {
        await handle.close()
        throw err
      }
    },
    async close() {
      const open = [...handles]
      handles.clear()
      await Promise.all(open.map((h) => h.close().catch(() => {})))
    },
  }
}

function handleFile(handle: FileHandle, size: number, what: string, handles: Set<FileHandle>): LayoutFile {
  let released = false
  const release = async () => {
    if (released) return
    released = true
    handles.delete(handle)
    await handle.close()
  }
  return {
    size,
    read: (signal) => readRange(handle, 0, size, { what, signal }),
    stream() {
      released = true
      handles.delete(handle)
      return rangeStream(handle, 0, size, true)
    },
    close: release,
  }
}
