import { shortDigest } from '../digest.js'
import { OcipullError } from '../errors.js'
import type { Descriptor } from '../manifest.js'
import type { BlobRequest, ImageSource } from './image-source.js'

export interface ReadBlobOptions extends BlobRequest {
  /** Refuse blobs whose descriptor declares more than this many bytes. */
  maxSize: number
}

/**
 * Reads a small blob (an image config, a signature) whole into memory, verified.
 * The descriptor's size is checked against `maxSize` before any byte is fetched.
 */
export async function readBlob(
  source: ImageSource,
  descriptor: Descriptor,
  options: ReadBlobOptions,
): Promise<Buffer> {
  if (descriptor.size > options.maxSize) {
    throw new OcipullError(
      'ERR_SIZE_MISMATCH',
      `${source.name}: blob ${shortDigest(descriptor.digest)}: declared size ${descriptor.size} exceeds the limit of ${options.maxSize}`,
    )
  }
  const stream = await source.blob(descriptor, options.signal === undefined ? {} : { signal: options.signal })
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}
