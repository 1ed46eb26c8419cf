/**
 * Real registries for tests: Debian's docker-registry (distribution 2.8) started by
 * scripts/registry.sh, with the fixture images pushed by scripts/push-fixtures.sh.
 *
 *   const ok = requireRegistry('tls-basic')          // false -> skip (throws under CI=true)
 *   describe.skipIf(!ok)('...', () => {
 *     let reg: RigRegistry
 *     beforeAll(async () => { reg = await startRegistry('tls-basic') })
 *     afterAll(() => reg?.stop())
 *   })
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { PUBLIC_REPOSITORIES } from './credentials.js'
import { run } from './exec.js'
import { FIXTURES_DIR, PUSH_SCRIPT, REGISTRY_SCRIPT, rigDir } from './paths.js'
import { startTokenServer, type TokenServer, type TokenServerBehavior } from './token-server.js'
import { requireTool } from './tools.js'

export type RegistryMode = 'http' | 'tls-basic' | 'token' | 'mtls'

export const REGISTRY_MODES: readonly RegistryMode[] = ['http', 'tls-basic', 'token', 'mtls']

/** OCIPULL_RIG_PORT_BASE (default 5100) moves all rig ports, e.g. for a second checkout. */
const PORT_BASE = Number(process.env['OCIPULL_RIG_PORT_BASE'] ?? 5100)

/** Fixed loopback ports: 5101, 5102, 5103, 5105 by default (scripts/registry.sh uses the same). */
export const REGISTRY_PORTS: Readonly<Record<RegistryMode, number>> = {
  http: PORT_BASE + 1,
  'tls-basic': PORT_BASE + 2,
  token: PORT_BASE + 3,
  // PORT_BASE + 4 is the token server's
  mtls: PORT_BASE + 5,
}

/** The token registry's realm is https://127.0.0.1:5104/token (override: OCIPULL_RIG_TOKEN_PORT). */
export const TOKEN_SERVER_PORT = Number(process.env['OCIPULL_RIG_TOKEN_PORT'] ?? PORT_BASE + 4)

/** Tags pushed by scripts/push-fixtures.sh into every rig registry. */
export type FixtureTag =
  | 'busybox:oci'
  | 'busybox:v2s2'
  | 'busybox:zstd'
  | 'busybox:uncompressed'
  | 'multiarch:oci'
  | 'multiarch:docker'
  | 'public/busybox:latest'

export interface PushedImage {
  /** e.g. 127.0.0.1:5101/busybox:oci */
  ref: string
  /** Digest of the manifest (or index/list) as stored in the registry. */
  digest: string
  mediaType: string
  size: number
}

export interface RigRegistry {
  readonly mode: RegistryMode
  /** '127.0.0.1:5101' */
  readonly host: string
  readonly port: number
  readonly scheme: 'http' | 'https'
  /** 'http://127.0.0.1:5101' or 'https://127.0.0.1:5102' */
  readonly url: string
  /** PEM CA that signed the registry's (and token server's) certificate; https modes only. */
  readonly caFile?: string
  /**
   * A skopeo --cert-dir: ca.crt, and in mtls mode also the client pair (client.cert, client.key);
   * https modes only.
   */
  readonly certDir?: string
  /** mtls mode: PEM client certificate (signed by the CA in the registry's clientcas) and its key. */
  readonly clientCertFile?: string
  readonly clientKeyFile?: string
  /** tls-basic and token modes: testuser / testpass. */
  readonly username?: string
  readonly password?: string
  /** containers-auth.json with the credentials for `host`; tls-basic and token modes. */
  readonly authFile?: string
  /** token mode: the in-process token server at https://127.0.0.1:5104/token. */
  readonly tokenServer?: TokenServer
  /** The fixture tags and their digests in this registry. */
  readonly images: Readonly<Record<FixtureTag, PushedImage>>
  /** Repositories the token server lets anonymous clients pull (token mode). */
  readonly publicRepositories: readonly string[]
  readonly stateDir: string
  readonly logFile: string
  /** `${host}/${repoAndTag}` */
  ref(repoAndTag: string): string
  /**
   * skopeo flags to reach this registry, e.g. ['--tls-verify=false'], ['--cert-dir', dir, '--creds', 'u:p']
   * or, in mtls mode, ['--cert-dir', dir] (the dir holds the client certificate too).
   */
  skopeoFlags(options?: { dest?: boolean; anonymous?: boolean }): string[]
  /** Releases this process's lease; the registry stops when no test process holds one. Idempotent. */
  stop(): Promise<void>
}

export interface StartRegistryOptions {
  /** Push the fixtures if this registry's storage does not have them yet. Default true. */
  push?: boolean
  /**
   * A second instance of the same mode: its own port base (ports base+1..base+5, the token server
   * on base+4) and its own state directory (`<rigDir>/<mode>`). Both default to the rig's
   * (OCIPULL_RIG_PORT_BASE, OCIPULL_RIG_DIR); give both to run two registries of one mode at once.
   */
  portBase?: number
  rigDir?: string
  /** token mode: initial token server behaviour (users, publicRepositories, ttlSeconds, ...). */
  tokenServer?: Partial<TokenServerBehavior>
}

/** Tools a registry mode needs; see requireTool for the CI semantics. */
export function registryTools(mode: RegistryMode): string[] {
  const tools = ['docker-registry', 'curl', 'flock', 'setsid', 'skopeo', 'jq', 'sha256sum']
  if (mode !== 'http') tools.push('openssl')
  if (mode === 'tls-basic') tools.push('htpasswd')
  return tools
}

/** requireTool(...registryTools(mode)) for each mode (default: all modes). */
export function requireRegistry(...modes: RegistryMode[]): boolean {
  const list = modes.length > 0 ? modes : REGISTRY_MODES
  return requireTool(...new Set(list.flatMap(registryTools)))
}

interface RegistryEnv {
  HOST: string
  PORT: string
  SCHEME: 'http' | 'https'
  URL: string
  STATE_DIR: string
  LOG: string
  STORAGE: string
  CA_FILE?: string
  CERT_DIR?: string
  SERVER_CERT?: string
  SERVER_KEY?: string
  CLIENT_CERT?: string
  CLIENT_KEY?: string
  USERNAME?: string
  PASSWORD?: string
  AUTH_FILE?: string
  TOKEN_ISSUER?: string
  TOKEN_SERVICE?: string
  TOKEN_SIGNING_KEY?: string
  TOKEN_SIGNING_CERT?: string
  TOKEN_CA_FILE?: string
}

/** Where one registry instance lives: its state directory base and its ports. */
interface Instance {
  dir: string
  portBase: number
  tokenPort: number
}

function defaultInstance(): Instance {
  return { dir: rigDir(), portBase: PORT_BASE, tokenPort: TOKEN_SERVER_PORT }
}

function registryScript(args: string[], instance: Instance = defaultInstance()) {
  return run('bash', [REGISTRY_SCRIPT, ...args], {
    env: {
      ...process.env,
      OCIPULL_RIG_DIR: instance.dir,
      OCIPULL_RIG_PORT_BASE: String(instance.portBase),
      OCIPULL_RIG_TOKEN_PORT: String(instance.tokenPort),
    },
  })
}

async function registryEnv(mode: RegistryMode, instance: Instance): Promise<RegistryEnv> {
  const { stdout } = await registryScript(['env', mode, '--json'], instance)
  return JSON.parse(stdout) as RegistryEnv
}

/** Hash of everything a push depends on: the committed layouts and the push script. */
function fixturesHash(): string {
  const hash = createHash('sha256')
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else hash.update(`${relative(FIXTURES_DIR, path)}\0`).update(readFileSync(path))
    }
  }
  walk(join(FIXTURES_DIR, 'layouts'))
  hash.update(readFileSync(PUSH_SCRIPT))
  return hash.digest('hex')
}

function skopeoFlagsFor(env: RegistryEnv, mode: RegistryMode, dest: boolean, anonymous: boolean): string[] {
  const p = dest ? '--dest-' : '--'
  const flags: string[] = []
  if (env.SCHEME === 'http') flags.push(`${p}tls-verify=false`)
  else flags.push(`${p}cert-dir`, env.CERT_DIR ?? '')
  if (mode === 'tls-basic' || mode === 'token') {
    if (anonymous) flags.push(`${p}no-creds`)
    else flags.push(`${p}creds`, `${env.USERNAME ?? ''}:${env.PASSWORD ?? ''}`)
  }
  return flags
}

async function ensurePushed(env: RegistryEnv, mode: RegistryMode): Promise<Record<FixtureTag, PushedImage>> {
  const marker = join(env.STORAGE, 'ocipull-fixtures.json')
  const hash = fixturesHash()
  if (existsSync(marker)) {
    const saved = JSON.parse(readFileSync(marker, 'utf8')) as {
      hash: string
      images: Record<FixtureTag, PushedImage>
    }
    if (saved.hash === hash) return saved.images
  }
  const summary = join(env.STATE_DIR, 'push-summary.json')
  await run('bash', [PUSH_SCRIPT, env.HOST, ...skopeoFlagsFor(env, mode, true, false)], {
    env: { ...process.env, OCIPULL_PUSH_SUMMARY: summary },
    timeoutMs: 180_000,
  })
  const images = JSON.parse(readFileSync(summary, 'utf8')) as Record<FixtureTag, PushedImage>
  writeFileSync(marker, `${JSON.stringify({ hash, images }, null, 2)}\n`)
  return images
}

/** holder -> mode and instance of the leases this process holds. */
const activeLeases = new Map<string, { mode: RegistryMode; dir: string }>()
let leaseCounter = 0
let exitHookInstalled = false

function installExitHook() {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // A test file that forgets stop() must not leave its lease behind (dead pids are pruned anyway).
  process.on('exit', () => {
    for (const [holder, { mode, dir }] of activeLeases) {
      spawnSync('bash', [REGISTRY_SCRIPT, 'release', mode, holder], {
        env: { ...process.env, OCIPULL_RIG_DIR: dir },
        stdio: 'ignore',
      })
    }
  })
}

/**
 * Starts (or joins) the registry of `mode` on its fixed port, with the fixture images pushed.
 * In token mode, first starts the token server in this process on TOKEN_SERVER_PORT.
 */
export async function startRegistry(
  mode: RegistryMode,
  options: StartRegistryOptions = {},
): Promise<RigRegistry> {
  const instance: Instance =
    options.portBase === undefined && options.rigDir === undefined
      ? defaultInstance()
      : {
          dir: options.rigDir ?? rigDir(),
          portBase: options.portBase ?? PORT_BASE,
          tokenPort: options.portBase === undefined ? TOKEN_SERVER_PORT : options.portBase + 4,
        }
  const port = REGISTRY_PORTS[mode] - PORT_BASE + instance.portBase
  // One lease per call, named PID-N: registry.sh prunes leases whose PID is gone.
  leaseCounter += 1
  const holder = `${process.pid}-${leaseCounter}`
  await registryScript(['init', mode, String(port)], instance)
  let env = await registryEnv(mode, instance)

  let tokenServer: TokenServer | undefined
  if (mode === 'token') {
    tokenServer = await startTokenServer({
      ...options.tokenServer,
      signingKey: readFileSync(env.TOKEN_SIGNING_KEY ?? '', 'utf8'),
      signingCertChain:
        readFileSync(env.TOKEN_SIGNING_CERT ?? '', 'utf8') + readFileSync(env.TOKEN_CA_FILE ?? '', 'utf8'),
      issuer: env.TOKEN_ISSUER ?? '',
      service: env.TOKEN_SERVICE ?? '',
      port: instance.tokenPort,
      portWaitMs: 60_000,
      tls: {
        key: readFileSync(env.SERVER_KEY ?? '', 'utf8'),
        cert: readFileSync(env.SERVER_CERT ?? '', 'utf8'),
      },
    })
  }

  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    try {
      await tokenServer?.stop()
    } finally {
      activeLeases.delete(holder)
      await registryScript(['release', mode, holder], instance)
    }
  }

  try {
    installExitHook()
    activeLeases.set(holder, { mode, dir: instance.dir })
    await registryScript(['acquire', mode, String(port), holder], instance)
    env = await registryEnv(mode, instance) // the port is final only now
    const pushed: Partial<Record<FixtureTag, PushedImage>> =
      options.push === false ? {} : await ensurePushed(env, mode)
    // The marker may predate a port change: refs always use the current host.
    const images = Object.fromEntries(
      Object.entries(pushed).map(([tag, image]) => [tag, { ...image, ref: `${env.HOST}/${tag}` }]),
    ) as Record<FixtureTag, PushedImage>
    const registry: RigRegistry = {
      mode,
      host: env.HOST,
      port: Number(env.PORT),
      scheme: env.SCHEME,
      url: env.URL,
      ...(env.CA_FILE !== undefined ? { caFile: env.CA_FILE } : {}),
      ...(env.CERT_DIR !== undefined ? { certDir: env.CERT_DIR } : {}),
      ...(env.CLIENT_CERT !== undefined ? { clientCertFile: env.CLIENT_CERT } : {}),
      ...(env.CLIENT_KEY !== undefined ? { clientKeyFile: env.CLIENT_KEY } : {}),
      ...(env.USERNAME !== undefined ? { username: env.USERNAME } : {}),
      ...(env.PASSWORD !== undefined ? { password: env.PASSWORD } : {}),
      ...(env.AUTH_FILE !== undefined ? { authFile: env.AUTH_FILE } : {}),
      ...(tokenServer !== undefined ? { tokenServer } : {}),
      images,
      publicRepositories: options.tokenServer?.publicRepositories ?? PUBLIC_REPOSITORIES,
      stateDir: env.STATE_DIR,
      logFile: env.LOG,
      ref: (repoAndTag) => `${env.HOST}/${repoAndTag}`,
      skopeoFlags: (o = {}) => skopeoFlagsFor(env, mode, o.dest ?? false, o.anonymous ?? false),
      stop,
    }
    return registry
  } catch (err) {
    await stop().catch(() => {})
    throw err
  }
}
