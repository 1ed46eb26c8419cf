/**
 * `npm run bench`: measured throughput, printed as a table with ratios against native tools run
 * on the same data in the same run. Not a test: nothing here passes or fails on speed.
 * Environment: BENCH_BLOB_MIB (default 512), BENCH_ROUNDS (default 5).
 */
import { blobFetchBench } from './blob-fetch.js'

const sizeMiB = Number(process.env['BENCH_BLOB_MIB'] ?? 512)
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 5)

const rows = await blobFetchBench({ sizeMiB, rounds })
console.log(`| benchmark | MB/s | ratio | peak RSS MiB |`)
console.log(`|---|---:|---:|---:|`)
const num = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '–')
for (const r of rows)
  console.log(`| ${r.name} | ${num(r.mbPerS, 0)} | ${num(r.ratio, 2)} | ${num(r.peakRssMiB, 0)} |`)
console.log(`\nmedian of ${rounds} rounds, order alternating; node ${process.version}`)
