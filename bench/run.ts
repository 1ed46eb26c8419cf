/**
 * `npm run bench`: measured throughput, printed as tables with ratios against native tools run
 * on the same data in the same run. Not a test: nothing here passes or fails on speed.
 * Environment:
 *   BENCH_ONLY     blob | layers (default: both) | decrypt (only bench/decrypt.ts: encrypted vs plain)
 *   BENCH_ROUNDS   rounds per variant (default 5 for blob, 3 for layers)
 *   BENCH_BLOB_MIB blob size for the blob benchmark (default 512)
 *   BENCH_LAYERS   comma-separated layer ids (default all: random-gzip, mixed-gzip, mixed-zstd,
 *                  mixed-none, small-gzip)
 *   OCIPULL_RIG_PORT_BASE, OCIPULL_RIG_DIR: where the rig's registry runs (test/rig/README.md)
 */
import { loadavg } from 'node:os'
import { blobFetchBench } from './blob-fetch.js'
import { decryptBench, printDecryptBench } from './decrypt.js'
import { layerUnpackBench } from './layer-unpack.js'

const only = process.env['BENCH_ONLY']
if (only !== undefined && only !== 'blob' && only !== 'layers' && only !== 'decrypt') {
  throw new TypeError(`BENCH_ONLY must be blob, layers or decrypt, got ${only}`)
}
const roundsEnv = process.env['BENCH_ROUNDS']
const layerIds = process.env['BENCH_LAYERS']?.split(',').filter((s) => s !== '')
const num = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '–')
const started = performance.now()
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')
const loadBefore = load()

if (only === 'decrypt') {
  const rounds = Number(roundsEnv ?? 3)
  printDecryptBench(await decryptBench({ rounds, ...(layerIds ? { layers: layerIds } : {}) }), rounds)
}

if (only === undefined || only === 'blob') {
  const sizeMiB = Number(process.env['BENCH_BLOB_MIB'] ?? 512)
  const rounds = Number(roundsEnv ?? 5)
  const rows = await blobFetchBench({ sizeMiB, rounds })
  console.log(`| benchmark | MB/s | ratio | peak RSS MiB |`)
  console.log(`|---|---:|---:|---:|`)
  for (const r of rows)
    console.log(`| ${r.name} | ${num(r.mbPerS, 0)} | ${num(r.ratio, 2)} | ${num(r.peakRssMiB, 0)} |`)
  console.log(`\nmedian of ${rounds} rounds, order alternating; node ${process.version}\n`)
}

if (only === undefined || only === 'layers') {
  const rounds = Number(roundsEnv ?? 3)
  const { rows, problems } = await layerUnpackBench({ rounds, ...(layerIds ? { layers: layerIds } : {}) })
  const cell = (s: string) => s.replaceAll('|', '\\|')
  console.log(`| layer | tool | s | MB/s | vs native | peak RSS MiB |`)
  console.log(`|---|---|---:|---:|---:|---:|`)
  for (const r of rows) {
    console.log(
      `| ${cell(r.layer)} | ${cell(r.tool)} | ${num(r.seconds, 2)} | ${num(r.mbPerS, 0)} | ${num(r.vsNative, 2)} | ${num(r.peakRssMiB, 0)} |`,
    )
  }
  console.log(
    `\nmedian of ${rounds} rounds, order rotating; MB/s of uncompressed tar; vs native = native's time ÷ this row's ` +
      `(above 1: faster than native); peak RSS = max over rounds; node ${process.version}`,
  )
  for (const p of problems) console.log(`- problem: ${p}`)
}

console.log(
  `\nbench took ${((performance.now() - started) / 1000).toFixed(0)} s; load average before: ${loadBefore}, after: ${load()}`,
)
