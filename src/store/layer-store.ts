import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { type Digest, digestOf, isDigest, parseDigest, shortDigest } from '../digest.js'
import { OcipullError } from '../errors.js'
import { syncDir, writeFileAtomic } from '../fs/write-file-atomic.js'
import type { LayerChange } from '../unpack/layer-changes.js'

/** An unpacked layer in the store, as recorded in its `layer.json`. */
export interface LayerRecord {
  chainId: Digest
  diffId: Digest
  /** The ChainID of the layer below; absent for the bottom layer. */
  parent?: Digest
  /** The blob it was unpacked from (the same diff_id may come from several blobs). */
  digest: Digest
  mediaType: string
  size: number
  /**
   * How whiteouts are kept in `diff/`: 'overlay' as overlayfs wants them (0/0 char devices and
   * the trusted.overlay.opaque xattr: made when unpacking as root); 'record' only in `changes`.
   * Both are listed in `changes`.
   */
  format: 'overlay' | 'record'
  changes: LayerChange[]
  /** Bytes of the uncompressed tar, and archive members. */
  bytes: number
  entries: number
  created: string
}

/** A pulled image, as recorded in `images/<alg>-<hex>.json`: what a bundle is made from. */
export interface ImageRecord {
  /** The digest of the platform's image manifest (the record's key). */
  manifestDigest: Digest
  mediaType: string
  configDigest: Digest
  /** The index the reference named, when it named one. */
  indexDigest?: Digest
  /** The source the image was pulled from, e.g. `docker://registry:5000/app:1`. */
  source: string
  platform: string
  layers: { digest: Digest; mediaType: string; size: number; diffId: Digest; chainId: Digest }[]
  created: string
}

/** A layer being unpacked: `diff` is the directory to unpack into. */
export interface StagedLayer {
  dir: string
  diff: string
}

const MAX_RECORD = 64 << 20

/**
 * The content-addressed work directory:
 *
 *     layers/<alg>-<hex of the ChainID>/diff/        the layer's files
 *     layers/<alg>-<hex of the ChainID>/layer.json   its LayerRecord
 *     images/<alg>-<hex of the manifest digest>.json an ImageRecord
 *     blobs/<alg>/<hex>                              image configs
 *     staging/<pid>-<random>/                        layers being unpacked
 *
 * Layers are keyed by ChainID, since an unpacked layer's meaning depends on the layers below it,
 * and shared by every image with that chain. A layer is unpacked in `staging/` and renamed into
 * `layers/` complete with its layer.json only after every check has passed, so whatever is under
 * `layers/` is complete; a crashed run leaves at most a staging directory, which the next
 * `openLayerStore` removes (when its process is gone). Image records and configs are written
 * atomically (temp file + rename).
 *
 * Several pulls may share one store object; layers in use by a pull are leased (`lease`) so that
 * `gc()` keeps them until the pull has recorded its image. Separate processes on one store are
 * safe for pulls (renames are atomic; the loser of a race discards its copy) but `gc()` must not
 * run while another process pulls.
 */
export class LayerStore {
  readonly root: string
  private readonly leases = new Map<Digest, number>()

  private constructor(root: string) {
    this.root = root
  }

  /** Opens (creating it if needed) the store at `root`; removes what crashed runs left in staging. */
  static async open(root: string): Promise<LayerStore> {
    const store = new LayerStore(root)
    for (const sub of ['layers', 'images', 'blobs', 'staging']) {
      await mkdir(join(root, sub), { recursive: true, mode: 0o700 })
    }
    for (const name of await readdir(join(root, 'staging'))) {
      const pid = Number.parseInt(name, 10)
      if (pid === process.pid || (pid > 0 && isAlive(pid))) continue
      await rm(join(root, 'staging', name), { recursive: true, force: true })
    }
    return store
  }

  /** The directory holding a committed layer's files. */
  layerDir(chainId: Digest): string {
    return join(this.root, 'layers', key(chainId), 'diff')
  }

  /**
   * The record of a committed layer, or undefined when the store does not have it (a directory
   * without its layer.json counts as absent). ERR_STORE_CORRUPT for a record that does not parse
   * or names another layer.
   */
  async getLayer(chainId: Digest): Promise<LayerRecord | undefined> {
    const path = join(this.root, 'layers', key(chainId), 'layer.json')
    const record = await readRecord<LayerRecord>(path)
    if (record === undefined) return undefined
    if (record.chainId !== chainId || !Array.isArray(record.changes)) {
      throw new OcipullError(
        'ERR_STORE_CORRUPT',
        `layer store ${this.root}: ${path} does not describe ${chainId}`,
      )
    }
    return record
  }

  /** A fresh staging directory with an empty `diff/` to unpack a layer into. */
  async stageLayer(): Promise<StagedLayer> {
    const dir = join(this.root, 'staging', `${process.pid}-${randomBytes(8).toString('hex')}`)
    await mkdir(join(dir, 'diff'), { recursive: true, mode: 0o700 })
    return { dir, diff: join(dir, 'diff') }
  }

  /**
   * Writes layer.json into the staged layer and renames it into `layers/`. When another pull
   * committed the same ChainID first, its copy is kept and this one discarded. A directory there
   * without a readable record (damaged from outside: ocipull never leaves one) is replaced.
   */
  async commitLayer(staged: StagedLayer, record: LayerRecord): Promise<void> {
    await writeFileAtomic(join(staged.dir, 'layer.json'), Buffer.from(JSON.stringify(record)))
    const target = join(this.root, 'layers', key(record.chainId))
    for (let attempt = 0; ; attempt++) {
      try {
        await rename(staged.dir, target)
        break
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err
        const existing = await this.getLayer(record.chainId).catch(() => undefined)
        if (existing !== undefined || attempt > 0) {
          await this.discard(staged)
          return
        }
        await rm(target, { recursive: true, force: true })
      }
    }
    await syncDir(join(this.root, 'layers'))
  }

  /** Removes a staged layer (after a failure). */
  async discard(staged: StagedLayer): Promise<void> {
    await rm(staged.dir, { recursive: true, force: true })
  }

  /** Keeps `chainIds` from garbage collection until the returned function is called. */
  lease(chainIds: readonly Digest[]): () => void {
    for (const id of chainIds) this.leases.set(id, (this.leases.get(id) ?? 0) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      for (const id of chainIds) {
        const n = (this.leases.get(id) ?? 1) - 1
        if (n === 0) this.leases.delete(id)
        else this.leases.set(id, n)
      }
    }
  }

  /** A blob kept in the store (image configs), checked against its digest; undefined if absent or damaged. */
  async getBlob(digest: Digest): Promise<Uint8Array | undefined> {
    const { algorithm, hex } = parseDigest(digest)
    let bytes: Buffer
    try {
      bytes = await readFile(join(this.root, 'blobs', algorithm, hex))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    return digestOf(bytes, algorithm) === digest ? bytes : undefined
  }

  async putBlob(digest: Digest, bytes: Uint8Array): Promise<void> {
    const { algorithm, hex } = parseDigest(digest)
    if (digestOf(bytes, algorithm) !== digest) {
      throw new OcipullError('ERR_DIGEST_MISMATCH', `layer store ${this.root}: blob is not ${digest}`)
    }
    await mkdir(join(this.root, 'blobs', algorithm), { recursive: true, mode: 0o700 })
    await writeFileAtomic(join(this.root, 'blobs', algorithm, hex), bytes)
  }

  async putImage(record: ImageRecord): Promise<void> {
    await writeFileAtomic(
      join(this.root, 'images', `${key(record.manifestDigest)}.json`),
      Buffer.from(`${JSON.stringify(record, null, 2)}\n`),
    )
  }

  async getImage(manifestDigest: Digest): Promise<ImageRecord | undefined> {
    return readRecord<ImageRecord>(join(this.root, 'images', `${key(manifestDigest)}.json`))
  }

  /** Every image in the store, oldest first. */
  async listImages(): Promise<ImageRecord[]> {
    const out: ImageRecord[] = []
    for (const name of await readdir(join(this.root, 'images'))) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue
      const record = await readRecord<ImageRecord>(join(this.root, 'images', name))
      if (record !== undefined) out.push(record)
    }
    return out.sort((a, b) => a.created.localeCompare(b.created))
  }

  /** Forgets an image; its layers stay until `gc()`. ERR_IMAGE_NOT_FOUND if there is none. */
  async removeImage(manifestDigest: Digest): Promise<void> {
    const path = join(this.root, 'images', `${key(manifestDigest)}.json`)
    try {
      await rm(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      throw new OcipullError(
        'ERR_IMAGE_NOT_FOUND',
        `layer store ${this.root}: no image ${shortDigest(manifestDigest)}`,
      )
    }
  }

  /**
   * Removes the layers and configs no image record refers to, no running pull has leased and no
   * overlay mount of this machine uses (a bundle made by the overlay snapshotter keeps its layers
   * until it is unmounted). Returns what was removed.
   */
  async gc(): Promise<{ layers: Digest[]; blobs: Digest[] }> {
    const images = await this.listImages()
    const keepLayers = new Set<string>([...this.leases.keys()].map(key))
    for (const name of await mountedLayerNames()) keepLayers.add(name)
    const keepBlobs = new Set<string>()
    for (const image of images) {
      for (const layer of image.layers) keepLayers.add(key(layer.chainId))
      keepBlobs.add(image.configDigest)
    }
    const removed = { layers: [] as Digest[], blobs: [] as Digest[] }
    for (const name of await readdir(join(this.root, 'layers'))) {
      if (keepLayers.has(name)) continue
      await rm(join(this.root, 'layers', name), { recursive: true, force: true })
      removed.layers.push(name.replace('-', ':'))
    }
    for (const algorithm of await readdir(join(this.root, 'blobs'))) {
      for (const hex of await readdir(join(this.root, 'blobs', algorithm))) {
        const digest = `${algorithm}:${hex}`
        if (keepBlobs.has(digest) || !isDigest(digest)) continue
        await rm(join(this.root, 'blobs', algorithm, hex), { force: true })
        removed.blobs.push(digest)
      }
    }
    return removed
  }
}

/** `sha256:abc…` → `sha256-abc…`, a file name. */
function key(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest)
  return `${algorithm}-${hex}`
}

async function readRecord<T>(path: string): Promise<T | undefined> {
  let text: string
  try {
    const bytes = await readFile(path)
    if (bytes.length > MAX_RECORD) throw new OcipullError('ERR_STORE_CORRUPT', `${path}: too large`)
    text = bytes.toString('utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    return JSON.parse(text) as T
  } catch (err) {
    throw new OcipullError('ERR_STORE_CORRUPT', `${path}: not valid JSON`, { cause: err })
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The store layer directory names (`sha256-<hex>`) that overlay mounts use as lower layers, from
 * /proc/self/mountinfo (the overlay snapshotter names them `<name>/diff`, relative to the store's
 * `layers/`). Names are content addresses, so a match in another store only keeps a layer longer.
 */
async function mountedLayerNames(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '')
  const names: string[] = []
  for (const line of text.split('\n')) {
    const [, after] = line.split(' - ')
    if (after === undefined || !after.startsWith('overlay ')) continue
    const lower = /(?:^|,)lowerdir=([^,]*)/.exec(after.split(' ')[2] ?? '')?.[1]
    for (const dir of lower?.split(':') ?? []) {
      const m = /(?:^|\/)((?:sha256|sha512)-[0-9a-f]+)\/diff$/.exec(dir)
      if (m?.[1] !== undefined) names.push(m[1])
    }
  }
  return names
}
