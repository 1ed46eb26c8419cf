/** Helpers shared by the layer benchmarks: running commands, timing them, hashing files. */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'

export interface Timed {
  /** Wall seconds, measured here around the whole child (spawn to exit). */
  seconds: number
  /** Peak RSS in KiB from GNU time: the child's own, or for a shell pipeline its largest process. */
  maxRssKiB: number
  stdout: string
}

/**
 * Runs `cmd args` under `/usr/bin/time -f %M -o timeFile` and measures its wall time; rejects
 * on a non-zero exit with the child's stderr.
 */
export async function timedRun(cmd: string, args: string[], timeFile: string): Promise<Timed> {
  await rm(timeFile, { force: true })
  const start = performance.now()
  const stdout = await capture('/usr/bin/time', ['-f', '%M', '-o', timeFile, cmd, ...args])
  const seconds = (performance.now() - start) / 1000
  const rss = Number((await readFile(timeFile, 'utf8')).trim().split('\n').at(-1))
  return { seconds, maxRssKiB: rss, stdout }
}

/** Runs a command and resolves with its stdout; rejects on a non-zero exit with its stderr. */
export function capture(cmd: string, args: string[], options: { cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => err.push(c))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (code !== 0) {
        const tail = Buffer.concat(err).toString().trim().split('\n').slice(-20).join('\n')
        reject(new Error(`${cmd} ${args.join(' ')}: exited ${code ?? signal}\n${tail}`))
      } else resolve(Buffer.concat(out).toString())
    })
  })
}

/** `bash -c SCRIPT` with `set -o pipefail`, so a failing curl is not hidden by tar. */
export function sh(script: string): Promise<string> {
  return capture('bash', ['-o', 'pipefail', '-c', script])
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer)
  return `sha256:${hash.digest('hex')}`
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** Quotes a string for bash. */
export function q(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`
}

/** A small seeded PRNG (mulberry32): the generated data's shape is the same on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
