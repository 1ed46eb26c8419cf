export { type ResolvedUser, type ResolveUserOptions, resolveUser } from './bundle/resolve-user.js'
export {
  type RuntimeConfigImage,
  type RuntimeConfigOptions,
  toRuntimeConfig,
} from './bundle/runtime-config.js'
export type { RuntimeConfig, RuntimeMount, RuntimeProcess, RuntimeUser } from './bundle/runtime-spec.js'
export { type WriteBundleOptions, writeBundle } from './bundle/write-bundle.js'
export { type ImageOptions, imageOptionsFromTable } from './config/image-options.js'
export {
  type ImageOptionsDocument,
  imageOptionsFromCdhToml,
  imageOptionsFromInitData,
  parseImageOptionsDocument,
} from './config/image-options-document.js'
export { imageSourceOptions } from './config/image-source-options.js'
export { findRegistryRule, type PullSource, pullSources } from './config/pull-sources.js'
export { readConfigResource } from './config/read-config-resource.js'
export {
  type MirrorRule,
  type PullFromMirror,
  parseRegistriesConf,
  type RegistriesConfig,
  type RegistryRule,
  registriesConfFromTable,
} from './config/registries-conf.js'
export { type ImageSettings, resolveImageOptions } from './config/resolve-image-options.js'
export { isShortName, shortNameCandidates } from './config/short-names.js'
export {
  type Digest,
  type DigestAlgorithm,
  digestOf,
  isDigest,
  type ParsedDigest,
  parseDigest,
} from './digest.js'
export { type ErrorCode, ErrorCodes, isOcipullError, OcipullError } from './errors.js'
export type { PullPhase } from './events.js'
export { eventSink, PULL_CHANNEL, type PullEvent } from './events.js'
export {
  type ContainerConfig,
  type HistoryEntry,
  type ImageConfig,
  parseImageConfig,
} from './image-config.js'
export { formatImageName, type ImageName, parseImageName } from './image-name.js'
export { parseAaConfig } from './initdata/aa-config.js'
export { parseCdhConfig } from './initdata/cdh-config.js'
export { fitDigest, initDataDigest } from './initdata/initdata-digest.js'
export { decodeInitDataAnnotation } from './initdata/kata-annotation.js'
export { kbsSettingsFromInitData } from './initdata/kbs-settings.js'
export { type InitData, parseInitData } from './initdata/parse-initdata.js'
export { type Attester, sampleAttester } from './kbs/attester.js'
export { createKbsClient, type KbsClient, type KbsClientOptions } from './kbs/kbs-client.js'
export { parseResourceUri, type ResourceUri } from './kbs/resource-uri.js'
export { type DevKbs, type DevKbsOptions, startDevKbs } from './kbs/server/dev-kbs.js'
export { generateTeeKey, type TeeKey, teeKeyFromPrivateKey } from './kbs/tee-key.js'
export { fileKeySource } from './keys/file-key-source.js'
export type { KeySource } from './keys/key-source.js'
export { keySourceByScheme } from './keys/key-source-by-scheme.js'
export { offlineFsKeySource } from './keys/offline-fs-key-source.js'
export { type OpenedKeySource, openKeySource } from './keys/open-key-source.js'
export { pkcs11KeySource } from './keys/pkcs11-key-source.js'
export { type ApplyLayerOptions, applyLayer, type LayerStats } from './layer/apply-layer.js'
export { type Compression, type LayerCodec, layerCodec } from './layer/layer-codec.js'
export {
  DEFAULT_MAX_MANIFEST_SIZE,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type ParsedManifest,
  type Platform,
  parseManifest,
} from './manifest.js'
export { isIndexMediaType, isManifestMediaType, MediaType, manifestMediaTypes } from './media-types.js'
export { type OpenImageSourceOptions, openImageSource } from './open-image-source.js'
export {
  formatPlatform,
  hostPlatform,
  matchPlatform,
  normalizePlatform,
  type PlatformSpec,
  parsePlatform,
} from './platform.js'
export {
  assertPolicyAccepted,
  type ContainersPolicyVerifierOptions,
  containersPolicyVerifier,
  type EvaluatePolicyOptions,
  evaluatePolicy,
  formatVerdict,
  loadPolicy,
  loadRegistriesD,
  type Policy,
  type PolicyVerdict,
  type PolicyVerifier,
  parsePolicy,
  parseRegistriesD,
  type RegistriesD,
  type RequirementVerdict,
} from './policy/index.js'
export { type PulledImage, type PullImageOptions, pullImage } from './pull-image.js'
export { formatReference, parseReference, type Reference, repositoryName } from './reference.js'
export {
  authFileCredentials,
  type Credential,
  type CredentialStore,
  chainCredentials,
  defaultAuthFiles,
  staticCredentials,
} from './registry/credentials.js'
export type { ClientCertificate, HttpClientOptions } from './registry/http-client.js'
export { type ManifestHead, RegistryClient, type RegistryClientOptions } from './registry/registry-client.js'
export {
  isRegistrySource,
  type RegistryImageSource,
  type RegistrySourceOptions,
  registrySource,
} from './registry/registry-source.js'
export type { RetryOptions } from './registry/retry.js'
export {
  chooseFromIndex,
  type ResolvedImage,
  type ResolveImageOptions,
  resolveImage,
} from './resolve-image.js'
export { dirSnapshotter } from './snapshot/dir-snapshotter.js'
export { overlaySnapshotter } from './snapshot/overlay-snapshotter.js'
export type { MaterializeOptions, Rootfs, Snapshotter, StoredLayer } from './snapshot/snapshotter.js'
export { dockerArchiveSource } from './sources/docker-archive-source.js'
export type { BlobRequest, ImageSource, ManifestRequest } from './sources/image-source.js'
export { ociArchiveSource } from './sources/oci-archive-source.js'
export { ociLayoutSource } from './sources/oci-layout-source.js'
export { readBlob } from './sources/read-blob.js'
export { chainIds } from './store/chain-id.js'
export { type ImageRecord, type LayerRecord, LayerStore, type StagedLayer } from './store/layer-store.js'
export type { LayerChange } from './unpack/layer-changes.js'
export {
  type UnpackLimits,
  type UnpackOptions,
  type UnpackStats,
  type UnpackWarning,
  unpackTar,
} from './unpack/unpack-tar.js'
export { type UnpackedImage, type UnpackImageOptions, unpackImage } from './unpack-image.js'
export { localHash, type StreamHash, VerifyStream, type VerifyStreamOptions } from './verify-stream.js'
