import { closeSync, constants, fstatSync, openSync, readFileSync, readSync } from 'node:fs'
import { parseImageOptionsDocument } from '../config/image-options-document.js'
import { type ImageSourceSettings, imageSourceOptions } from '../config/image-source-options.js'
import { configError, DEFAULT_MAX_CONFIG_BYTES } from '../config/parse-toml.js'
import { parseRegistriesConf } from '../config/registries-conf.js'
import { isShortName } from '../config/short-names.js'
import { OcipullError } from '../errors.js'
import type { ImageName } from '../image-name.js'
import type { KeySource } from '../keys/key-source.js'
import type { OpenImageSourceOptions } from '../open-image-source.js'
import {
  authFileCredentials,
  type CredentialStore,
  chainCredentials,
  defaultAuthFiles,
  parseCredsOption,
  staticCredentials,
} from '../registry/credentials.js'

/** The flags every command that reaches a registry takes (parseArgs option specs). */
export const registryFlags = {
  authfile: { type: 'string' },
  creds: { type: 'string' },
  cacert: { type: 'string', multiple: true },
  cert: { type: 'string' },
  key: { type: 'string' },
  insecure: { type: 'boolean' },
  'registries-conf': { type: 'string' },
  config: { type: 'string' },
} as const

export interface RegistryFlagValues {
  authfile?: string | undefined
  creds?: string | undefined
  cacert?: string[] | undefined
  cert?: string | undefined
  key?: string | undefined
  insecure?: boolean | undefined
  'registries-conf'?: string | undefined
  config?: string | undefined
}

export interface RegistryOptionsContext {
  /** REF as typed: a short name (`busybox`) is resolved through registries.conf when one is given. */
  input?: string
  /** Receives configuration warnings (unknown keys, ignored settings); default: stderr. */
  onWarning?: (message: string) => void
  /** Serves the `kbs:///…` URIs of a --config file (registry config, credentials). */
  keySource?: KeySource
  /** The --config file's source settings, already fetched (pull): not read a second time. */
  imageSettings?: ImageSourceSettings
}

export const registryFlagsHelp = `Registry options:
  --authfile FILE     credentials file (auth.json or docker config.json); default: REGISTRY_AUTH_FILE,
                      $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json
  --creds USER:PASS   credentials for the registry in REF
  --cacert FILE       trust this CA certificate (PEM) as well as the system roots; repeatable
  --cert FILE --key FILE
                      client certificate and key (mTLS) for the registry in REF
  --insecure          allow plain HTTP and unverified TLS for the registry in REF
  --registries-conf FILE
                      containers-registries.conf (v2): mirrors, remapped locations, blocked and
                      insecure registries, short names; default: CONTAINERS_REGISTRIES_CONF
  --config FILE       image-rs/CDH image options: an image-rs config.json, a cdh.toml ([image]), or an
                      Init-Data document (its cdh.toml); see docs/configuration.md
Environment: REGISTRY_AUTH_FILE, SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, HTTPS_PROXY, HTTP_PROXY, NO_PROXY,
CONTAINERS_REGISTRIES_CONF, CDH_DEFAULT_IMAGE_AUTHENTICATED_REGISTRY_CREDENTIALS.`

/**
 * Turns the registry flags into source options for `name` (flag settings apply to its registry
 * only). `--config` contributes registries.conf rules, an auth file, extra roots and proxies;
 * `--registries-conf` (or CONTAINERS_REGISTRIES_CONF) replaces the config's registries.conf.
 * Credentials are looked up in order: `--creds` (REF's registry only), the config's auth file,
 * then `--authfile` or the usual auth files. Each is used only for the host it names.
 */
export function registryOptions(
  values: RegistryFlagValues,
  name: ImageName,
  env: NodeJS.ProcessEnv = process.env,
  context: RegistryOptionsContext = {},
): OpenImageSourceOptions {
  if (name.transport !== 'docker') return {}
  const onWarning = context.onWarning ?? ((m: string) => process.stderr.write(`ocipull: warning: ${m}\n`))
  const registry = name.reference.registry
  const config =
    context.imageSettings ??
    (values.config === undefined
      ? {}
      : imageSourceOptions(
          parseImageOptionsDocument(readConfigFile(values.config), { what: values.config, onWarning })
            .options,
          {
            env,
            what: values.config,
            onWarning,
            ...(context.keySource ? { keySource: context.keySource } : {}),
          },
        ))
  const registriesFile = values['registries-conf'] ?? (env['CONTAINERS_REGISTRIES_CONF'] || undefined)
  const registries =
    registriesFile === undefined
      ? config.registries
      : parseRegistriesConf(readConfigFile(registriesFile), { what: registriesFile, onWarning })
  const stores: CredentialStore[] = []
  if (values.creds !== undefined) stores.push(staticCredentials(registry, parseCredsOption(values.creds)))
  if (config.credentials !== undefined) stores.push(config.credentials)
  stores.push(
    authFileCredentials({ files: values.authfile ? [values.authfile] : defaultAuthFiles(env), env }),
  )
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new OcipullError('ERR_OPTIONS_INVALID', '--cert and --key must be given together')
  }
  const options: OpenImageSourceOptions = { credentials: chainCredentials(...stores), env }
  const caCertificates = [
    ...(config.caCertificates ?? []),
    ...(values.cacert ?? []).map((f) => readText(f, '--cacert')),
  ]
  if (caCertificates.length) options.caCertificates = caCertificates
  if (config.proxy !== undefined) options.proxy = config.proxy
  if (values.cert !== undefined && values.key !== undefined) {
    options.clientCertificates = [
      { registry, cert: readText(values.cert, '--cert'), key: readText(values.key, '--key') },
    ]
  }
  if (values.insecure) options.insecureRegistries = [registry]
  if (registries !== undefined) {
    options.registries = registries
    if (context.input !== undefined && isShortName(context.input)) options.shortName = true
  }
  return options
}

/** A configuration file named on the command line: capped, regular files only, never a FIFO. */
export function readConfigFile(path: string): Buffer {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    throw configError(path, `cannot open: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, err)
  }
  try {
    const info = fstatSync(fd)
    if (!info.isFile()) throw configError(path, 'not a regular file')
    if (info.size > DEFAULT_MAX_CONFIG_BYTES)
      throw configError(path, `larger than ${DEFAULT_MAX_CONFIG_BYTES} bytes`)
    const buffer = Buffer.alloc(info.size)
    let length = 0
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, null)
      if (n === 0) break
      length += n
    }
    return buffer.subarray(0, length)
  } finally {
    closeSync(fd)
  }
}

function readText(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new OcipullError(
      'ERR_OPTIONS_INVALID',
      `${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    )
  }
}
