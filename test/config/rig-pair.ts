import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type RegistryMode, type RigRegistry, rigDir, startRegistry } from '../rig/index.js'

/**
 * Two real registries of one mode: `a` on the rig's ports, `b` as a second instance on
 * OCIPULL_RIG_PORT_BASE_2 (default: the rig's base + 50) with its own state under
 * `<rig dir>/b`, its own CA, htpasswd and storage. The fixtures are pushed to both, so the same
 * tags have the same digests: which one answered is read from their access logs.
 */
export async function startRegistryPair(mode: RegistryMode): Promise<{ a: RigRegistry; b: RigRegistry }> {
  const base = Number(process.env['OCIPULL_RIG_PORT_BASE'] ?? 5100)
  const base2 = Number(process.env['OCIPULL_RIG_PORT_BASE_2'] ?? base + 50)
  const [a, b] = await Promise.all([
    startRegistry(mode),
    startRegistry(mode, { portBase: base2, rigDir: join(rigDir(), 'b') }),
  ])
  return { a, b }
}

/**
 * A registry's log from now on: `since()` returns what it wrote after the mark, once the log has
 * stopped growing for 100 ms (the access-log line of a request is written after its response).
 */
export function logMark(reg: RigRegistry): { since: () => Promise<string> } {
  const offset = statSync(reg.logFile).size
  return {
    since: async () => {
      let size = statSync(reg.logFile).size
      for (let i = 0; i < 40; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        const now = statSync(reg.logFile).size
        if (now === size) break
        size = now
      }
      return readFileSync(reg.logFile).subarray(offset).toString('utf8')
    },
  }
}

/** Access-log lines (`"GET /v2/... HTTP/1.1" 200`) in a piece of registry log. */
export function requestsIn(log: string): string[] {
  return [...log.matchAll(/"((?:GET|HEAD) \/v2\/[^ ]+) HTTP\/[\d.]+" (\d+)/g)].map((m) => `${m[1]} ${m[2]}`)
}

/** A loopback port nothing listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

/** A temporary directory for configuration files; `write(name, text)` returns the path. */
export function configDir(): {
  dir: string
  write: (name: string, text: string) => string
  remove: () => void
} {
  const dir = mkdtempSync(join(tmpdir(), 'ocipull-config-'))
  return {
    dir,
    write: (name, text) => {
      const path = join(dir, name)
      writeFileSync(path, text)
      return path
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** An environment without the developer's own auth files or registries.conf. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: '/nonexistent', XDG_RUNTIME_DIR: '/nonexistent' }
  for (const name of [
    'REGISTRY_AUTH_FILE',
    'DOCKER_CONFIG',
    'XDG_CONFIG_HOME',
    'CONTAINERS_REGISTRIES_CONF',
    'CDH_DEFAULT_IMAGE_AUTHENTICATED_REGISTRY_CREDENTIALS',
    'HTTPS_PROXY',
    'HTTP_PROXY',
    'https_proxy',
    'http_proxy',
    'SSL_CERT_FILE',
    'NODE_EXTRA_CA_CERTS',
  ]) {
    delete env[name]
  }
  return { ...env, ...extra }
}
