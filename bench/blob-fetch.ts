/**
 * Blob download throughput from the local docker-registry: ocipull's verified blob stream
 * (undici + size cap + sha256) against `curl | sha256sum` on the same blob, in the same run.
 * Reports MB/s (10^6 bytes), the ratio to curl, and peak RSS.
 */
import { randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { request } from 'undici'
import { REPO_ROOT, type RigRegistry, startRegistry } from '../test/rig/index.js'
import { capture, median, sha256File, timedRun } from './util.js'

export interface BenchRow {
  name: string
  mbPerS: number
  ratio: number
  peakRssMiB: number
}

const MiB = 1024 * 1024

export async function blobFetchBench(options: { sizeMiB: number; rounds: number }): Promise<BenchRow[]> {
  const reg = await startRegistry('http', { push: false })
  try {
    const { digest, size } = await uploadRandomBlob(reg, options.sizeMiB)
    const url = `${reg.url}/v2/bench/blobs/${digest}`
    const idle = Number(
      (await capture(process.execPath, ['-e', 'console.log(process.resourceUsage().maxRSS)'])).trim(),
    )
    const timeFile = join(REPO_ROOT, '.cache', 'bench', 'time.txt')
    const curl: number[][] = []
    const ours: number[][] = []
    for (let round = 0; round < options.rounds; round++) {
      // Alternate the order so neither side always runs on a warm cache.
      const order = round % 2 === 0 ? ['curl', 'ocipull'] : ['ocipull', 'curl']
      for (const which of order) {
        if (which === 'curl') {
          const t = await timedRun(
            'bash',
            ['-o', 'pipefail', '-c', `curl -sf ${url} | sha256sum >/dev/null`],
            timeFile,
          )
          curl.push([t.seconds, t.maxRssKiB])
        } else {
          const out = await capture(process.execPath, [
            join(REPO_ROOT, 'bench/fetch-blob-child.mjs'),
            reg.host,
            'bench',
            digest,
            String(size),
          ])
          const r = JSON.parse(out) as { bytes: number; ms: number; maxRssKiB: number }
          if (r.bytes !== size) throw new Error(`ocipull read ${r.bytes} of ${size} bytes`)
          ours.push([r.ms / 1000, r.maxRssKiB])
        }
      }
    }
    const curlS = median(curl.map((c) => c[0] ?? 0))
    const oursS = median(ours.map((c) => c[0] ?? 0))
    return [
      {
        name: `curl | sha256sum (${options.sizeMiB} MiB)`,
        mbPerS: size / 1e6 / curlS,
        ratio: 1,
        peakRssMiB: Math.max(...curl.map((c) => c[1] ?? 0)) / 1024,
      },
      {
        name: 'node (idle process, for scale)',
        mbPerS: Number.NaN,
        ratio: Number.NaN,
        peakRssMiB: idle / 1024,
      },
      {
        name: `ocipull getBlob + verify (${options.sizeMiB} MiB)`,
        mbPerS: size / 1e6 / oursS,
        ratio: curlS / oursS,
        peakRssMiB: Math.max(...ours.map((c) => c[1] ?? 0)) / 1024,
      },
    ]
  } finally {
    await reg.stop()
  }
}

/** Pushes a blob of random bytes with the distribution API's monolithic upload (once; cached by size). */
async function uploadRandomBlob(
  reg: RigRegistry,
  sizeMiB: number,
): Promise<{ digest: string; size: number }> {
  const dir = join(REPO_ROOT, '.cache', 'bench')
  await mkdir(dir, { recursive: true })
  const file = join(dir, `random-${sizeMiB}MiB.bin`)
  const size = sizeMiB * MiB
  if ((await stat(file).catch(() => undefined))?.size !== size) {
    const out = createWriteStream(file)
    for (let i = 0; i < sizeMiB; i++)
      if (!out.write(randomBytes(MiB))) await new Promise<void>((r) => out.once('drain', () => r()))
    await new Promise<void>((resolve, reject) =>
      out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    )
  }
  const digest = await sha256File(file)
  const head = await request(`${reg.url}/v2/bench/blobs/${digest}`, { method: 'HEAD' })
  await head.body.dump()
  if (head.statusCode === 200) return { digest, size }
  const start = await request(`${reg.url}/v2/bench/blobs/uploads/`, { method: 'POST' })
  await start.body.dump()
  const location = new URL(String(start.headers['location']), reg.url)
  location.searchParams.set('digest', digest)
  const put = await request(location, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    body: createReadStream(file, { highWaterMark: MiB }),
  })
  await put.body.dump()
  if (put.statusCode !== 201) throw new Error(`blob upload failed: ${put.statusCode}`)
  return { digest, size }
}
