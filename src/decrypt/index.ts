export { type AnnotationPacket, parseAnnotationPacket, unwrapAnnotationPacket } from './annotation-packet.js'
export {
  type KeyProviderEntry,
  type KeyProviders,
  loadKeyProviderConfig,
  parseKeyProviderConfig,
} from './keyprovider-config.js'
export {
  decodeKeyProviderOutput,
  encodeKeyUnwrapInput,
  type KeyProviderOutput,
} from './keyprovider-messages.js'
export {
  createLayerDecryptor,
  type LayerDecryption,
  type LayerDecryptor,
  type LayerDecryptorOptions,
  type LayerKey,
  openLayerDecryption,
  unwrapManifestKeys,
} from './layer-decryptor.js'
export type { PrivateLayerOptions, PublicLayerOptions } from './layer-options.js'
export {
  type DecryptionKey,
  type DecryptionKeySpec,
  loadDecryptionKeys,
  parseDecryptionKeySpec,
  parseKeyFile,
} from './private-keys.js'
