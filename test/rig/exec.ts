import { execFile } from 'node:child_process'

export interface RunOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  timeoutMs?: number
  input?: string
}

export interface RunResult {
  stdout: string
  stderr: string
}

/** Failure of a command run by the rig: carries the exit code and both outputs. */
export class RunError extends Error {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string

  constructor(message: string, code: number | null, stdout: string, stderr: string) {
    super(message)
    this.name = 'RunError'
    this.code = code
    this.stdout = stdout
    this.stderr = stderr
  }
}

/**
 * Runs a command asynchronously (never spawnSync: the token server runs in this process and must
 * keep answering while skopeo talks to it). Rejects with RunError on a non-zero exit.
 */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      {
        env: options.env ?? process.env,
        cwd: options.cwd,
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err) {
          const code = typeof err.code === 'number' ? err.code : null
          const how = err.killed ? `killed (${err.signal ?? 'timeout'})` : `exit code ${String(err.code)}`
          const tail = stderr.trim().split('\n').slice(-30).join('\n')
          reject(new RunError(`${cmd} ${args.join(' ')}: ${how}\n${tail}`, code, stdout, stderr))
        } else {
          resolve({ stdout, stderr })
        }
      },
    )
    if (options.input !== undefined) child.stdin?.end(options.input)
    else child.stdin?.end()
  })
}
