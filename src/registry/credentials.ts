import { join } from 'node:path'
import { abortable } from '../abortable.js'
import { abortError, OcipullError } from '../errors.js'
import { DOCKER_HUB } from '../reference.js'
import { type AuthFile, DEFAULT_MAX_AUTH_FILE_BYTES, parseAuthFile, readAuthFile } from './credential-file.js'
import { runCredentialHelper } from './credential-helper.js'
import { DOCKER_HUB_SERVER_URL, lookupKeys, normalizeRegistry } from './credential-key.js'

export type Credential =
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token (docker `identitytoken`). */
  | { kind: 'identity-token'; username?: string; token: string }
  /** A bearer token sent as is (docker `registrytoken`). */
  | { kind: 'registry-token'; token: string }

export interface CredentialRequest {
  /** Registry host[:port]; Docker Hub's aliases are all the same registry. */
  registry: string
  /** Repository path, for per-namespace entries (`host/ns/repo` → `host/ns` → `host`). */
  repository?: string | undefined
  signal?: AbortSignal | undefined
}

/** Returns credentials for one registry host (and repository, for per-namespace entries), or undefined. */
export type CredentialStore = (request: CredentialRequest) => Promise<Credential | undefined>

/**
 * An auth file that is not a local path, e.g. fetched through a KeySource: `read` is called at
 * most once, on first use, and shared by every lookup (so it gets no caller's signal: each
 * caller stops waiting when its own signal fires);
 * undefined means there is no such file. `name` is for messages.
 */
export interface AuthFileSource {
  name: string
  read: () => Promise<Uint8Array | undefined>
}

export interface AuthFileCredentialsOptions {
  /** Auth files in order of precedence: the first file with a match wins. Missing files are skipped. */
  files: (string | AuthFileSource)[]
  /** Where credential helpers are looked up (PATH) and run with (default process.env). */
  env?: NodeJS.ProcessEnv
  /** Milliseconds a credential helper may take (default 10 s). */
  helperTimeoutMs?: number
  /** Largest auth file accepted (default 1 MiB). */
  maxFileBytes?: number
}

/**
 * Credentials from docker `config.json` and containers `auth.json` files, each read at most once,
 * on first use, in order. Within a file: a `credHelpers` entry for the host decides alone (its
 * "not found" moves on to the next file); else the most specific `auths` entry with a credential
 * (`host/ns/repo`, `host/ns`, `host`); else `credsStore`. Hosts match exactly (case-insensitively),
 * ports included. Malformed files and failing helpers are ERR_CREDENTIALS.
 */
export function authFileCredentials(options: AuthFileCredentialsOptions): CredentialStore {
  const files = [...options.files]
  const loaded = new Map<number, Promise<AuthFile | undefined>>()
  const maxBytes = options.maxFileBytes ?? DEFAULT_MAX_AUTH_FILE_BYTES
  const load = (index: number): Promise<AuthFile | undefined> => {
    let file = loaded.get(index)
    if (file === undefined) {
      const entry = files[index]!
      file = typeof entry === 'string' ? readAuthFile(entry, { maxBytes }) : readAuthSource(entry, maxBytes)
      file.catch(() => {}) // awaited by every caller; this only stops an unhandled-rejection report
      loaded.set(index, file)
    }
    return file
  }
  const helper = (name: string, serverUrl: string, signal: AbortSignal | undefined) =>
    runCredentialHelper({
      helper: name,
      serverUrl,
      env: options.env,
      timeoutMs: options.helperTimeoutMs,
      signal,
    })

  return async ({ registry, repository, signal }) => {
    const host = checkRequest(registry, repository)
    const keys = lookupKeys(host, repository)
    for (let index = 0; index < files.length; index++) {
      const file = await abortable(load(index), signal, 'auth files')
      if (file === undefined) continue
      const byHelper = file.credHelpers.get(host)
      if (byHelper !== undefined) {
        const credential = await helper(byHelper.helper, byHelper.serverUrl, signal)
        if (credential !== undefined) return credential
        continue
      }
      for (const key of keys) {
        const credential = file.auths.get(key)
        if (credential !== undefined) return credential
      }
      if (file.credsStore !== undefined) {
        const serverUrl = file.serverUrls.get(host) ?? (host === DOCKER_HUB ? DOCKER_HUB_SERVER_URL : host)
        const credential = await helper(file.credsStore, serverUrl, signal)
        if (credential !== undefined) return credential
      }
    }
    return undefined
  }
}

/** One credential for exactly one registry (Docker Hub aliases included), e.g. from `--creds`. */
export function staticCredentials(registry: string, credential: Credential): CredentialStore {
  const host = normalizeRegistry(registry)
  return async ({ registry: asked, signal }) => {
    if (signal?.aborted) throw abortError(signal, 'credentials')
    return normalizeRegistry(asked) === host ? credential : undefined
  }
}

/** Asks each store in turn and returns the first credential found. */
export function chainCredentials(...stores: CredentialStore[]): CredentialStore {
  return async (request) => {
    for (const store of stores) {
      if (request.signal?.aborted) throw abortError(request.signal, 'credentials')
      const credential = await store(request)
      if (credential !== undefined) return credential
    }
    return undefined
  }
}

/**
 * Parses `--creds user:password`, split at the first ':' so the password may hold ':'. The ':'
 * is required (there is no prompt to ask for a missing password; `user:` means an empty one) and
 * the user name must not be empty. Errors never quote the text.
 */
export function parseCredsOption(text: string): Credential {
  const colon = text.indexOf(':')
  const fail = (problem: string): OcipullError => new OcipullError('ERR_CREDENTIALS', `creds: ${problem}`)
  if (text === '') throw fail('empty')
  if (colon < 0) throw fail(`want user:password, found no ':'`)
  if (colon === 0) throw fail('user name is empty')
  const username = text.slice(0, colon)
  if (/[\u0000-\u001f\u007f]/.test(username)) throw fail('user name holds control characters')
  return { kind: 'basic', username, password: text.slice(colon + 1) }
}

/**
 * The usual auth files, in containers/image order: `$REGISTRY_AUTH_FILE`, or else
 * `$XDG_RUNTIME_DIR/containers/auth.json` (`/run/containers/<uid>/auth.json` when unset);
 * then `$XDG_CONFIG_HOME/containers/auth.json` (default `$HOME/.config`); then
 * `$DOCKER_CONFIG/config.json` or `$HOME/.docker/config.json`. Unset or empty variables are skipped.
 */
export function defaultAuthFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const variable = (name: string): string | undefined => (env[name] === '' ? undefined : env[name])
  const home = variable('HOME')
  const runtimeDir = variable('XDG_RUNTIME_DIR')
  const configHome = variable('XDG_CONFIG_HOME') ?? (home === undefined ? undefined : join(home, '.config'))
  const dockerConfig = variable('DOCKER_CONFIG') ?? (home === undefined ? undefined : join(home, '.docker'))
  const uid = process.getuid?.()
  const files = [
    variable('REGISTRY_AUTH_FILE') ??
      (runtimeDir !== undefined
        ? join(runtimeDir, 'containers', 'auth.json')
        : uid === undefined
          ? undefined
          : `/run/containers/${uid}/auth.json`),
    configHome === undefined ? undefined : join(configHome, 'containers', 'auth.json'),
    dockerConfig === undefined ? undefined : join(dockerConfig, 'config.json'),
  ]
  return [...new Set(files.filter((f) => f !== undefined))]
}

function checkRequest(registry: string, repository: string | undefined): string {
  if (typeof registry !== 'string' || registry === '' || /[\s/@?#\\]/.test(registry)) {
    throw new OcipullError(
      'ERR_OPTIONS_INVALID',
      `credentials: registry ${JSON.stringify(registry)} is not a host[:port]`,
    )
  }
  if (repository !== undefined && repository !== '' && !/^[^\s/]+(?:\/[^\s/]+)*$/.test(repository)) {
    throw new OcipullError(
      'ERR_OPTIONS_INVALID',
      `credentials: repository ${JSON.stringify(repository)} is not valid`,
    )
  }
  return normalizeRegistry(registry)
}

/** Reads a source once for every caller: no caller's signal is passed on (see abortable). */
async function readAuthSource(source: AuthFileSource, maxBytes: number): Promise<AuthFile | undefined> {
  const bytes = await source.read()
  if (bytes === undefined) return undefined
  if (bytes.byteLength > maxBytes) {
    throw new OcipullError('ERR_CREDENTIALS', `auth file ${source.name}: larger than ${maxBytes} bytes`)
  }
  return parseAuthFile(bytes, source.name)
}
