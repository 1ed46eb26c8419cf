import type { Readable } from 'node:stream'
import type { Digest } from '../digest.js'
import type { Descriptor, ParsedManifest } from '../manifest.js'
import type { StreamHash } from '../verify-stream.js'

export interface ManifestRequest {
  /** Fetch this digest (a child of an index) instead of what the source's reference names. */
  digest?: Digest
  /** The media type the referring descriptor declared, if any. */
  mediaType?: string
  signal?: AbortSignal
}

export interface BlobRequest {
  signal?: AbortSignal
  /**
   * Hash the blob's bytes with this (its algorithm the descriptor digest's) instead of node:crypto
   * on this thread; the stream still fails on a mismatch. The layer pipeline passes the hash of
   * its decryption thread. A source that ignores it stays correct, only slower.
   */
  hash?: StreamHash
}

/**
 * Where image content comes from: a registry, an OCI layout directory, or an archive.
 *
 * Lifecycle: a source is created for one reference (`registrySource(ref, options)`,
 * `ociLayoutSource(dir, { tag })`, …), used for any number of `manifest` and `blob` calls,
 * and then `close()`d, which releases sockets or file handles. Nothing it returns is trusted:
 * `manifest()` checks the bytes against the digest that names them (the reference's digest,
 * the requested digest, or the registry's Docker-Content-Digest) and a size cap, and `blob()`
 * returns a stream that fails on a size or digest mismatch (see VerifyStream).
 *
 * @example
 * const source = ociLayoutSource('fixtures/layouts/busybox', { tag: 'latest' })
 * const top = await source.manifest({ signal })
 * const config = await readBlob(source, top.manifest.config, { signal })
 * await source.close()
 */
export interface ImageSource {
  /** The source with its transport, for messages and records, e.g. `docker://localhost:5000/app:1`. */
  readonly name: string
  /** The manifest or index the reference names, or the one with `request.digest`. */
  manifest(request?: ManifestRequest): Promise<ParsedManifest>
  /** A stream of the blob's bytes that fails with ERR_SIZE_MISMATCH or ERR_DIGEST_MISMATCH. */
  blob(descriptor: Descriptor, request?: BlobRequest): Promise<Readable>
  /** Releases connections and file handles. The source is unusable afterwards. */
  close(): Promise<void>
}
