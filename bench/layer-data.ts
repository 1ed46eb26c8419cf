/**
 * The layers of the layer-throughput benchmark: generated once into .cache/bench/layers (tars,
 * compressed blobs and a JSON note of their digests), then pushed as single-layer OCI images
 * (config + manifest) with the distribution API's monolithic upload. Reruns find everything in
 * place and only check it.
 *
 *   random  one file of 1 GiB random bytes (incompressible)
 *   mixed   a ~300 MB slice of /usr (include/, share/man, lib/python3*, …), as found on this host
 *   small   50,000 files under 64 KiB (log-uniform sizes, 2/3 text-like, 1/3 random) in 250 dirs
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { request } from 'undici'
import { REPO_ROOT, type RigRegistry } from '../test/rig/index.js'
import { capture, prng, q, sh, sha256File } from './util.js'

export type Dataset = 'random' | 'mixed' | 'small'
export type Compression = 'gzip' | 'zstd' | 'none'

export interface LayerSpec {
  id: string
  dataset: Dataset
  compression: Compression
}

/** Every layer the benchmark knows, in the order it reports them. */
export const LAYERS: readonly LayerSpec[] = [
  { id: 'random-gzip', dataset: 'random', compression: 'gzip' },
  { id: 'mixed-gzip', dataset: 'mixed', compression: 'gzip' },
  { id: 'mixed-zstd', dataset: 'mixed', compression: 'zstd' },
  { id: 'mixed-none', dataset: 'mixed', compression: 'none' },
  { id: 'small-gzip', dataset: 'small', compression: 'gzip' },
]

export interface BenchImage extends LayerSpec {
  /** e.g. 127.0.0.1:5401/bench/mixed-gzip:latest */
  ref: string
  /** The layer blob's URL in the registry. */
  blobUrl: string
  /** Bytes of the uncompressed tar (what MB/s counts). */
  tarBytes: number
  /** Bytes of the blob as stored (compressed). */
  blobBytes: number
  /** Regular files in the layer. */
  files: number
  /** A short description for the table, e.g. "mixed /usr slice". */
  label: string
}

/** Bump when the generated data changes: older caches are then rebuilt. */
const GEN_VERSION = 2
const CACHE = join(REPO_ROOT, '.cache', 'bench', 'layers')
const GEN_DIR = '/dev/shm/ocipull-bench-gen'
/** Fixed owner and mtime for the generated datasets (the /usr slice keeps its own). */
const NORMALIZE = '--owner=0 --group=0 --numeric-owner --mtime=@1700000000'
const MIXED_TARGET = 300e6
const MIXED_CANDIDATES = [
  'usr/include',
  'usr/share/man',
  'usr/lib/python3.11',
  'usr/lib/python3',
  'usr/share/zoneinfo',
  'usr/share/perl',
  'usr/lib/gcc',
  'usr/share/doc',
  'usr/share/locale',
  'usr/share/i18n',
]
const SMALL_FILES = 50_000
const SMALL_DIRS = 250
const MiB = 1024 * 1024

const MEDIA_TYPES: Record<Compression, string> = {
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  none: 'application/vnd.oci.image.layer.v1.tar',
}

interface TarInfo {
  version: number
  bytes: number
  diffId: string
  files: number
  dirs: string[]
}

interface BlobInfo {
  version: number
  bytes: number
  digest: string
}

/** Builds (or finds) the layers and pushes their images (or finds them pushed). */
export async function prepareLayers(
  reg: RigRegistry,
  specs: readonly LayerSpec[],
  log: (line: string) => void,
): Promise<BenchImage[]> {
  await mkdir(CACHE, { recursive: true })
  const images: BenchImage[] = []
  for (const spec of specs) {
    const tar = await ensureTar(spec.dataset, log)
    const blob = await ensureBlob(spec, tar, log)
    const ref = await pushImage(reg, spec, tar, blob, log)
    images.push({
      ...spec,
      ref,
      blobUrl: `${reg.url}/v2/bench/${spec.id}/blobs/${blob.digest}`,
      tarBytes: tar.bytes,
      blobBytes: blob.bytes,
      files: tar.files,
      label: datasetLabel(spec.dataset),
    })
  }
  return images
}

function datasetLabel(d: Dataset): string {
  if (d === 'random') return '1 GiB random file'
  if (d === 'mixed') return 'mixed /usr slice'
  return 'small files'
}

const tarFile = (d: Dataset) => join(CACHE, `${d}.tar`)
const blobFile = (spec: LayerSpec) =>
  spec.compression === 'none'
    ? tarFile(spec.dataset)
    : join(CACHE, `${spec.dataset}.tar.${spec.compression === 'gzip' ? 'gz' : 'zst'}`)

/** Reads a JSON note and checks that `file` still has the size it records. */
async function cached<T extends { version: number; bytes: number }>(
  note: string,
  file: string,
): Promise<T | undefined> {
  if (!existsSync(note)) return undefined
  const info = JSON.parse(await readFile(note, 'utf8')) as T
  if (info.version !== GEN_VERSION) return undefined
  const st = await stat(file).catch(() => undefined)
  return st?.size === info.bytes ? info : undefined
}

async function ensureTar(dataset: Dataset, log: (line: string) => void): Promise<TarInfo> {
  const file = tarFile(dataset)
  const note = `${file}.json`
  const found = await cached<TarInfo>(note, file)
  if (found) return found
  log(`generating ${dataset}.tar …`)
  await rm(GEN_DIR, { recursive: true, force: true })
  await mkdir(GEN_DIR, { recursive: true })
  let dirs: string[]
  try {
    if (dataset === 'random') {
      await writeRandomFile(join(GEN_DIR, 'random.bin'), 1024)
      await sh(`tar -C ${q(GEN_DIR)} ${NORMALIZE} -cf ${q(file)} random.bin`)
      dirs = ['random.bin']
    } else if (dataset === 'small') {
      writeSmallFiles(join(GEN_DIR, 'data'))
      await sh(`tar -C ${q(GEN_DIR)} --sort=name ${NORMALIZE} -cf ${q(file)} data`)
      dirs = ['data']
    } else {
      // The parent dirs are members too, as in a real layer (they carry their own mode and mtime),
      // each just before its contents: GNU tar sets a directory's mtime once the members after it
      // leave it, so a parent listed apart from its children would get the extraction time.
      dirs = await pickUsrSlice()
      const parents = new Set(parentsOf(dirs))
      const members = [...parents, ...dirs]
        .sort()
        .map((m) => `${parents.has(m) ? '--no-recursion' : '--recursion'} ${q(m)}`)
      await sh(`tar -C / --sort=name -cf ${q(file)} ${members.join(' ')}`)
    }
  } finally {
    await rm(GEN_DIR, { recursive: true, force: true })
  }
  const listing = await capture('tar', ['-tvf', file])
  const files = listing.split('\n').filter((l) => l.startsWith('-')).length
  const info: TarInfo = {
    version: GEN_VERSION,
    bytes: (await stat(file)).size,
    diffId: await sha256File(file),
    files,
    dirs,
  }
  await writeFile(note, `${JSON.stringify(info, null, 2)}\n`)
  return info
}

async function ensureBlob(spec: LayerSpec, tar: TarInfo, log: (line: string) => void): Promise<BlobInfo> {
  if (spec.compression === 'none') return { version: GEN_VERSION, bytes: tar.bytes, digest: tar.diffId }
  const file = blobFile(spec)
  const note = `${file}.json`
  const found = await cached<BlobInfo & { diffId: string }>(note, file)
  if (found && found.diffId === tar.diffId) return found
  log(`compressing ${spec.dataset}.tar with ${spec.compression} …`)
  const src = q(tarFile(spec.dataset))
  await sh(
    spec.compression === 'gzip'
      ? `gzip -6 -n -c ${src} > ${q(file)}`
      : `zstd -3 -T0 -q -c ${src} > ${q(file)}`,
  )
  const info = { version: GEN_VERSION, bytes: (await stat(file)).size, digest: await sha256File(file) }
  await writeFile(note, `${JSON.stringify({ ...info, diffId: tar.diffId }, null, 2)}\n`)
  return info
}

async function writeRandomFile(file: string, sizeMiB: number): Promise<void> {
  const fh = await open(file, 'w')
  try {
    for (let i = 0; i < sizeMiB; i++) await fh.write(randomBytes(MiB))
  } finally {
    await fh.close()
  }
}

/**
 * 50k files in 250 dirs; sizes log-uniform in [0, 64 KiB), so most are a few KiB (mean ≈ 6 KB),
 * like the small files of a real rootfs. Two thirds are slices of a text-like pool (words from a
 * made-up vocabulary: gzip gets ~3:1), one third random bytes.
 */
function writeSmallFiles(root: string): void {
  const rnd = prng(3)
  const letters = 'etaoinshrdlcumwfgypbvkjxqz'
  const vocabulary = Array.from({ length: 4000 }, () => {
    const len = 2 + Math.floor(rnd() * rnd() * 12)
    let w = ''
    for (let i = 0; i < len; i++) w += letters[Math.floor(rnd() * rnd() * letters.length)]
    return w
  })
  const parts: string[] = []
  let poolLength = 0
  while (poolLength < 4 * MiB) {
    const words = 3 + Math.floor(rnd() * 12)
    let line = ''
    for (let i = 0; i < words; i++) line += `${i ? ' ' : ''}${vocabulary[Math.floor(rnd() * rnd() * 4000)]}`
    parts.push(line)
    poolLength += line.length + 1
  }
  const pool = Buffer.from(`${parts.join('\n')}\n`)
  for (let d = 0; d < SMALL_DIRS; d++)
    mkdirSync(join(root, `d${String(d).padStart(3, '0')}`), { recursive: true })
  for (let f = 0; f < SMALL_FILES; f++) {
    const size = Math.floor(Math.exp(rnd() * Math.log(65536))) - 1
    const text = rnd() < 2 / 3
    const off = Math.floor(rnd() * (pool.length - size))
    const name = join(root, `d${String(f % SMALL_DIRS).padStart(3, '0')}`, `f${String(f).padStart(5, '0')}`)
    if (text) writeFileSync(`${name}.txt`, pool.subarray(off, off + size))
    else writeFileSync(`${name}.bin`, randomBytes(size))
  }
}

/**
 * Directories of /usr, in the order of MIXED_CANDIDATES, while the tar would stay under about
 * 300 MB (apparent size plus ~768 bytes of header and padding per entry).
 */
async function pickUsrSlice(): Promise<string[]> {
  const picked: string[] = []
  let total = 0
  for (const dir of MIXED_CANDIDATES) {
    if (total >= MIXED_TARGET) break
    if (!existsSync(`/${dir}`)) continue
    const bytes = Number((await capture('du', ['-sb', `/${dir}`])).split('\t')[0])
    const entries = (await capture('find', [`/${dir}`, '-printf', '.'])).length
    picked.push(dir)
    total += bytes + 768 * entries
  }
  if (total < MIXED_TARGET * 0.8) throw new Error(`only ${total} bytes of /usr found for the mixed layer`)
  return picked
}

/** The parents of `dirs` (usr, usr/lib, …), each once, parents first: archived without their contents. */
function parentsOf(dirs: string[]): string[] {
  const parents = new Set<string>()
  for (const dir of dirs) {
    const parts = dir.split('/')
    for (let i = 1; i < parts.length; i++) parents.add(parts.slice(0, i).join('/'))
  }
  return [...parents].sort()
}

/** Pushes blob, config and manifest unless the manifest is already there with the same digest. */
async function pushImage(
  reg: RigRegistry,
  spec: LayerSpec,
  tar: TarInfo,
  blob: BlobInfo,
  log: (line: string) => void,
): Promise<string> {
  const repo = `bench/${spec.id}`
  const arch = process.arch === 'x64' ? 'amd64' : process.arch
  const config = Buffer.from(
    JSON.stringify({
      architecture: arch,
      os: 'linux',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: [tar.diffId] },
    }),
  )
  const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers: [{ mediaType: MEDIA_TYPES[spec.compression], digest: blob.digest, size: blob.bytes }],
    }),
  )
  const manifestDigest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`
  const head = await request(`${reg.url}/v2/${repo}/manifests/latest`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  })
  await head.body.dump()
  if (head.statusCode === 200 && head.headers['docker-content-digest'] === manifestDigest) {
    return reg.ref(`${repo}:latest`)
  }
  log(`pushing ${repo} (${(blob.bytes / 1e6).toFixed(0)} MB) …`)
  await uploadBlob(reg, repo, blob.digest, blob.bytes, () =>
    createReadStream(blobFile(spec), { highWaterMark: MiB }),
  )
  await uploadBlob(reg, repo, configDigest, config.length, () => config)
  const put = await request(`${reg.url}/v2/${repo}/manifests/latest`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  })
  await put.body.dump()
  if (put.statusCode !== 201) throw new Error(`manifest upload for ${repo} failed: ${put.statusCode}`)
  return reg.ref(`${repo}:latest`)
}

/** Monolithic upload (POST, then one PUT with the digest), skipped when the repo has the blob. */
async function uploadBlob(
  reg: RigRegistry,
  repo: string,
  digest: string,
  size: number,
  body: () => Buffer | Readable,
): Promise<void> {
  const head = await request(`${reg.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })
  await head.body.dump()
  if (head.statusCode === 200) return
  const start = await request(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  await start.body.dump()
  if (start.statusCode !== 202) throw new Error(`blob upload to ${repo} refused: ${start.statusCode}`)
  const location = new URL(String(start.headers['location']), reg.url)
  location.searchParams.set('digest', digest)
  const put = await request(location, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    body: body(),
  })
  await put.body.dump()
  if (put.statusCode !== 201) throw new Error(`blob upload to ${repo} failed: ${put.statusCode}`)
}
