import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { main } from '../../src/cli/main.js'
import { REPO_ROOT } from '../rig/paths.js'

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs the CLI in this process (fast; same code path as the bin). */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const out: Buffer[] = []
  const err: Buffer[] = []
  stdout.on('data', (c: Buffer) => out.push(c))
  stderr.on('data', (c: Buffer) => err.push(c))
  const code = await main(args, { stdout, stderr, env, signal: new AbortController().signal })
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }
}

/** Runs the CLI as its own process, as a user would (through tsx, so no build is needed). */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), ...args], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => err.push(c))
    child.on('error', reject)
    child.on('close', (code) =>
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    )
  })
}
