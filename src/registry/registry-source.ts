import { formatReference, type Reference } from '../reference.js'
import type { ImageSource } from '../sources/image-source.js'
import { RegistryClient, type RegistryClientOptions } from './registry-client.js'

export interface RegistrySourceOptions extends RegistryClientOptions {
  /** Use this client instead of creating one; it is not closed with the source. */
  client?: RegistryClient
}

/**
 * An ImageSource for one reference in a registry. `manifest()` costs one GET (plus a token
 * request the first time); `blob()` one GET that may be redirected.
 */
export function registrySource(ref: Reference, options: RegistrySourceOptions = {}): ImageSource {
  const client = options.client ?? new RegistryClient(options)
  const owned = options.client === undefined
  return {
    name: `docker://${formatReference(ref)}`,
    manifest: (request = {}) =>
      client.getManifest(ref, {
        ...(request.digest === undefined ? {} : { digest: request.digest }),
        ...(request.signal === undefined ? {} : { signal: request.signal }),
      }),
    blob: (descriptor, request = {}) =>
      client.getBlob(ref, descriptor, request.signal ? { signal: request.signal } : {}),
    close: async () => {
      if (owned) await client.close()
    },
  }
}
