import { OcipullError } from '../errors.js'
import type { ImageSource } from './image-source.js'
import {
  checkLayoutOptions,
  type LayoutFiles,
  type LayoutReferenceOptions,
  layoutName,
  layoutSource,
} from './layout-source.js'
import { rangeStream, readRange } from './local-source-io.js'
import { findTarFile, openTarArchive } from './tar-index.js'

export interface OciArchiveSourceOptions extends LayoutReferenceOptions {
  /** The tar file holding an OCI image layout (what `skopeo copy … oci-archive:f.tar` writes). */
  path: string
  /** Refuse archives with more entries than this (ERR_SOURCE_INVALID). Default 100 000. */
  maxEntries?: number | undefined
}

/**
 * An `oci-archive:` tar as an ImageSource, named `oci-archive:<path>[:tag][@digest]`, read in
 * place without extracting: the tar's headers are indexed once (see indexTar) and files are
 * read at their offsets through one file handle, held until `close()` so every read sees the
 * file that was indexed. Reference resolution and checks are the OCI layout's (layoutSource);
 * links inside the archive are refused like symlinks in a layout directory.
 */
export function ociArchiveSource(options: OciArchiveSourceOptions): ImageSource {
  checkLayoutOptions(options, 'oci-archive')
  const { maxEntries } = options
  if (maxEntries !== undefined && !(Number.isSafeInteger(maxEntries) && maxEntries > 0)) {
    throw new OcipullError('ERR_OPTIONS_INVALID', 'oci-archive: maxEntries: want a positive integer')
  }
  const name = layoutName('oci-archive', options)
  return layoutSource({
    name,
    tag: options.tag,
    digest: options.digest,
    maxManifestSize: options.maxManifestSize,
    open: async (signal): Promise<LayoutFiles> => {
      const archive = await openTarArchive(options.path, {
        what: name,
        signal,
        ...(maxEntries === undefined ? {} : { maxEntries }),
      })
      return {
        async open(path) {
          const what = `${name}: ${path}`
          const entry = findTarFile(archive.index, path, { followLinks: false, what: name })
          if (entry === undefined) return undefined
          return {
            size: entry.size,
            read: (readSignal) =>
              readRange(archive.handle, entry.offset, entry.size, { what, signal: readSignal }),
            stream: () => rangeStream(archive.handle, entry.offset, entry.size, false),
            close: async () => {},
          }
        },
        close: () => archive.close(),
      }
    },
  })
}
