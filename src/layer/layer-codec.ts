import { OcipullError } from '../errors.js'

export type Compression = 'none' | 'gzip' | 'zstd'

/** How a layer blob is encoded, read from its media type. */
export interface LayerCodec {
  compression: Compression
  /** ocicrypt `+encrypted`: decrypt before decompressing. */
  encrypted: boolean
}

const byBase: Record<string, Compression> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
}

/**
 * The codec for a layer media type: OCI and Docker types, non-distributable variants, and
 * ocicrypt's `+encrypted` suffix on each. Anything else is ERR_MEDIA_TYPE_UNSUPPORTED.
 */
export function layerCodec(mediaType: string, what = 'layer'): LayerCodec {
  const encrypted = mediaType.endsWith('+encrypted')
  const base = encrypted ? mediaType.slice(0, -'+encrypted'.length) : mediaType
  const compression = Object.hasOwn(byBase, base) ? byBase[base] : undefined
  if (compression === undefined) {
    throw new OcipullError(
      'ERR_MEDIA_TYPE_UNSUPPORTED',
      `${what}: unsupported layer media type ${JSON.stringify(mediaType)}`,
    )
  }
  return { compression, encrypted }
}

/**
 * What the first bytes of a (decrypted) layer say it is: gzip and zstd by their magic numbers,
 * tar by `ustar` at offset 257. Needs at least 262 bytes to recognise tar; returns 'unknown'
 * when it can't tell (for example a tar shorter than one header).
 */
export function sniffCompression(head: Uint8Array): Compression | 'unknown' {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip'
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
    return 'zstd'
  if (head.length >= 262 && Buffer.from(head.subarray(257, 262)).toString('latin1') === 'ustar') return 'none'
  return 'unknown'
}
