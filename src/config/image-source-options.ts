import type { KeySource } from '../keys/key-source.js'
import type { OpenImageSourceOptions } from '../open-image-source.js'
import { authFileCredentials, type CredentialStore } from '../registry/credentials.js'
import type { RegistriesProvider } from '../registry/registry-source.js'
import { checkResourceUri, type ImageOptions } from './image-options.js'
import { configError } from './parse-toml.js'
import { readConfigResource } from './read-config-resource.js'
import { parseRegistriesConf, type RegistriesConfig } from './registries-conf.js'

/** CDH lets this variable override `authenticated_registry_credentials_uri`; so does ocipull. */
export const CDH_CREDENTIALS_ENV = 'CDH_DEFAULT_IMAGE_AUTHENTICATED_REGISTRY_CREDENTIALS'

export interface ImageOptionsContext {
  /** Fetches `kbs:///…` (and `file://`) URIs; without one only local files can be read. */
  keySource?: KeySource
  /** Where CDH_DEFAULT_IMAGE_AUTHENTICATED_REGISTRY_CREDENTIALS is read from (default process.env). */
  env?: NodeJS.ProcessEnv
  /** Names the configuration in errors, e.g. the file it came from. */
  what?: string
  onWarning?: (message: string) => void
  /** Largest resource a `*_uri` may name (default 1 MiB). */
  maxResourceBytes?: number
}

/** The parts of the image options a registry source needs. */
export type ImageSourceSettings = Pick<
  OpenImageSourceOptions,
  'registries' | 'credentials' | 'caCertificates' | 'proxy'
>

/**
 * Registry source options from image options, without fetching anything yet: proxies and
 * extra roots apply at once; the registries.conf (`registry_config`, else
 * `registry_configuration_uri`) and the auth.json (`authenticated_registry_credentials_uri`)
 * are fetched through `keySource` on first use, once. Merge the result into openImageSource's
 * options; see resolveImageOptions to fetch everything up front instead.
 */
export function imageSourceOptions(
  options: ImageOptions,
  context: ImageOptionsContext = {},
): ImageSourceSettings {
  const what = context.what ?? 'image options'
  const out: ImageSourceSettings = {}
  const registries = registriesFrom(options, context, what)
  if (registries !== undefined) out.registries = registries
  const credentials = credentialsFrom(options, context, what)
  if (credentials !== undefined) out.credentials = credentials
  if (options.extraRootCertificates?.length) out.caCertificates = [...options.extraRootCertificates]
  if (options.imagePullProxy !== undefined) out.proxy = { ...options.imagePullProxy }
  return out
}

function registriesFrom(
  options: ImageOptions,
  context: ImageOptionsContext,
  what: string,
): RegistriesConfig | RegistriesProvider | undefined {
  if (options.registryConfig !== undefined) return options.registryConfig
  const uri = options.registryConfigurationUri
  if (uri === undefined) return undefined
  let loaded: Promise<RegistriesConfig> | undefined
  return () => {
    loaded ??= loadRegistriesConf(uri, context, what, undefined)
    return loaded
  }
}

/** Fetches and parses the registries.conf a `registry_configuration_uri` names. */
export async function loadRegistriesConf(
  uri: string,
  context: ImageOptionsContext,
  what: string,
  signal: AbortSignal | undefined,
): Promise<RegistriesConfig> {
  const name = `${what}: registry_configuration_uri`
  const bytes = await readConfigResource(uri, resourceOptions(context, name, signal))
  return parseRegistriesConf(bytes, { what: `${name} ${uri}`, onWarning: context.onWarning })
}

function credentialsFrom(
  options: ImageOptions,
  context: ImageOptionsContext,
  what: string,
): CredentialStore | undefined {
  const fromEnv = (context.env ?? process.env)[CDH_CREDENTIALS_ENV]
  const uri = fromEnv === undefined || fromEnv === '' ? options.authenticatedRegistryCredentialsUri : fromEnv
  if (uri === undefined) return undefined
  const name = fromEnv ? CDH_CREDENTIALS_ENV : `${what}: authenticated_registry_credentials_uri`
  const problem = checkResourceUri(uri)
  if (problem !== undefined) throw configError(name, problem)
  return authFileCredentials({
    files: [{ name: uri, read: () => readConfigResource(uri, resourceOptions(context, name, undefined)) }],
    ...(context.env === undefined ? {} : { env: context.env }),
  })
}

export function resourceOptions(context: ImageOptionsContext, what: string, signal: AbortSignal | undefined) {
  return {
    what,
    keySource: context.keySource,
    signal,
    ...(context.maxResourceBytes === undefined ? {} : { maxBytes: context.maxResourceBytes }),
  }
}
