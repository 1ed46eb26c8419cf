import { X509Certificate } from 'node:crypto'
import { type RegistriesConfig, registriesConfFromTable } from './registries-conf.js'
import { join, TableReader, type TableReaderOptions } from './table-reader.js'

/**
 * The image-rs / Confidential Data Hub `[image]` options (image-rs `ImageConfig`), in ocipull's
 * spelling. Every field is optional; defaults are filled in by resolveImageOptions. The `*Uri`
 * fields are `file:///path`, `kbs:///repo/type/tag` or a bare absolute path (image-rs reads it
 * as a file), fetched through a KeySource.
 */
export interface ImageOptions {
  /** `work_dir`: where pulled layers and bundles are kept (image-rs: /run/kata-containers/image/). */
  workDir?: string
  /** `image_security_policy`: an inline containers-policy.json. */
  imageSecurityPolicy?: string
  /** `image_security_policy_uri`: wins over the inline policy. */
  imageSecurityPolicyUri?: string
  /** `sigstore_config`: an inline registries.d YAML (where simple signatures are). */
  sigstoreConfig?: string
  /** `sigstore_config_uri`: wins over the inline YAML. */
  sigstoreConfigUri?: string
  /** `authenticated_registry_credentials_uri`: a containers auth.json. */
  authenticatedRegistryCredentialsUri?: string
  /** `registry_configuration_uri`: a registries.conf. */
  registryConfigurationUri?: string
  /** `registry_config`: an inline registries.conf table; wins over the URI (as in image-rs). */
  registryConfig?: RegistriesConfig
  /** `max_concurrent_layer_downloads_per_image` (image-rs default 3). */
  maxConcurrentLayerDownloadsPerImage?: number
  /** `image_pull_proxy`: replaces HTTPS_PROXY, HTTP_PROXY and NO_PROXY from the environment. */
  imagePullProxy?: { httpsProxy?: string; httpProxy?: string; noProxy?: string }
  /** `extra_root_certificates`: PEM CA certificates trusted besides the system roots. */
  extraRootCertificates?: string[]
}

export type ImageOptionsReaderOptions = TableReaderOptions

const URI_KEYS = [
  ['image_security_policy_uri', 'imageSecurityPolicyUri'],
  ['sigstore_config_uri', 'sigstoreConfigUri'],
  ['authenticated_registry_credentials_uri', 'authenticatedRegistryCredentialsUri'],
  ['registry_configuration_uri', 'registryConfigurationUri'],
] as const
const TEXT_KEYS = [
  ['image_security_policy', 'imageSecurityPolicy'],
  ['sigstore_config', 'sigstoreConfig'],
] as const
/** Fields image-rs has that ocipull does not act on: accepted, with a warning. */
const IGNORED_KEYS = [
  'default_snapshot',
  'anonymous_fallback_on_unauthorized',
  'kbc',
  'kbs_uri',
  'nydus_config',
]
const KNOWN_KEYS = [
  'work_dir',
  ...URI_KEYS.map(([k]) => k),
  ...TEXT_KEYS.map(([k]) => k),
  'registry_config',
  'max_concurrent_layer_downloads_per_image',
  'image_pull_proxy',
  'extra_root_certificates',
  ...IGNORED_KEYS,
]
const PROXY_KEYS = [
  ['https_proxy', 'httpsProxy'],
  ['http_proxy', 'httpProxy'],
  ['no_proxy', 'noProxy'],
] as const
const MAX_CERTIFICATES = 64
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

/**
 * Reads the `[image]` table of a cdh.toml, or the top level of an image-rs config.json (same
 * keys, snake_case). Wrong types, relative paths, bad URIs, proxy URLs and certificates are
 * ERR_CONFIG_FILE_INVALID naming the key; unknown keys are warnings (serde ignores them too),
 * or errors when `strict`.
 */
export function imageOptionsFromTable(table: unknown, options: ImageOptionsReaderOptions): ImageOptions {
  const r = new TableReader(options)
  const path = ''
  const t = r.table(table, path)
  r.checkKeys(t, path, KNOWN_KEYS)
  for (const key of IGNORED_KEYS) {
    if (t[key] !== undefined) r.warn(key, 'not supported by ocipull; ignored')
  }
  const out: ImageOptions = {}
  const workDir = r.optionalString(t, 'work_dir', path)
  if (workDir !== undefined) {
    if (!workDir.startsWith('/') || workDir.includes('\0')) r.fail('work_dir', 'want an absolute path')
    out.workDir = workDir
  }
  for (const [key, field] of URI_KEYS) {
    const uri = r.optionalString(t, key, path)
    if (uri === undefined) continue
    const problem = checkResourceUri(uri)
    if (problem !== undefined) r.fail(key, problem)
    out[field] = uri
  }
  for (const [key, field] of TEXT_KEYS) {
    const text = r.optionalString(t, key, path)
    if (text !== undefined) out[field] = text
  }
  if (t['registry_config'] !== undefined && t['registry_config'] !== null) {
    out.registryConfig = registriesConfFromTable(t['registry_config'], {
      ...options,
      what: `${options.what}: registry_config`,
    })
  }
  const max = r.optionalInteger(t, 'max_concurrent_layer_downloads_per_image', path, { min: 1, max: 1024 })
  if (max !== undefined) out.maxConcurrentLayerDownloadsPerImage = max
  if (t['image_pull_proxy'] !== undefined && t['image_pull_proxy'] !== null) {
    const proxy = r.table(t['image_pull_proxy'], 'image_pull_proxy')
    r.checkKeys(
      proxy,
      'image_pull_proxy',
      PROXY_KEYS.map(([k]) => k),
    )
    const value: NonNullable<ImageOptions['imagePullProxy']> = {}
    for (const [key, field] of PROXY_KEYS) {
      const v = r.optionalString(proxy, key, 'image_pull_proxy')
      if (v === undefined || v === '') continue
      if (field !== 'noProxy' && !isProxyUrl(v)) {
        r.fail(join('image_pull_proxy', key), 'want an http:// or https:// proxy URL')
      }
      value[field] = v
    }
    out.imagePullProxy = value
  }
  const certificates = r.optionalStringArray(t, 'extra_root_certificates', path)
  if (certificates !== undefined) {
    if (certificates.length > MAX_CERTIFICATES)
      r.fail('extra_root_certificates', `more than ${MAX_CERTIFICATES}`)
    certificates.forEach((pem, i) => {
      const problem = checkCertificates(pem)
      if (problem !== undefined) r.fail(`extra_root_certificates[${i}]`, problem)
    })
    out.extraRootCertificates = certificates
  }
  return out
}

/** `file:///…`, `kbs:///…`, `kbs+plugin:///…` or an absolute path; why not, or undefined. */
export function checkResourceUri(uri: string): string | undefined {
  if (uri === '' || uri.length > 4096) return 'want a resource URI (file:///path or kbs:///repo/type/tag)'
  if (/[\u0000-\u001f\u007f]/.test(uri)) return 'holds control characters'
  if (uri.startsWith('/')) return undefined
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase()
  if (scheme === 'file' || scheme === 'kbs' || scheme?.startsWith('kbs+')) return undefined
  return scheme === undefined
    ? 'want file:///path, kbs:///repo/type/tag or an absolute path'
    : `the ${scheme}: scheme is not supported (file: or kbs:)`
}

function isProxyUrl(text: string): boolean {
  try {
    const url = new URL(text)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.host !== ''
  } catch {
    return false
  }
}

/** Each entry holds one or more PEM certificates, and nothing that does not parse. */
function checkCertificates(pem: string): string | undefined {
  const blocks = pem.match(PEM_BLOCK) ?? []
  if (blocks.length === 0) return 'want PEM text with at least one CERTIFICATE block'
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block)
    } catch {
      return `certificate ${i + 1} does not parse`
    }
  }
  return undefined
}
