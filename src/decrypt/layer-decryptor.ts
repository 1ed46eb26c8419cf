import type { Duplex } from 'node:stream'
import { type Digest, shortDigest } from '../digest.js'
import { abortError, OcipullError } from '../errors.js'
import type { KeySource } from '../keys/key-source.js'
import type { Descriptor } from '../manifest.js'
import type { StreamHash } from '../verify-stream.js'
import { adaptiveDecryption } from './adaptive-decryption.js'
import { type CipherKey, localDecryption } from './aes-ctr-hmac.js'
import { threadDecryption } from './decrypt-thread.js'
import type { KeyProviders } from './keyprovider-config.js'
import { readLayerEncryption } from './layer-annotations.js'
import {
  AES_256_CTR_HMAC_SHA256,
  layerNonce,
  type PrivateLayerOptions,
  type PublicLayerOptions,
} from './layer-options.js'
import type { DecryptionKey } from './private-keys.js'
import { unwrapLayerKey } from './unwrap-layer-key.js'

export interface LayerDecryptorOptions {
  /** Private keys for `enc.keys.jwe` (see `loadDecryptionKeys`). */
  keys?: readonly DecryptionKey[]
  /** Serves the KEK of an attestation-agent packet's `kid` (a KBS, offline-fs JSON, a file…). */
  keySource?: KeySource
  /** `cmd` key providers from ocicrypt.conf (see `loadKeyProviderConfig`). */
  keyProviders?: KeyProviders
  /** DecryptConfig parameters sent to key providers: provider name → values. */
  keyProviderParameters?: Readonly<Record<string, readonly Uint8Array[]>>
  /** Per key-provider run (default 30 s). */
  keyProviderTimeoutMs?: number
  /**
   * Where layers are decrypted. `auto` (the default): layers under `threadMinBytes` on the calling
   * thread; bigger uncompressed ones on a worker thread of their own (decrypt-thread.ts), which
   * also hashes the blob for its digest check; bigger compressed ones start on the calling thread
   * and move to a thread when they turn out not to inflate (adaptive-decryption.ts). `thread` and
   * `calling-thread` force one engine for layers of at least `threadMinBytes`.
   */
  engine?: 'auto' | 'thread' | 'calling-thread'
  /** Default 8 MiB: smaller layers always decrypt on the calling thread (a thread's start-up is ~30 ms). */
  threadMinBytes?: number
  /** `auto`: ciphertext bytes decrypted on the calling thread before the engine is chosen (default 8 MiB). */
  probeBytes?: number
}

const THREAD_MIN_BYTES = 8 << 20

/** An unwrapped layer key. Holds secrets: never log it. */
export interface LayerKey {
  /** The encrypted blob's digest (the descriptor's). */
  digest: Digest
  /** How it was unwrapped, e.g. `enc.keys.jwe recipient 2`, for messages. */
  via: string
  pubopts: PublicLayerOptions
  privopts: PrivateLayerOptions
  /** The CTR nonce (16 bytes), from the public options or else the private ones. */
  nonce: Buffer
}

/**
 * Unwraps the keys of encrypted layers and builds their decryption stages. One per pull (or per
 * agent): it caches every unwrapped layer key, and every KEK fetched from the key source, in
 * memory for its lifetime, and runs concurrent requests for the same layer or kid once.
 *
 * ```ts
 * const decryptor = createLayerDecryptor({ keys: await loadDecryptionKeys({ path: 'key.pem' }) })
 * await unwrapManifestKeys(decryptor, image.manifest.layers, { signal })   // fail before downloads
 * await applyLayer({ ..., decryptor })
 * ```
 */
export interface LayerDecryptor {
  /**
   * The key of one encrypted layer: the descriptor's annotations are read, then its wrapped keys
   * are tried (see `unwrapLayerKey`). ERR_KEY_UNAVAILABLE / ERR_KEY_INVALID naming what was
   * tried, ERR_MANIFEST_INVALID for malformed annotations, ERR_MEDIA_TYPE_UNSUPPORTED for a
   * cipher other than AES_256_CTR_HMAC_SHA256.
   */
  layerKey(descriptor: Descriptor, options?: { what?: string; signal?: AbortSignal }): Promise<LayerKey>
  /**
   * The decryption of one encrypted layer for the layer pipeline: its key (from `layerKey`) at
   * work. `inflateRatio` (compressed layers) tells how well the layer inflates so far.
   */
  open(descriptor: Descriptor, options: OpenOptions): Promise<LayerDecryption>
}

export function createLayerDecryptor(options: LayerDecryptorOptions = {}): LayerDecryptor {
  const keys = new Map<string, Promise<LayerKey>>()
  const keks = new Map<string, Promise<Uint8Array>>()
  const { keySource } = options
  const threadMinBytes = options.threadMinBytes ?? THREAD_MIN_BYTES
  const engine = options.engine ?? 'auto'
  const unwrappers = {
    keys: options.keys ?? [],
    keySource,
    keyProviders: options.keyProviders ?? new Map(),
    keyProviderParameters: options.keyProviderParameters ?? {},
    keyProviderTimeoutMs: options.keyProviderTimeoutMs,
    kek: (kid: string, signal: AbortSignal | undefined) => {
      if (keySource === undefined)
        return Promise.reject(new OcipullError('ERR_KEY_UNAVAILABLE', 'no key source'))
      return once(keks, kid, () => keySource.getResource(kid, signal ? { signal } : {}))
    },
  }
  const decryptor: LayerDecryptor = {
    async open(descriptor, o) {
      const key = await decryptor.layerKey(descriptor, o)
      if (o.signal?.aborted) throw abortError(o.signal, o.what)
      const cipher: CipherKey = {
        symkey: key.privopts.symkey,
        nonce: key.nonce,
        hmac: key.pubopts.hmac,
        digest: key.privopts.digest,
      }
      if (descriptor.size < threadMinBytes || engine === 'calling-thread')
        return localDecryption(cipher, o.what)
      const blobAlgorithm = descriptor.digest.slice(0, descriptor.digest.indexOf(':'))
      if (engine === 'thread' || o.inflateRatio === undefined)
        return threadDecryption(cipher, { blobAlgorithm, what: o.what })
      return adaptiveDecryption(cipher, {
        blobAlgorithm,
        what: o.what,
        inflateRatio: o.inflateRatio,
        ...(options.probeBytes === undefined ? {} : { probeBytes: options.probeBytes }),
      })
    },
    layerKey(descriptor, o = {}) {
      const what = o.what ?? `layer ${shortDigest(descriptor.digest)}`
      if (o.signal?.aborted) return Promise.reject(abortError(o.signal, what))
      return once(keys, cacheKey(descriptor), async () => {
        const encryption = readLayerEncryption(descriptor, what)
        const { pubopts } = encryption
        if (pubopts.cipher !== AES_256_CTR_HMAC_SHA256) {
          throw new OcipullError(
            'ERR_MEDIA_TYPE_UNSUPPORTED',
            `${what}: unsupported layer cipher ${JSON.stringify(pubopts.cipher)}`,
          )
        }
        const { privopts, via } = await unwrapLayerKey(encryption, unwrappers, {
          what,
          ...(o.signal ? { signal: o.signal } : {}),
        })
        const nonce = layerNonce(pubopts, privopts, what)
        return { digest: descriptor.digest, via, pubopts, privopts, nonce }
      })
    },
  }
  return decryptor
}

/**
 * Unwraps the keys of every encrypted layer of a manifest, each distinct layer once and all
 * concurrently, so that a missing key fails the pull before any layer is fetched; start it
 * alongside the downloads to overlap the two. Without a decryptor, an encrypted layer is
 * ERR_KEY_UNAVAILABLE. Resolves to the keys by layer digest.
 */
export async function unwrapManifestKeys(
  decryptor: LayerDecryptor | undefined,
  layers: readonly Descriptor[],
  options: { what?: string; signal?: AbortSignal } = {},
): Promise<Map<Digest, LayerKey>> {
  const encrypted = new Map<Digest, Descriptor>()
  for (const layer of layers) if (layer.mediaType.endsWith('+encrypted')) encrypted.set(layer.digest, layer)
  const out = new Map<Digest, LayerKey>()
  if (encrypted.size === 0) return out
  const prefix = options.what === undefined ? '' : `${options.what}: `
  if (decryptor === undefined) {
    const [first] = encrypted.keys()
    throw noDecryptor(`${prefix}layer ${shortDigest(first as Digest)}`)
  }
  // The first failure decides at once (a slow key provider does not hold up the verdict).
  const keys = await Promise.all(
    [...encrypted.values()].map((layer) =>
      decryptor.layerKey(layer, {
        what: `${prefix}layer ${shortDigest(layer.digest)}`,
        ...(options.signal ? { signal: options.signal } : {}),
      }),
    ),
  )
  for (const key of keys) out.set(key.digest, key)
  return out
}

/** What `open` needs besides the descriptor. */
export interface OpenOptions {
  what: string
  signal?: AbortSignal
  /** Compressed layers: uncompressed bytes so far per byte the inflater took (adaptive-decryption.ts decides by it). */
  inflateRatio?: () => number
}

/**
 * What the layer pipeline splices in for an encrypted layer (aes-ctr-hmac.ts on the calling
 * thread, decrypt-thread.ts on a thread of its own). One layer, one use; `close()` when done.
 */
export interface LayerDecryption {
  /** For `source.blob(…, { hash })`: the blob's digest computed where it is decrypted (thread only). */
  blobHash?: StreamHash
  /** Wraps the blob: HMAC over every byte; at its end, ERR_DECRYPTION_FAILED unless it matches. */
  authenticate(blob: AsyncIterable<Buffer>): AsyncIterable<Buffer>
  /** The first stage of the pipeline: AES-256-CTR, then the private options' digest check. */
  decipher: Duplex
  /** Releases the thread, if any; the pipeline calls it when the layer is done or failed. */
  close(): void
}

/** `decryptor.open(…)`, or ERR_KEY_UNAVAILABLE without a decryptor: what `applyLayer` calls. */
export async function openLayerDecryption(
  decryptor: LayerDecryptor | undefined,
  descriptor: Descriptor,
  options: OpenOptions,
): Promise<LayerDecryption> {
  if (decryptor === undefined) throw noDecryptor(options.what)
  return decryptor.open(descriptor, options)
}

function noDecryptor(what: string): OcipullError {
  return new OcipullError(
    'ERR_KEY_UNAVAILABLE',
    `${what}: the layer is encrypted and no decryption keys were given`,
  )
}

/** A layer is the same layer only with the same encryption annotations (they carry the HMAC). */
function cacheKey(d: Descriptor): string {
  const enc = Object.entries(d.annotations ?? {})
    .filter(([k]) => k.startsWith('org.opencontainers.image.enc.'))
    .sort(([a], [b]) => (a < b ? -1 : 1))
  return `${d.digest}\n${JSON.stringify(enc)}`
}

/** Runs `make` once per key; a failure is forgotten so the next caller tries again. */
function once<T>(cache: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let p = cache.get(key)
  if (p === undefined) {
    p = make()
    cache.set(key, p)
    p.catch(() => {
      if (cache.get(key) === p) cache.delete(key)
    })
  }
  return p
}
