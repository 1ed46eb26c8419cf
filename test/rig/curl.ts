import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RunError, run } from './exec.js'

export interface CurlOptions {
  method?: string
  /** PEM CA for https (curl --cacert). */
  cacert?: string
  /** HTTP Basic credentials: 'user:password'. */
  user?: string
  bearer?: string
  headers?: Record<string, string>
}

export interface CurlResult {
  status: number
  /** Header names lower-cased; repeated headers joined with ', ' except www-authenticate (kept by `allHeaders`). */
  headers: Record<string, string>
  allHeaders: [string, string][]
  body: Buffer
  text(): string
  json(): unknown
}

/** Exit status of curl when the request did not complete (e.g. 60: certificate not trusted). */
export class CurlError extends RunError {}

/**
 * One request with the curl binary (an independent HTTP client to check the rig against).
 * Never follows redirects. Rejects with CurlError when curl itself fails (TLS, connection).
 */
export async function curl(url: string, options: CurlOptions = {}): Promise<CurlResult> {
  const dir = await mkdtemp(join(tmpdir(), 'ocipull-curl-'))
  try {
    const bodyFile = join(dir, 'body')
    const headerFile = join(dir, 'headers')
    const args = ['-sS', '--max-time', '30', '-o', bodyFile, '-D', headerFile, '-X', options.method ?? 'GET']
    if (options.method === 'HEAD') args.splice(args.indexOf('-X'), 2, '-I')
    if (options.cacert !== undefined) args.push('--cacert', options.cacert)
    if (options.user !== undefined) args.push('-u', options.user)
    if (options.bearer !== undefined) args.push('-H', `Authorization: Bearer ${options.bearer}`)
    for (const [k, v] of Object.entries(options.headers ?? {})) args.push('-H', `${k}: ${v}`)
    args.push(url)
    try {
      await run('curl', args)
    } catch (err) {
      if (err instanceof RunError) throw new CurlError(err.message, err.code, err.stdout, err.stderr)
      throw err
    }
    const rawHeaders = await readFile(headerFile, 'utf8')
    const lines = rawHeaders.split(/\r?\n/)
    const status = Number(/^HTTP\/\S+\s+(\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0)
    const allHeaders: [string, string][] = []
    const headers: Record<string, string> = {}
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      if (colon <= 0) continue
      const name = line.slice(0, colon).trim().toLowerCase()
      const value = line.slice(colon + 1).trim()
      allHeaders.push([name, value])
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
    }
    const body =
      options.method === 'HEAD' ? Buffer.alloc(0) : await readFile(bodyFile).catch(() => Buffer.alloc(0))
    return {
      status,
      headers,
      allHeaders,
      body,
      text: () => body.toString('utf8'),
      json: () => JSON.parse(body.toString('utf8')) as unknown,
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Parses a `WWW-Authenticate: Bearer k="v",...` challenge into its parameters. */
export function parseBearerChallenge(header: string | undefined): Record<string, string> | undefined {
  if (header === undefined || !/^Bearer\s/i.test(header)) return undefined
  const params: Record<string, string> = {}
  for (const m of header.slice(7).matchAll(/([A-Za-z_]+)="([^"]*)"/g)) {
    if (m[1] !== undefined && m[2] !== undefined) params[m[1]] = m[2]
  }
  return params
}
