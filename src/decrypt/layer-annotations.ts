import { OcipullError } from '../errors.js'
import type { Descriptor } from '../manifest.js'
import { type PublicLayerOptions, parsePublicOptions } from './layer-options.js'
import { decodeBase64 } from './strict-base64.js'

/** Prefix of the annotations that carry wrapped keys: `…enc.keys.<scheme>`. */
export const KEYS_ANNOTATION_PREFIX = 'org.opencontainers.image.enc.keys.'
export const PUBOPTS_ANNOTATION = 'org.opencontainers.image.enc.pubopts'

/** More wrapped keys than this on one layer is hostile: each one costs a private-key operation. */
const MAX_WRAPPED_KEYS = 64

/** One key scheme's wrapped keys, e.g. `jwe` with one JWE per recipient group. */
export interface WrappedKeys {
  /** `jwe`, `pkcs7`, `pgp`, `pkcs11`, `provider.<name>`. */
  scheme: string
  /** The decoded entries of the comma-separated annotation value. */
  entries: Buffer[]
}

/** What a layer descriptor says about its encryption. */
export interface LayerEncryption {
  pubopts: PublicLayerOptions
  wrapped: WrappedKeys[]
}

/**
 * Reads the ocicrypt annotations of an encrypted layer's descriptor: the public options and every
 * `enc.keys.<scheme>` annotation, base64-decoded. Malformed or missing ones are
 * ERR_MANIFEST_INVALID naming the annotation.
 */
export function readLayerEncryption(descriptor: Descriptor, what: string): LayerEncryption {
  const annotations = descriptor.annotations ?? {}
  const pubText = annotations[PUBOPTS_ANNOTATION]
  if (pubText === undefined) {
    throw new OcipullError('ERR_MANIFEST_INVALID', `${what}: annotation ${PUBOPTS_ANNOTATION} is missing`)
  }
  const pubWhat = `${what}: annotation ${PUBOPTS_ANNOTATION}`
  const pubopts = parsePublicOptions(decodeBase64(pubText, 'ERR_MANIFEST_INVALID', pubWhat), pubWhat)
  const wrapped: WrappedKeys[] = []
  let count = 0
  for (const [name, value] of Object.entries(annotations)) {
    if (!name.startsWith(KEYS_ANNOTATION_PREFIX)) continue
    const scheme = name.slice(KEYS_ANNOTATION_PREFIX.length)
    const parts = value.split(',')
    count += parts.length
    if (count > MAX_WRAPPED_KEYS) {
      throw new OcipullError('ERR_MANIFEST_INVALID', `${what}: more than ${MAX_WRAPPED_KEYS} wrapped keys`)
    }
    const entries = parts.map((part, i) => {
      const where = `${what}: annotation ${name}, entry ${i + 1}`
      if (part === '') throw new OcipullError('ERR_MANIFEST_INVALID', `${where}: empty`)
      return decodeBase64(part, 'ERR_MANIFEST_INVALID', where)
    })
    wrapped.push({ scheme, entries })
  }
  if (wrapped.length === 0) {
    throw new OcipullError('ERR_MANIFEST_INVALID', `${what}: no ${KEYS_ANNOTATION_PREFIX}* annotation`)
  }
  return { pubopts, wrapped }
}
