import { spawn } from 'node:child_process'
import { constants } from 'node:fs'
import { access, stat } from 'node:fs/promises'
import { delimiter, isAbsolute, join } from 'node:path'
import { abortError, OcipullError } from '../errors.js'
import type { Credential } from './credentials.js'

export interface CredentialHelperOptions {
  /** The helper's name: `pass` runs `docker-credential-pass`. */
  helper: string
  /** Written to the helper's stdin: the key as stored in the auth file, e.g. `registry.example.com`. */
  serverUrl: string
  /** The helper is looked up on this environment's PATH and runs with it (default process.env). */
  env?: NodeJS.ProcessEnv | undefined
  /** Milliseconds before the helper is killed (default 10 s). */
  timeoutMs?: number | undefined
  /** Largest stdout accepted (default 64 KiB). */
  maxOutputBytes?: number | undefined
  signal?: AbortSignal | undefined
}

const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const MAX_STDERR_BYTES = 4096
const NOT_FOUND = /credentials not found/i

/** True for names that are safe to append to `docker-credential-` (no paths, no options). */
export function isValidHelperName(name: string): boolean {
  return HELPER_NAME.test(name)
}

/**
 * Runs `docker-credential-<helper> get` (an argv array, no shell), writes the server URL to its
 * stdin and reads `{"ServerURL", "Username", "Secret"}` from its stdout. `Username: "<token>"` makes
 * the secret an identity token. "credentials not found" and an empty secret give undefined. Other
 * failures, the timeout and oversized output are ERR_CREDENTIALS; the abort signal kills the child
 * and gives ERR_ABORTED. Messages name the helper and quote the first line of its stderr (or of a
 * non-JSON stdout), never the secret.
 */
export async function runCredentialHelper(options: CredentialHelperOptions): Promise<Credential | undefined> {
  const program = `docker-credential-${options.helper}`
  const what = `credential helper ${isValidHelperName(options.helper) ? program : JSON.stringify(clip(program))}`
  const fail = (problem: string, cause?: unknown): OcipullError =>
    new OcipullError('ERR_CREDENTIALS', `${what}: ${problem}`, cause === undefined ? {} : { cause })
  if (!isValidHelperName(options.helper)) throw fail('not a valid helper name')
  if (/[\u0000-\u001f\u007f]/.test(options.serverUrl)) throw fail('server URL holds control characters')
  if (options.signal?.aborted) throw abortError(options.signal, what)
  const env = options.env ?? process.env
  const file = await findOnPath(program, env['PATH'] ?? '')
  if (file === undefined) throw fail('not found on PATH')
  if (options.signal?.aborted) throw abortError(options.signal, what)

  const result = await run({
    file,
    input: options.serverUrl, // as docker does: no newline
    env,
    timeoutMs: options.timeoutMs ?? 10_000,
    maxOutputBytes: options.maxOutputBytes ?? 64 * 1024,
    signal: options.signal,
    fail,
    what,
  })
  const stdout = result.stdout.toString('utf8')
  if (result.code !== 0) {
    if (NOT_FOUND.test(stdout) || NOT_FOUND.test(result.stderr.toString('utf8'))) return undefined
    const how =
      result.code === null
        ? `killed by ${result.killSignal ?? 'a signal'}`
        : `exited with code ${result.code}`
    let line = firstLine(result.stderr.toString('utf8'))
    // Helpers built on docker-credential-helpers report errors on stdout; never echo JSON, it may hold a secret.
    if (line === '' && !stdout.trimStart().startsWith('{')) line = firstLine(stdout)
    throw fail(line === '' ? how : `${how}: ${line}`)
  }
  let doc: unknown
  try {
    doc = JSON.parse(stdout)
  } catch {
    throw fail('output is not valid JSON')
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw fail('output is not a JSON object')
  const { Username: username = '', Secret: secret = '' } = doc as Record<string, unknown>
  if (typeof username !== 'string') throw fail('output: Username: want a string')
  if (typeof secret !== 'string') throw fail('output: Secret: want a string')
  if (secret === '') return undefined
  if (username === '<token>') {
    if (/[\u0000-\u001f\u007f]/.test(secret)) throw fail('output: Secret: holds control characters')
    return { kind: 'identity-token', token: secret }
  }
  if (username === '') throw fail('output: Username: empty')
  return { kind: 'basic', username, password: secret }
}

/** The first executable regular file named `program` in an absolute PATH entry. */
async function findOnPath(program: string, path: string): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    if (dir === '' || !isAbsolute(dir)) continue // never resolve against the working directory
    const candidate = join(dir, program)
    try {
      if (!(await stat(candidate)).isFile()) continue
      await access(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  return undefined
}

interface RunOptions {
  file: string
  input: string
  env: NodeJS.ProcessEnv
  timeoutMs: number
  maxOutputBytes: number
  signal: AbortSignal | undefined
  fail: (problem: string, cause?: unknown) => OcipullError
  what: string
}

interface RunResult {
  code: number | null
  killSignal: string | null
  stdout: Buffer
  stderr: Buffer
}

function run(options: RunOptions): Promise<RunResult> {
  const { signal, fail } = options
  return new Promise((resolve, reject) => {
    const child = spawn(options.file, ['get'], {
      env: options.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      shell: false,
    })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    let stdoutBytes = 0
    let stderrBytes = 0
    let settled = false
    const finish = (err: Error | undefined, result?: RunResult): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      if (err === undefined && result !== undefined) {
        resolve(result)
        return
      }
      // Settle now: a grandchild may hold the pipes open after the helper itself is gone.
      child.kill('SIGKILL')
      child.stdin.destroy()
      child.stdout.destroy()
      child.stderr.destroy()
      reject(err)
    }
    const onAbort = (): void => finish(abortError(signal, options.what))
    const timer = setTimeout(
      () => finish(fail(`no answer within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    )
    signal?.addEventListener('abort', onAbort, { once: true })
    child.on('error', (err: NodeJS.ErrnoException) => finish(fail(`cannot run: ${err.code ?? 'error'}`, err)))
    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length
      if (stdoutBytes > options.maxOutputBytes)
        finish(fail(`output larger than ${options.maxOutputBytes} bytes`))
      else stdout.push(chunk)
    })
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderrBytes >= MAX_STDERR_BYTES) return
      stderr.push(chunk)
      stderrBytes += chunk.length
    })
    child.on('close', (code, killSignal) =>
      finish(undefined, { code, killSignal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) }),
    )
    child.stdin.on('error', () => {}) // EPIPE when the helper exits without reading
    child.stdin.end(options.input)
  })
}

function firstLine(text: string): string {
  const line = text.trim().split(/\r?\n/, 1)[0] ?? ''
  return clip(line.replace(/[\u0000-\u001f\u007f]/g, ' '))
}

function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 197)}...` : text
}
