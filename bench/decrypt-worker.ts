/**
 * A third engine for the decryption benchmark: HMAC, AES-256-CTR and the plaintext hash all in a
 * worker thread, so the main thread only copies the ciphertext into 1 MiB batches and receives
 * the plaintext (transferred, not copied). `authenticate` feeds the worker and asks it for the
 * HMAC verdict at the end of the blob; `decipher` ignores the ciphertext it is given (it only
 * counts it) and emits the worker's plaintext in order.
 */
import { timingSafeEqual } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { Worker } from 'node:worker_threads'
import type { LayerDecryption, LayerKey } from '../src/decrypt/layer-decryptor.js'
import { OcipullError } from '../src/errors.js'

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { createDecipheriv, createHash, createHmac } = require('node:crypto')
const { key, nonce, algorithm } = workerData
const mac = createHmac('sha256', key)
const decipher = createDecipheriv('aes-256-ctr', key, nonce)
const hash = createHash(algorithm)
parentPort.on('message', (m) => {
  if (m.type === 'data') {
    const c = Buffer.from(m.buf)
    mac.update(c)
    if (!m.decrypt) return
    let p = decipher.update(c)
    if (p.byteOffset !== 0 || p.byteLength !== p.buffer.byteLength) p = Buffer.from(p)
    hash.update(p)
    parentPort.postMessage({ type: 'plain', buf: p.buffer }, [p.buffer])
  } else {
    parentPort.postMessage({ type: 'done', hmac: mac.digest(), digest: hash.digest('hex') })
  }
})
`

const BATCH = 1 << 20
const MAX_IN_FLIGHT = 8

export function workerDecryption(key: LayerKey, what: string): LayerDecryption {
  const algorithm = key.privopts.digest.slice(0, key.privopts.digest.indexOf(':'))
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: { key: key.privopts.symkey, nonce: key.nonce, algorithm },
  })
  let inFlight = 0
  let wake: (() => void) | undefined
  let decipherDone = false
  let resolveDone: (v: { hmac: Uint8Array; digest: string }) => void = () => {}
  let rejectAll: (err: Error) => void = () => {}
  const done = new Promise<{ hmac: Uint8Array; digest: string }>((resolve, reject) => {
    resolveDone = resolve
    rejectAll = reject
  })
  done.catch(() => {})
  const decipher = new WorkerDecipher(done, () => worker.terminate(), what, key.privopts.digest)
  decipher.once('close', () => {
    decipherDone = true
    wake?.()
  })
  worker.on('message', (m: { type: string; buf?: ArrayBuffer; hmac?: Uint8Array; digest?: string }) => {
    if (m.type === 'plain') {
      inFlight--
      wake?.()
      if (!decipherDone) decipher.push(Buffer.from(m.buf as ArrayBuffer))
    } else resolveDone({ hmac: m.hmac as Uint8Array, digest: m.digest as string })
  })
  worker.on('error', (err) => rejectAll(err))

  const post = (batch: Buffer) => {
    const decrypt = !decipherDone
    if (decrypt) inFlight++
    worker.postMessage({ type: 'data', buf: batch.buffer, decrypt }, [batch.buffer as ArrayBuffer])
  }

  async function* authenticate(blob: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    try {
      let batch = Buffer.allocUnsafeSlow(BATCH)
      let used = 0
      for await (const chunk of blob) {
        let offset = 0
        while (offset < chunk.length) {
          const n = Math.min(chunk.length - offset, BATCH - used)
          chunk.copy(batch, used, offset, offset + n)
          used += n
          offset += n
          if (used === BATCH) {
            while (inFlight >= MAX_IN_FLIGHT && !decipherDone) await new Promise<void>((r) => (wake = r))
            post(batch)
            batch = Buffer.allocUnsafeSlow(BATCH)
            used = 0
          }
        }
        yield chunk
      }
      if (used > 0) post(Buffer.from(batch.subarray(0, used)))
      worker.postMessage({ type: 'end' })
      const { hmac } = await done
      const got = Buffer.from(hmac)
      if (got.length !== key.pubopts.hmac.length || !timingSafeEqual(got, key.pubopts.hmac)) {
        throw new OcipullError('ERR_DECRYPTION_FAILED', `${what}: HMAC mismatch`)
      }
    } catch (err) {
      await worker.terminate()
      throw err
    }
  }
  return { authenticate, decipher }
}

class WorkerDecipher extends Transform {
  private readonly done: Promise<{ hmac: Uint8Array; digest: string }>
  private readonly stop: () => void
  private readonly what: string
  private readonly expected: string

  constructor(
    done: Promise<{ hmac: Uint8Array; digest: string }>,
    stop: () => void,
    what: string,
    expected: string,
  ) {
    super()
    this.done = done
    this.stop = stop
    this.what = what
    this.expected = expected
  }

  override _transform(_chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    callback()
  }

  override _flush(callback: TransformCallback): void {
    this.done.then(
      ({ digest }) => {
        this.stop()
        const algorithm = this.expected.slice(0, this.expected.indexOf(':'))
        if (`${algorithm}:${digest}` !== this.expected) {
          callback(new OcipullError('ERR_DECRYPTION_FAILED', `${this.what}: decrypted blob digest mismatch`))
        } else callback()
      },
      (err: Error) => callback(err),
    )
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.stop()
    callback(err)
  }
}
