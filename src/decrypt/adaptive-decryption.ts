import { createHash } from 'node:crypto'
import { Duplex } from 'node:stream'
import type { StreamHash } from '../verify-stream.js'
import { type CipherKey, CiphertextMac, PlaintextDecrypter } from './aes-ctr-hmac.js'
import { threadDecryption } from './decrypt-thread.js'
import type { LayerDecryption } from './layer-decryptor.js'

/** Ciphertext decrypted on the calling thread before the engine is chosen. */
const PROBE_BYTES = 8 << 20
/**
 * Below this many uncompressed bytes per compressed byte so far, the layer moves to a thread.
 * Measured here: incompressible data inflates 1.0×, and the thread wins by far; 50k small files
 * 1.7× and real files 3.2×, where the calling thread is cheaper (docs/performance.md).
 */
const MIN_RATIO = 1.25
/** Copies of the ciphertext kept for the thread while probing; past this, the layer stays. */
const SAVE_SLACK = 4 << 20

export interface AdaptiveDecryptionOptions {
  blobAlgorithm: string
  what: string
  /** Uncompressed bytes so far per byte the inflater took: the probe's measure. */
  inflateRatio: () => number
  probeBytes?: number
  minRatio?: number
}

type Mode = 'probe' | 'switching' | 'thread' | 'local'

/**
 * Decryption of a big compressed layer that picks its engine from the data. It starts on the
 * calling thread, as aes-ctr-hmac.ts does, keeping a copy of the ciphertext. After `probeBytes`,
 * it looks at how well the layer inflated so far (nothing inflated yet counts as badly): a layer
 * that inflates well (real files) stays, since the rest of the pipeline then outweighs
 * decryption and both cores are busy; one that does not (already-compressed or random data,
 * where decryption's three passes over every byte are as much work as all the rest) moves to a
 * thread of its own (decrypt-thread.ts). The thread starts from byte 0 on the kept copy, so that the blob digest,
 * the HMAC and the plaintext digest all cover every byte, and gives out only the plaintext after
 * what this thread already gave out. Node cannot hand a hash's state to another thread; the
 * copy (at most probe + 4 MiB) is the price.
 *
 * Verdicts and their order are those of the two engines: blob digest (the source's), HMAC at
 * the blob's end, plaintext digest at the decipher's end.
 */
export function adaptiveDecryption(
  key: CipherKey,
  options: AdaptiveDecryptionOptions,
): LayerDecryption & { blobHash: StreamHash } {
  const { what } = options
  const probeBytes = options.probeBytes ?? PROBE_BYTES
  const minRatio = options.minRatio ?? MIN_RATIO
  const state = {
    mode: 'probe' as Mode,
    fed: 0,
    saved: [] as Buffer[],
    savedBytes: 0,
    thread: undefined as ReturnType<typeof threadDecryption> | undefined,
    /** Settles when the kept copy has been handed to the thread: only then may it be finished. */
    moved: undefined as Promise<ReturnType<typeof threadDecryption>> | undefined,
  }
  const blob = createHash(options.blobAlgorithm)
  const mac = new CiphertextMac(key, what)

  const blobHash: StreamHash = {
    update(chunk) {
      state.fed += chunk.length
      if (state.mode === 'thread') return state.thread?.blobHash.update(chunk)
      if (state.mode === 'switching') {
        state.saved.push(Buffer.from(chunk))
        return undefined
      }
      blob.update(chunk)
      if (state.mode === 'probe') {
        if (state.savedBytes + chunk.length > probeBytes + SAVE_SLACK) {
          state.mode = 'local'
          state.saved = []
        } else {
          state.saved.push(Buffer.from(chunk))
          state.savedBytes += chunk.length
        }
      }
      return undefined
    },
    digest() {
      const { moved } = state
      return moved ? moved.then((thread) => thread.blobHash.digest()) : blob.digest('hex')
    },
  }

  /** Starts the thread on the kept copy, then on what the source gives. */
  const moveToThread = async (emitted: number): Promise<NonNullable<typeof state.thread>> => {
    state.mode = 'switching'
    const thread = threadDecryption(key, { blobAlgorithm: options.blobAlgorithm, what, skip: emitted })
    state.thread = thread
    while (state.saved.length > 0) {
      const wait = thread.blobHash.update(state.saved.shift() as Buffer)
      if (wait) await wait
    }
    state.mode = 'thread'
    return thread
  }

  async function* authenticate(stream: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of stream) {
      if (state.mode !== 'thread' && state.mode !== 'switching') mac.update(chunk)
      yield chunk
    }
    if (state.moved) {
      await (await state.moved).checkHmac()
      return
    }
    mac.check()
  }

  const decipher = new AdaptiveDecipher(key, what, {
    decide: (written) => {
      if (state.mode !== 'probe' || written < probeBytes) return undefined
      // A source that ignored `blobHash` left nothing to hand over: stay.
      if (state.fed < written || options.inflateRatio() >= minRatio) {
        state.mode = 'local'
        state.saved = []
        return undefined
      }
      state.moved = moveToThread(written)
      return state.moved
    },
  })

  return {
    blobHash,
    authenticate,
    decipher,
    close() {
      state.thread?.close()
    },
  }
}

interface Decide {
  /** After each write on this thread: undefined to go on here, or the thread to hand over to. */
  decide(written: number): Promise<ReturnType<typeof threadDecryption>> | undefined
}

/** The decryption stage: this thread's CTR until a handover, then the thread's plaintext. */
class AdaptiveDecipher extends Duplex {
  private readonly decrypter: PlaintextDecrypter
  private readonly d: Decide
  private thread: ReturnType<typeof threadDecryption> | undefined
  private written = 0
  private pending: (() => void) | undefined

  constructor(key: CipherKey, what: string, d: Decide) {
    super({ readableHighWaterMark: 1 << 20 })
    this.decrypter = new PlaintextDecrypter(key, what)
    this.d = d
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.thread) {
      this.thread.decipher.write(chunk, callback)
      return
    }
    const plain = this.decrypter.update(chunk)
    this.written += chunk.length
    const go = () => {
      const handover = this.d.decide(this.written)
      if (handover === undefined) callback()
      else handover.then((thread) => this.follow(thread, callback), callback)
    }
    if (this.push(plain)) go()
    else this.pending = go
  }

  override _read(): void {
    const pending = this.pending
    this.pending = undefined
    pending?.()
    this.thread?.decipher.resume()
  }

  override _final(callback: (error?: Error | null) => void): void {
    const { thread } = this
    if (thread) {
      thread.decipher.once('finish', () => callback())
      thread.decipher.end()
      return
    }
    const failure = this.decrypter.verdict()
    if (failure) {
      callback(failure)
      return
    }
    callback()
    this.push(null)
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.thread?.decipher.destroy()
    callback(err)
  }

  /** From now on the thread's plaintext is this stage's output. */
  private follow(thread: ReturnType<typeof threadDecryption>, callback: () => void): void {
    this.thread = thread
    const out = thread.decipher
    out.on('data', (b: Buffer) => {
      if (!this.push(b)) out.pause()
    })
    out.once('end', () => this.push(null))
    out.once('error', (err) => this.destroy(err))
    callback()
  }
}
