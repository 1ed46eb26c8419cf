import { type Duplex, Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { type LayerDecryption, type LayerDecryptor, openLayerDecryption } from '../decrypt/layer-decryptor.js'
import { type Digest, shortDigest } from '../digest.js'
import { abortError } from '../errors.js'
import type { Descriptor } from '../manifest.js'
import type { ImageSource } from '../sources/image-source.js'
import { type UnpackOptions, type UnpackStats, unpackTar } from '../unpack/unpack-tar.js'
import { VerifyStream } from '../verify-stream.js'
import { decompressStages, type InflateCounter } from './decompress.js'
import { type LayerCodec, layerCodec } from './layer-codec.js'

export interface ApplyLayerOptions extends Omit<UnpackOptions, 'what' | 'signal'> {
  source: ImageSource
  /** The layer's descriptor from the manifest. */
  descriptor: Descriptor
  /** The layer's diff_id from the image config: the digest of the uncompressed tar. */
  diffId: Digest
  /** The directory to extract into; the caller stages it and removes it on failure. */
  root: string
  /** Called as bytes flow: the blob bytes read so far and the uncompressed bytes so far. */
  onProgress?: (bytesIn: number, bytesOut: number) => void
  /** Unwraps the keys of `+encrypted` layers (src/decrypt); without it they are ERR_KEY_UNAVAILABLE. */
  decryptor?: LayerDecryptor
  signal?: AbortSignal
}

export interface LayerStats extends UnpackStats {
  /** Bytes of the blob as fetched (compressed). */
  compressedBytes: number
  /** Bytes of the uncompressed tar, trailing padding included. */
  uncompressedBytes: number
}

/**
 * Streams one layer once through blob digest and size check → (decryption) → decompression →
 * diff_id hash → tar extraction into `root`. Resolves only when every check has passed. The files
 * it wrote are unverified until then: the caller extracts into a staging directory and commits it
 * only on success.
 *
 * When a later stage fails (corrupt gzip, bad tar, unsafe path), the rest of the blob is still
 * read, up to its declared size, so that a damaged blob is reported as what it is:
 * ERR_DIGEST_MISMATCH or ERR_SIZE_MISMATCH win over the decompression or tar error they caused.
 */
export async function applyLayer(options: ApplyLayerOptions): Promise<LayerStats> {
  const { source, descriptor, signal } = options
  const what = `${source.name}: layer ${shortDigest(descriptor.digest)}`
  const codec = layerCodec(descriptor.mediaType, what)
  if (signal?.aborted) throw abortError(signal, what)
  // Encrypted: the blob's bytes are HMAC-checked as they are read (verdict at the blob's end,
  // before the pipeline can finish), and decrypted before they are decompressed; a big layer
  // that does not inflate well moves to a thread of its own, which then also hashes the blob for
  // the source's digest check. `inflation` counts the inflater's input and output for it.
  const inflation: InflateCounter = { in: 0, out: 0 }
  const decryption = codec.encrypted
    ? await openLayerDecryption(options.decryptor, descriptor, {
        what,
        ...(signal ? { signal } : {}),
        ...(codec.compression === 'none' ? {} : { inflateRatio: () => inflation.out / inflation.in }),
      })
    : undefined
  try {
    return await runLayer(options, codec, what, decryption, inflation)
  } finally {
    decryption?.close()
  }
}

/** The pipeline itself: blob → (decryption) → decompression → diff_id → tar. */
async function runLayer(
  options: ApplyLayerOptions,
  codec: LayerCodec,
  what: string,
  decryption: LayerDecryption | undefined,
  inflation: InflateCounter,
): Promise<LayerStats> {
  const { source, descriptor, diffId, root, signal } = options
  const blob = await source.blob(descriptor, {
    ...(signal ? { signal } : {}),
    ...(decryption?.blobHash ? { hash: decryption.blobHash } : {}),
  })
  const decompress = decompressStages(codec.compression, what, inflation)
  if (decryption) decompress.unshift(decryption.decipher)
  const head = decompress[0] as Duplex
  // An uncompressed layer whose digest is its diff_id is already hashed by the blob stream.
  const diff =
    codec.compression === 'none' && descriptor.digest === diffId
      ? new CountStream()
      : new VerifyStream({ digest: diffId, what: `${what}: diff_id` })

  const downstream = pipeline([...decompress, diff])
  const unpacking = unpackTar(diff, root, {
    whiteouts: options.whiteouts,
    what,
    ...(options.onChange ? { onChange: options.onChange } : {}),
    ...(options.deferMissingLinks ? { deferMissingLinks: true } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    ...(signal ? { signal } : {}),
  })
  let failure: unknown
  let bytesIn = 0
  const failed = new Promise<void>((resolve) => {
    const fail = (err: unknown) => {
      failure ??= err
      resolve()
    }
    downstream.catch(fail)
    // An extraction failure must stop the decompression too, or it would wait for a reader.
    unpacking.catch((err: unknown) => {
      fail(err)
      diff.destroy(err as Error)
    })
  })

  try {
    for await (const chunk of decryption ? decryption.authenticate(blob) : blob) {
      if (failure !== undefined) continue // drain: only the blob's own verdict is left to learn
      bytesIn += (chunk as Buffer).length
      options.onProgress?.(bytesIn, diff.bytes)
      if (!head.write(chunk)) await Promise.race([new Promise((r) => head.once('drain', r)), failed])
    }
  } catch (blobError) {
    head.destroy(blobError as Error)
    await Promise.allSettled([downstream, unpacking])
    throw blobError
  }
  if (failure === undefined) head.end()
  const [piped, unpacked] = await Promise.allSettled([downstream, unpacking])
  if (piped.status === 'rejected') throw piped.reason
  if (unpacked.status === 'rejected') throw unpacked.reason
  return {
    ...unpacked.value,
    // Verified equal to the descriptor's size by the blob stream.
    compressedBytes: descriptor.size,
    uncompressedBytes: diff.bytes,
  }
}

/** Passes bytes through and counts them. */
class CountStream extends Transform {
  bytes = 0

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length
    callback(null, chunk)
  }
}
