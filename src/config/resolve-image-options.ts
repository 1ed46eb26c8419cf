import { parseAuthFile } from '../registry/credential-file.js'
import { authFileCredentials } from '../registry/credentials.js'
import type { ImageOptions } from './image-options.js'
import {
  CDH_CREDENTIALS_ENV,
  type ImageOptionsContext,
  type ImageSourceSettings,
  imageSourceOptions,
  loadRegistriesConf,
  resourceOptions,
} from './image-source-options.js'
import { readConfigResource } from './read-config-resource.js'

/** image-rs's default `work_dir` (in /run, a tmpfs in encrypted memory in a TEE guest). */
export const DEFAULT_WORK_DIR = '/run/kata-containers/image/'
/** image-rs's default `max_concurrent_layer_downloads_per_image`. */
export const DEFAULT_MAX_CONCURRENT_LAYER_DOWNLOADS = 3

/** A fetched document and where it came from (a URI, or `inline`). */
export interface ConfigResource {
  bytes: Uint8Array
  from: string
}

/** Image options with defaults filled in and every URI fetched. */
export interface ImageSettings {
  workDir: string
  maxConcurrentLayerDownloads: number
  /** containers-policy.json: `image_security_policy_uri`, else `image_security_policy`. */
  policy?: ConfigResource
  /** registries.d YAML: `sigstore_config_uri`, else `sigstore_config`. */
  sigstoreConfig?: ConfigResource
  /** Options for openImageSource: registries.conf, credentials, extra roots, proxies. */
  source: ImageSourceSettings
}

/**
 * Fetches everything the options name, up front, the way image-rs's ClientBuilder does: the
 * policy, the sigstore config, the registries.conf and the auth.json (each `*_uri` through
 * `context.keySource`, in parallel). A URI wins over its inline twin, except that an inline
 * `registry_config` wins over `registry_configuration_uri` (as in image-rs). Fails with the
 * KeySource's errors, ERR_CONFIG_FILE_INVALID for a document that does not parse, or
 * ERR_CREDENTIALS for a broken auth.json.
 */
export async function resolveImageOptions(
  options: ImageOptions,
  context: ImageOptionsContext & { signal?: AbortSignal } = {},
): Promise<ImageSettings> {
  const what = context.what ?? 'image options'
  const fetch = async (uri: string | undefined, inline: string | undefined, key: string) => {
    if (uri !== undefined) {
      const bytes = await readConfigResource(
        uri,
        resourceOptions(context, `${what}: ${key}_uri`, context.signal),
      )
      return { bytes, from: uri }
    }
    return inline === undefined ? undefined : { bytes: new TextEncoder().encode(inline), from: 'inline' }
  }
  const lazy = imageSourceOptions(options, context)
  const env = context.env ?? process.env
  const authUri = env[CDH_CREDENTIALS_ENV] || options.authenticatedRegistryCredentialsUri
  const [policy, sigstoreConfig, registries, auth] = await Promise.all([
    fetch(options.imageSecurityPolicyUri, options.imageSecurityPolicy, 'image_security_policy'),
    fetch(options.sigstoreConfigUri, options.sigstoreConfig, 'sigstore_config'),
    options.registryConfig === undefined && options.registryConfigurationUri !== undefined
      ? loadRegistriesConf(options.registryConfigurationUri, context, what, context.signal)
      : options.registryConfig,
    authUri === undefined
      ? undefined
      : readConfigResource(
          authUri,
          resourceOptions(context, `${what}: authenticated_registry_credentials_uri`, context.signal),
        ),
  ])
  const source: ImageSourceSettings = { ...lazy }
  if (registries !== undefined) source.registries = registries
  if (auth !== undefined && authUri !== undefined) {
    parseAuthFile(auth, authUri) // a broken file fails now, as in image-rs, not at the first 401
    source.credentials = authFileCredentials({
      files: [{ name: authUri, read: async () => auth }],
      ...(context.env === undefined ? {} : { env: context.env }),
    })
  }
  return {
    workDir: options.workDir ?? DEFAULT_WORK_DIR,
    maxConcurrentLayerDownloads:
      options.maxConcurrentLayerDownloadsPerImage ?? DEFAULT_MAX_CONCURRENT_LAYER_DOWNLOADS,
    ...(policy === undefined ? {} : { policy }),
    ...(sigstoreConfig === undefined ? {} : { sigstoreConfig }),
    source,
  }
}
