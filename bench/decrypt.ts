/**
 * Decryption cost (issue 5: at most ~15 % over the same unencrypted layer). For each layer, the
 * same image twice in OCI layouts on disk (page-cached): as is, and encrypted by skopeo (Go
 * ocicrypt, `--encryption-key jwe:RSA`). Each round unpacks, in this process, with
 * `unpackImage` into tmpfs (/dev/shm, removed after each run), the variants' order rotating:
 *
 *   plain       the unencrypted layout
 *   auto        encrypted, src/'s default: big compressed layers start on the main thread and
 *               move to a thread of their own when they do not inflate (adaptive-decryption.ts)
 *   thread      encrypted; blob digest, HMAC, CTR and the plaintext hash on a worker thread of
 *               the layer's own (decrypt-thread.ts; `engine: 'thread'`)
 *   main        encrypted; all of it on the main thread (aes-ctr-hmac.ts; `engine: 'calling-thread'`)
 *   threadpool  encrypted; `main` with AES-256-CTR on libuv's pool (@ronomon/crypto-async,
 *               bench/decrypt-threadpool.ts)
 *
 * All variants check the blob digest and the diff_id; the encrypted ones also the HMAC over the
 * ciphertext and the private options' digest of the plaintext. A second table times the
 * decryption stages alone (blob from the page cache → HMAC + CTR + plaintext sha256 → discard).
 *
 * BENCH_ENGINES=auto,thread,main limits the encrypted variants (default: all four).
 *
 * Layers: the cached tars and blobs of bench/layer-data.ts (.cache/bench/layers, made by
 * `BENCH_ONLY=layers npm run bench`) when present; otherwise a /usr slice tarred and gzipped here.
 */
import { createHash } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { localDecryption } from '../src/decrypt/aes-ctr-hmac.js'
import { createLayerDecryptor, type LayerDecryptor } from '../src/decrypt/layer-decryptor.js'
import { loadDecryptionKeys } from '../src/decrypt/private-keys.js'
import type { Descriptor, ImageManifest } from '../src/manifest.js'
import { ociLayoutSource } from '../src/sources/oci-layout-source.js'
import { unpackImage } from '../src/unpack-image.js'
import { REPO_ROOT } from '../test/rig/index.js'
import { ThreadpoolDecipherStream } from './decrypt-threadpool.js'
import { capture, median, sh, sha256File } from './util.js'

const LAYER_CACHE = join(REPO_ROOT, '.cache', 'bench', 'layers')
const CACHE = join(REPO_ROOT, '.cache', 'bench', 'decrypt')
const WORK = '/dev/shm/ocipull-bench-decrypt'

export type Variant = 'plain' | 'auto' | 'thread' | 'main' | 'threadpool'
const VARIANTS: readonly Variant[] = ['plain', 'auto', 'thread', 'main', 'threadpool']
type Engine = Exclude<Variant, 'plain'>

export interface DecryptRow {
  layer: string
  variant: Variant
  seconds: number
  mbPerS: number
  /** (this variant's median ÷ plain's median) − 1; NaN for plain. */
  overhead: number
}

export interface StageRow {
  layer: string
  engine: Engine
  mbPerS: number
}

interface BenchLayer {
  id: string
  label: string
  tarBytes: number
  blobBytes: number
  plain: string
  encrypted: string
}

/** Known layers: the file names in .cache/bench/layers. */
const KNOWN: Record<string, { tar: string; blob: string; label: string; mediaType: string }> = {
  'mixed-gzip': {
    tar: 'mixed.tar',
    blob: 'mixed.tar.gz',
    label: 'mixed /usr slice, gzip',
    mediaType: 'tar+gzip',
  },
  'mixed-zstd': {
    tar: 'mixed.tar',
    blob: 'mixed.tar.zst',
    label: 'mixed /usr slice, zstd',
    mediaType: 'tar+zstd',
  },
  'small-gzip': {
    tar: 'small.tar',
    blob: 'small.tar.gz',
    label: '50,000 small files, gzip',
    mediaType: 'tar+gzip',
  },
  'random-gzip': {
    tar: 'random.tar',
    blob: 'random.tar.gz',
    label: '1 GiB random file, gzip',
    mediaType: 'tar+gzip',
  },
}

export async function decryptBench(options: {
  rounds: number
  layers?: string[]
  log?: (line: string) => void
}): Promise<{ rows: DecryptRow[]; stages: StageRow[] }> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  await mkdir(CACHE, { recursive: true })
  const keyFile = join(CACHE, 'rsa.pem')
  if (!existsSync(keyFile)) {
    await capture('openssl', [
      'genpkey',
      '-algorithm',
      'RSA',
      '-pkeyopt',
      'rsa_keygen_bits:2048',
      '-out',
      keyFile,
    ])
    await capture('openssl', ['pkey', '-in', keyFile, '-pubout', '-out', `${keyFile}.pub`])
  }
  const ids = options.layers ?? ['mixed-gzip', 'small-gzip', 'random-gzip']
  const layers: BenchLayer[] = []
  for (const id of ids) layers.push(await prepare(id, `${keyFile}.pub`, log))
  const keys = await loadDecryptionKeys({ path: keyFile })
  const main = createLayerDecryptor({ keys, engine: 'calling-thread' })
  const decryptors: Record<Variant, LayerDecryptor | undefined> = {
    plain: undefined,
    auto: createLayerDecryptor({ keys }),
    thread: createLayerDecryptor({ keys, engine: 'thread' }),
    main,
    threadpool: threadpoolDecryptor(main),
  }
  await rm(WORK, { recursive: true, force: true })
  await mkdir(WORK, { recursive: true })
  const rows: DecryptRow[] = []
  const stages: StageRow[] = []
  const variants = VARIANTS.filter(
    (v) => v === 'plain' || (process.env['BENCH_ENGINES']?.split(',').includes(v) ?? true),
  )
  try {
    for (const layer of layers) {
      const times = new Map<Variant, number[]>()
      for (let round = 0; round < options.rounds; round++) {
        for (let i = 0; i < variants.length; i++) {
          const variant = variants[(i + round) % variants.length] as Variant
          const bundle = join(WORK, variant)
          const layout = variant === 'plain' ? layer.plain : layer.encrypted
          const decryptor = decryptors[variant]
          const source = ociLayoutSource({ path: layout, tag: 'latest' })
          const started = performance.now()
          try {
            await unpackImage(source, { bundle, ...(decryptor ? { decryptor } : {}) })
          } finally {
            await source.close()
          }
          const seconds = (performance.now() - started) / 1000
          await rm(bundle, { recursive: true, force: true })
          log(`round ${round + 1}/${options.rounds} ${layer.id}/${variant}: ${seconds.toFixed(2)} s`)
          times.set(variant, [...(times.get(variant) ?? []), seconds])
        }
      }
      const base = median(times.get('plain') ?? [])
      for (const variant of variants) {
        const seconds = median(times.get(variant) ?? [])
        rows.push({
          layer: `${layer.label} (${(layer.tarBytes / 1e6).toFixed(0)} → ${(layer.blobBytes / 1e6).toFixed(0)} MB)`,
          variant,
          seconds,
          mbPerS: layer.tarBytes / 1e6 / seconds,
          overhead: variant === 'plain' ? Number.NaN : seconds / base - 1,
        })
      }
      for (const engine of variants.filter((v): v is Engine => v !== 'plain')) {
        const t: number[] = []
        for (let round = 0; round < options.rounds; round++)
          t.push(await stageSeconds(layer, decryptors[engine] as LayerDecryptor))
        stages.push({ layer: layer.label, engine, mbPerS: layer.blobBytes / 1e6 / median(t) })
      }
    }
  } finally {
    await rm(WORK, { recursive: true, force: true })
  }
  return { rows, stages }
}

/** `main`, with the CTR of its decryption stage on the thread pool. */
function threadpoolDecryptor(main: LayerDecryptor): LayerDecryptor {
  return {
    layerKey: (d, o) => main.layerKey(d, o),
    async open(descriptor, o) {
      const key = await main.layerKey(descriptor, o)
      const cipher = {
        symkey: key.privopts.symkey,
        nonce: key.nonce,
        hmac: key.pubopts.hmac,
        digest: key.privopts.digest,
      }
      return {
        authenticate: localDecryption(cipher, o.what).authenticate,
        decipher: new ThreadpoolDecipherStream({ ...cipher, what: o.what }),
        close() {},
      }
    },
  }
}

/**
 * The decryption stages alone over the encrypted blob: seconds. The blob is read straight from
 * the file, so `thread` hashes it too (there is no source to hand `blobHash` to) and `main` and
 * `threadpool` do not: only `thread` checks the blob's digest here.
 */
async function stageSeconds(layer: BenchLayer, decryptor: LayerDecryptor): Promise<number> {
  const descriptor = (await manifestOf(layer.encrypted)).layers[0] as Descriptor
  const started = performance.now()
  const d = await decryptor.open(descriptor, { what: layer.id })
  const blob = createReadStream(join(layer.encrypted, 'blobs', 'sha256', descriptor.digest.slice(7)), {
    highWaterMark: 1 << 20,
  })
  const sink = new Writable({ write: (_c, _e, cb) => cb() })
  try {
    await pipeline(Readable.from(d.authenticate(blob)), d.decipher, sink)
  } finally {
    d.close()
  }
  return (performance.now() - started) / 1000
}

async function manifestOf(layout: string): Promise<ImageManifest> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] }
  const digest = (index.manifests[0] as Descriptor).digest
  return JSON.parse(await readFile(join(layout, 'blobs', 'sha256', digest.slice(7)), 'utf8')) as ImageManifest
}

/** The plain and encrypted layouts of one layer, built once into .cache/bench/decrypt. */
async function prepare(id: string, publicKey: string, log: (line: string) => void): Promise<BenchLayer> {
  const known = KNOWN[id]
  if (known === undefined) throw new Error(`unknown layer ${id}; known: ${Object.keys(KNOWN).join(', ')}`)
  let tar = join(LAYER_CACHE, known.tar)
  let blob = join(LAYER_CACHE, known.blob)
  if (!existsSync(blob) || !existsSync(tar)) {
    if (id !== 'mixed-gzip') throw new Error(`${blob} is missing: run BENCH_ONLY=layers npm run bench first`)
    tar = join(CACHE, 'usr-slice.tar')
    blob = `${tar}.gz`
    if (!existsSync(blob)) {
      log(`making ${blob}`)
      await sh(
        `tar -C / --sort=name -cf ${tar} usr/include usr/share/zoneinfo usr/lib/python3* && gzip -k -6 ${tar}`,
      )
    }
  }
  const dir = join(CACHE, id)
  const plain = join(dir, 'plain')
  const encrypted = join(dir, 'encrypted')
  const blobDigest = await sha256File(blob)
  const stamp = join(dir, 'stamp')
  const tarBytes = (await stat(tar)).size
  const blobBytes = (await stat(blob)).size
  if (existsSync(stamp) && (await readFile(stamp, 'utf8')) === blobDigest) {
    return { id, label: known.label, tarBytes, blobBytes, plain, encrypted }
  }
  log(`preparing ${id}: plain and skopeo-encrypted layouts in ${dir}`)
  await rm(dir, { recursive: true, force: true })
  const blobs = join(plain, 'blobs', 'sha256')
  await mkdir(blobs, { recursive: true })
  await link(blob, join(blobs, blobDigest.slice(7))).catch(async () =>
    sh(`cp ${blob} ${join(blobs, blobDigest.slice(7))}`),
  )
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: [await sha256File(tar)] },
    }),
  )
  const put = async (bytes: Buffer) => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
    await writeFile(join(blobs, digest.slice(7)), bytes)
    return { digest, size: bytes.length }
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(config)) },
      layers: [
        {
          mediaType: `application/vnd.oci.image.layer.v1.${known.mediaType}`,
          digest: blobDigest,
          size: blobBytes,
        },
      ],
    }),
  )
  const m = await put(manifest)
  await writeFile(join(plain, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(
    join(plain, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...m,
          annotations: { 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    }),
  )
  await capture('skopeo', [
    '--insecure-policy',
    'copy',
    '--quiet',
    '--encryption-key',
    `jwe:${publicKey}`,
    `oci:${plain}:latest`,
    `oci:${encrypted}:latest`,
  ])
  await writeFile(stamp, blobDigest)
  return { id, label: known.label, tarBytes, blobBytes, plain, encrypted }
}

/** Prints the two tables as markdown, as bench/run.ts does for the others. */
export function printDecryptBench(result: { rows: DecryptRow[]; stages: StageRow[] }, rounds: number): void {
  const num = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '–')
  console.log('| layer | variant | s | MB/s | over plain |')
  console.log('|---|---|---:|---:|---:|')
  for (const r of result.rows) {
    const over = Number.isFinite(r.overhead)
      ? `${r.overhead >= 0 ? '+' : ''}${(r.overhead * 100).toFixed(1)} %`
      : '–'
    console.log(`| ${r.layer} | ${r.variant} | ${num(r.seconds, 2)} | ${num(r.mbPerS, 0)} | ${over} |`)
  }
  console.log('\n| layer | decryption stages alone | MB/s of ciphertext |')
  console.log('|---|---|---:|')
  for (const s of result.stages) console.log(`| ${s.layer} | ${s.engine} | ${num(s.mbPerS, 0)} |`)
  console.log(
    `\nmedian of ${rounds} rounds, order rotating, in one process (start-up not included); MB/s of ` +
      `uncompressed tar; node ${process.version}\n`,
  )
}
