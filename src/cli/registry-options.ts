import { readFileSync } from 'node:fs'
import { OcipullError } from '../errors.js'
import type { ImageName } from '../image-name.js'
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
} as const

export interface RegistryFlagValues {
  authfile?: string | undefined
  creds?: string | undefined
  cacert?: string[] | undefined
  cert?: string | undefined
  key?: string | undefined
  insecure?: boolean | undefined
}

export const registryFlagsHelp = `Registry options:
  --authfile FILE     credentials file (auth.json or docker config.json); default: REGISTRY_AUTH_FILE,
                      $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json
  --creds USER:PASS   credentials for the registry in REF
  --cacert FILE       trust this CA certificate (PEM) as well as the system roots; repeatable
  --cert FILE --key FILE
                      client certificate and key (mTLS) for the registry in REF
  --insecure          allow plain HTTP and unverified TLS for the registry in REF
Environment: REGISTRY_AUTH_FILE, SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, HTTPS_PROXY, HTTP_PROXY, NO_PROXY.`

/** Turns the registry flags into source options for `name` (settings apply to its registry only). */
export function registryOptions(
  values: RegistryFlagValues,
  name: ImageName,
  env: NodeJS.ProcessEnv = process.env,
): OpenImageSourceOptions {
  if (name.transport !== 'docker') return {}
  const registry = name.reference.registry
  const stores: CredentialStore[] = []
  if (values.creds !== undefined) stores.push(staticCredentials(registry, parseCredsOption(values.creds)))
  stores.push(
    authFileCredentials({ files: values.authfile ? [values.authfile] : defaultAuthFiles(env), env }),
  )
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new OcipullError('ERR_OPTIONS_INVALID', '--cert and --key must be given together')
  }
  const options: OpenImageSourceOptions = { credentials: chainCredentials(...stores), env }
  if (values.cacert?.length) options.caCertificates = values.cacert.map((f) => readText(f, '--cacert'))
  if (values.cert !== undefined && values.key !== undefined) {
    options.clientCertificates = [
      { registry, cert: readText(values.cert, '--cert'), key: readText(values.key, '--key') },
    ]
  }
  if (values.insecure) options.insecureRegistries = [registry]
  return options
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
