import { spawn } from 'node:child_process'
import { abortError, OcipullError } from '../errors.js'

/** A provider's answer is a few hundred bytes; cap what we hold. */
const MAX_OUTPUT = 1 << 20
const MAX_STDERR = 4096
export const DEFAULT_KEYPROVIDER_TIMEOUT_MS = 30_000

export interface RunKeyProviderOptions {
  /** Names the provider in messages, e.g. `keyprovider attestation-agent`. */
  what: string
  timeoutMs?: number
  signal?: AbortSignal
}

/**
 * Runs a `cmd` key provider once: writes `input` to its stdin, returns its stdout. The child gets
 * no shell, a timeout (30 s by default) and is killed on abort. ERR_KEY_UNAVAILABLE when it cannot
 * start, exits non-zero (the message carries the end of its stderr), times out, or writes more
 * than 1 MiB.
 */
export function runKeyProviderCmd(
  command: { path: string; args: readonly string[] },
  input: string,
  options: RunKeyProviderOptions,
): Promise<Buffer> {
  const { what, signal } = options
  if (signal?.aborted) return Promise.reject(abortError(signal, what))
  return new Promise((resolve, reject) => {
    const child = spawn(command.path, [...command.args], { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let outLength = 0
    let stderr = ''
    let failure: OcipullError | undefined
    const fail = (err: OcipullError) => {
      failure ??= err
      child.kill('SIGKILL')
    }
    const timer = setTimeout(
      () =>
        fail(
          new OcipullError(
            'ERR_KEY_UNAVAILABLE',
            `${what}: no answer within ${options.timeoutMs ?? DEFAULT_KEYPROVIDER_TIMEOUT_MS} ms`,
            { retryable: true },
          ),
        ),
      options.timeoutMs ?? DEFAULT_KEYPROVIDER_TIMEOUT_MS,
    )
    const onAbort = () => fail(abortError(signal, what))
    signal?.addEventListener('abort', onAbort, { once: true })
    child.stdout.on('data', (chunk: Buffer) => {
      outLength += chunk.length
      if (outLength > MAX_OUTPUT)
        fail(new OcipullError('ERR_KEY_UNAVAILABLE', `${what}: answer larger than ${MAX_OUTPUT} bytes`))
      else out.push(chunk)
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-MAX_STDERR)
    })
    // A provider that exits without reading its input makes the write fail with EPIPE: the exit
    // status is the better report.
    child.stdin.on('error', () => {})
    child.stdin.end(input)
    child.on('error', (err: NodeJS.ErrnoException) =>
      fail(
        new OcipullError(
          'ERR_KEY_UNAVAILABLE',
          `${what}: cannot run ${command.path}: ${err.code ?? err.message}`,
          { cause: err },
        ),
      ),
    )
    child.on('close', (code, sig) => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      if (failure !== undefined) reject(failure)
      else if (code !== 0) {
        const tail = stderr.trim().split('\n').slice(-3).join(' | ')
        reject(
          new OcipullError(
            'ERR_KEY_UNAVAILABLE',
            `${what}: ${command.path} exited ${code ?? sig}${tail ? `: ${tail}` : ''}`,
          ),
        )
      } else resolve(Buffer.concat(out))
    })
  })
}
