// One measured blob download with ocipull's registry client (the built package in dist/), in its
// own process so that its peak RSS is its own. Prints one JSON line: { bytes, ms, maxRssKiB }.
// Usage: node bench/fetch-blob-child.mjs HOST REPO DIGEST SIZE
import { parseReference, RegistryClient } from '../dist/index.js'

const [host, repository, digest, size] = process.argv.slice(2)
if (!host || !repository || !digest || !size) throw new TypeError('usage: HOST REPO DIGEST SIZE')
const client = new RegistryClient({ insecureRegistries: [host] })
const ref = parseReference(`${host}/${repository}:latest`)
const start = performance.now()
const stream = await client.getBlob(ref, {
  mediaType: 'application/octet-stream',
  digest,
  size: Number(size),
})
let bytes = 0
for await (const chunk of stream) bytes += chunk.length
const ms = performance.now() - start
await client.close()
process.stdout.write(`${JSON.stringify({ bytes, ms, maxRssKiB: process.resourceUsage().maxRSS })}\n`)
