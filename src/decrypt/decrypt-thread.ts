import { timingSafeEqual } from 'node:crypto'
import { Duplex } from 'node:stream'
import { Worker } from 'node:worker_threads'
import { OcipullError } from '../errors.js'
import type { StreamHash } from '../verify-stream.js'
import { type CipherKey, hmacMismatch, plaintextMismatch } from './aes-ctr-hmac.js'
import type { LayerDecryption } from './layer-decryptor.js'

/** Ciphertext goes to the thread in batches of this size (the last one shorter). */
const BATCH = 1 << 20
/** Batches handed to the thread whose plaintext the pipeline has not taken yet: at most 4 MiB. */
const MAX_IN_FLIGHT = 4

/**
 * The thread's code: for each batch of ciphertext, the blob digest and the HMAC, then AES-256-CTR
 * and the plaintext digest (until told to stop decrypting), the plaintext transferred back with
 * the batch's buffer, for the next batch (so neither thread leaves 1 MiB of garbage per batch). A
 * constant script evaluated as the worker, so that it runs the same from src/ (tests) and dist/.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { createDecipheriv, createHash, createHmac } = require('node:crypto')
const { symkey, nonce, blobAlgorithm, plainAlgorithm } = workerData
const blob = createHash(blobAlgorithm)
const mac = createHmac('sha256', symkey)
const plain = createHash(plainAlgorithm)
const decipher = createDecipheriv('aes-256-ctr', symkey, nonce)
let decrypting = true
parentPort.on('message', (m) => {
  if (m.type === 'batch') {
    const c = new Uint8Array(m.buffer, 0, m.length)
    blob.update(c)
    mac.update(c)
    if (!decrypting) return parentPort.postMessage({ type: 'ack', spare: m.buffer }, [m.buffer])
    let p = decipher.update(c)
    plain.update(p)
    if (p.byteOffset !== 0 || p.byteLength !== p.buffer.byteLength) p = Buffer.from(p)
    parentPort.postMessage({ type: 'plain', buffer: p.buffer, length: p.byteLength, spare: m.buffer }, [
      p.buffer,
      m.buffer,
    ])
  } else if (m.type === 'stop') {
    decrypting = false
  } else if (m.type === 'end') {
    parentPort.postMessage({
      type: 'end',
      blob: blob.digest('hex'),
      hmac: mac.digest(),
      plain: decrypting ? plain.digest('hex') : undefined,
    })
  }
})
`

interface ThreadVerdict {
  blob: string
  hmac: Uint8Array
  plain: string | undefined
}

type ThreadMessage =
  | { type: 'plain'; buffer: ArrayBuffer; length: number; spare: ArrayBuffer }
  | { type: 'ack'; spare: ArrayBuffer }
  | ({ type: 'end' } & ThreadVerdict)

/**
 * ocicrypt's AES_256_CTR_HMAC_SHA256 on a worker thread of its own, for big layers: the thread
 * hashes the blob (for the source's digest check, through `blobHash`), runs the HMAC, decrypts
 * and hashes the plaintext, so that the main thread only copies the ciphertext into batches and
 * passes the plaintext on. Same checks, errors and order of verdicts as the main-thread version
 * (aes-ctr-hmac.ts); on a machine with two cores it takes the decryption's cost (three passes
 * over every byte) off the thread that also parses the tar and writes the files.
 *
 * Flow control: at most MAX_IN_FLIGHT batches are with the thread or waiting for the pipeline
 * to take their plaintext; `blobHash.update` (the source's VerifyStream) waits for a slot.
 * A source that ignores `blobHash` still works: `decipher` then feeds the thread itself.
 * `close()` ends the thread; the layer pipeline calls it when the layer is done or failed.
 */
export function threadDecryption(
  key: CipherKey,
  options: {
    blobAlgorithm: string
    what: string
    /** Plaintext bytes not to give out: the calling thread gave them out before a switch (adaptive-decryption.ts). */
    skip?: number
  },
): LayerDecryption & { blobHash: StreamHash; checkHmac(): Promise<void> } {
  const { what } = options
  const worker = new Worker(THREAD_SOURCE, {
    eval: true,
    // Not this process's flags (`--import` hooks, say): the script needs nothing but node.
    execArgv: [],
    workerData: {
      symkey: key.symkey,
      nonce: key.nonce,
      blobAlgorithm: options.blobAlgorithm,
      plainAlgorithm: key.digest.slice(0, key.digest.indexOf(':')),
    },
  })
  const spares: ArrayBuffer[] = []
  let batch = Buffer.allocUnsafeSlow(BATCH)
  let used = 0
  let fed = 0
  let credits = MAX_IN_FLIGHT
  let creditWaiter: { resolve: () => void; reject: (err: Error) => void } | undefined
  let ended: Promise<ThreadVerdict> | undefined
  let failure: Error | undefined
  let closed = false
  let settle: { resolve: (v: ThreadVerdict) => void; reject: (err: Error) => void } | undefined
  const verdict = new Promise<ThreadVerdict>((resolve, reject) => {
    settle = { resolve, reject }
  })
  verdict.catch(() => {})

  const fail = (err: Error, destroyDecipher = true) => {
    if (failure !== undefined) return
    failure = err
    settle?.reject(err)
    creditWaiter?.reject(err)
    creditWaiter = undefined
    if (destroyDecipher) decipher.destroy(err)
    else decipher.destroy()
  }
  const returnCredit = () => {
    credits++
    const waiter = creditWaiter
    creditWaiter = undefined
    waiter?.resolve()
  }
  const post = () => {
    credits--
    worker.postMessage({ type: 'batch', buffer: batch.buffer, length: used }, [batch.buffer as ArrayBuffer])
    const spare = spares.pop()
    batch = spare === undefined ? Buffer.allocUnsafeSlow(BATCH) : Buffer.from(spare)
    used = 0
  }
  /** Copies `chunk` from `offset` into batches; a promise when it must wait for a slot. */
  const feedFrom = (chunk: Buffer, offset: number): Promise<void> | undefined => {
    let off = offset
    for (;;) {
      if (failure !== undefined) return Promise.reject(failure)
      if (used === BATCH) {
        if (credits === 0) {
          return new Promise<void>((resolve, reject) => {
            creditWaiter = { resolve, reject }
          }).then(() => feedFrom(chunk, off))
        }
        post()
      }
      if (off === chunk.length) return undefined
      const n = Math.min(chunk.length - off, BATCH - used)
      chunk.copy(batch, used, off, off + n)
      used += n
      off += n
    }
  }
  const feed = (chunk: Buffer): Promise<void> | undefined => {
    if (ended !== undefined) return Promise.reject(new Error(`${what}: decryption thread fed after its end`))
    fed += chunk.length
    return feedFrom(chunk, 0)
  }
  /** Hands over the last batch and asks for the digests; the same promise every time. */
  const finish = (): Promise<ThreadVerdict> => {
    if (ended === undefined) {
      if (failure === undefined) {
        if (used > 0) post()
        worker.postMessage({ type: 'end' })
      }
      ended = verdict
    }
    return ended
  }

  const decipher = new ThreadDecipher({
    feed,
    finish,
    fed: () => fed,
    returnCredit,
    stopDecrypting: () => {
      if (!closed) worker.postMessage({ type: 'stop' })
    },
    expected: key.digest,
    what,
    skip: options.skip ?? 0,
  })

  worker.on('message', (m: ThreadMessage) => {
    if (m.type !== 'end' && m.spare.byteLength === BATCH) spares.push(m.spare)
    if (m.type === 'plain') decipher.plaintext(Buffer.from(m.buffer, 0, m.length))
    else if (m.type === 'ack') returnCredit()
    else settle?.resolve({ blob: m.blob, hmac: m.hmac, plain: m.plain })
  })
  worker.on('error', (err) =>
    fail(
      new OcipullError('ERR_DECRYPTION_FAILED', `${what}: decryption thread failed: ${err.message}`, {
        cause: err,
      }),
    ),
  )
  worker.on('exit', (code) => {
    if (!closed)
      fail(new OcipullError('ERR_DECRYPTION_FAILED', `${what}: decryption thread exited (code ${code})`))
  })

  const blobHash: StreamHash = {
    update: feed,
    digest: () => finish().then((v) => v.blob),
  }

  const checkHmac = async () => {
    const { hmac } = await finish()
    const got = Buffer.from(hmac)
    if (got.length !== key.hmac.length || !timingSafeEqual(got, key.hmac)) throw hmacMismatch(what)
  }

  async function* authenticate(blob: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of blob) yield chunk
    await checkHmac()
  }

  return {
    blobHash,
    authenticate,
    checkHmac,
    decipher,
    close() {
      if (closed) return
      closed = true
      fail(new OcipullError('ERR_ABORTED', `${what}: decryption closed`), false)
      void worker.terminate()
    },
  }
}

interface ThreadDecipherOptions {
  feed(chunk: Buffer): Promise<void> | undefined
  finish(): Promise<ThreadVerdict>
  fed(): number
  returnCredit(): void
  stopDecrypting(): void
  expected: string
  what: string
  skip: number
}

/**
 * The pipeline's decryption stage: takes the ciphertext (already with the thread when the source
 * fed it through `blobHash`; otherwise it feeds it), gives out the thread's plaintext in order,
 * and fails at the end unless the plaintext had the private options' digest.
 */
class ThreadDecipher extends Duplex {
  private readonly o: ThreadDecipherOptions
  private written = 0
  private sourceFeeds: boolean | undefined
  private readonly waiting: Buffer[] = []
  private flowing = false
  private done = false
  private decrypting = true
  private skip: number

  constructor(options: ThreadDecipherOptions) {
    super({ readableHighWaterMark: BATCH })
    this.o = options
    this.skip = options.skip
  }

  /** Plaintext of the next batch, from the thread. */
  plaintext(batch: Buffer): void {
    let buffer = batch
    if (this.skip > 0) {
      const n = Math.min(this.skip, buffer.length)
      this.skip -= n
      buffer = buffer.subarray(n)
    }
    if (!this.decrypting || buffer.length === 0) {
      this.o.returnCredit()
      return
    }
    if (this.flowing && this.waiting.length === 0) {
      this.o.returnCredit()
      this.flowing = this.push(buffer)
    } else this.waiting.push(buffer)
  }

  override _read(): void {
    this.flowing = true
    while (this.flowing && this.waiting.length > 0) {
      this.o.returnCredit()
      this.flowing = this.push(this.waiting.shift())
    }
    if (this.done && this.waiting.length === 0) this.push(null)
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.written += chunk.length
    this.sourceFeeds ??= this.o.fed() >= this.written
    if (this.sourceFeeds) {
      callback()
      return
    }
    const wait = this.o.feed(chunk)
    if (wait === undefined) callback()
    else wait.then(() => callback(), callback)
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.o.finish().then(
      ({ plain }) => {
        const got = `${this.o.expected.slice(0, this.o.expected.indexOf(':'))}:${plain}`
        if (plain === undefined || got !== this.o.expected) {
          callback(plaintextMismatch(this.o.what, this.o.expected, got))
          return
        }
        this.done = true
        callback()
        if (this.waiting.length === 0) this.push(null)
      },
      (err: Error) => callback(err),
    )
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.decrypting) {
      this.decrypting = false
      this.o.stopDecrypting()
      for (const _ of this.waiting) this.o.returnCredit()
      this.waiting.length = 0
    }
    callback(err)
  }
}
