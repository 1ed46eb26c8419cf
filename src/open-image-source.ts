import type { ImageName } from './image-name.js'
import { type RegistrySourceOptions, registrySource } from './registry/registry-source.js'
import { dockerArchiveSource } from './sources/docker-archive-source.js'
import type { ImageSource } from './sources/image-source.js'
import { ociArchiveSource } from './sources/oci-archive-source.js'
import { ociLayoutSource } from './sources/oci-layout-source.js'

export type OpenImageSourceOptions = RegistrySourceOptions

/**
 * Opens the ImageSource for a parsed image name; registry options apply to `docker` names only.
 * A `docker` name gives a RegistryImageSource (see isRegistrySource): with `registries` it tries
 * mirrors and remapped locations in order, and records in `location` the one that answered,
 * while `reference` stays the user's (the one to evaluate a signature policy on).
 */
export function openImageSource(name: ImageName, options: OpenImageSourceOptions = {}): ImageSource {
  const local = (n: { path: string; tag?: string; digest?: string }) => ({
    path: n.path,
    ...(n.tag === undefined ? {} : { tag: n.tag }),
    ...(n.digest === undefined ? {} : { digest: n.digest }),
    ...(options.maxManifestSize === undefined ? {} : { maxManifestSize: options.maxManifestSize }),
  })
  switch (name.transport) {
    case 'docker':
      return registrySource(name.reference, options)
    case 'oci':
      return ociLayoutSource(local(name))
    case 'oci-archive':
      return ociArchiveSource(local(name))
    case 'docker-archive':
      return dockerArchiveSource(
        name.tag === undefined ? { path: name.path } : { path: name.path, tag: name.tag },
      )
  }
}
