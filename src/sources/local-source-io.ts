import { createHash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { pipeline, Readable } from 'node:stream'
import type { Digest, DigestAlgorithm } from '../digest.js'
import { abortError, isOcipullError, OcipullError } from '../errors.js'
import { type StreamHash, VerifyStream } from '../verify-stream.js'

/**
 * File I/O shared by the local sources (OCI layout, oci-archive, docker-archive): positioned
 * reads that honour a signal, streams over a byte range, verified blob streams, and a lazily
 * opened, shared state that `close()` releases.
 */

const CHUNK = 1024 * 1024

export interface IoOptions {
  /** Names the file in errors, e.g. `oci-archive:x.tar: index.json`. */
  what: string
  signal?: AbortSignal | undefined
}

/** Fills `buffer` from `position`; ERR_SOURCE_INVALID if the file ends first (it changed under us). */
export async function readInto(
  handle: FileHandle,
  buffer: Buffer,
  position: number,
  options: IoOptions,
): Promise<void> {
  let done = 0
  while (done < buffer.length) {
    if (options.signal?.aborted) throw abortError(options.signal, options.what)
    const { bytesRead } = await handle.read(
      buffer,
      done,
      Math.min(CHUNK, buffer.length - done),
      position + done,
    )
    if (bytesRead === 0) {
      throw new OcipullError(
        'ERR_SOURCE_INVALID',
        `${options.what}: ended after ${done} of ${buffer.length} bytes`,
      )
    }
    done += bytesRead
  }
}

/** Reads exactly `length` bytes at `position`. Callers check `length` against their limits first. */
export async function readRange(
  handle: FileHandle,
  position: number,
  length: number,
  options: IoOptions,
): Promise<Buffer> {
  const buffer = Buffer.alloc(length)
  await readInto(handle, buffer, position, options)
  return buffer
}

/** Hashes `length` bytes at `position` in chunks, returning the digest and the first bytes (for magic numbers). */
export async function hashRange(
  handle: FileHandle,
  position: number,
  length: number,
  options: IoOptions & { algorithm?: DigestAlgorithm },
): Promise<{ digest: Digest; head: Buffer }> {
  const algorithm = options.algorithm ?? 'sha256'
  const hash = createHash(algorithm)
  const buffer = Buffer.alloc(Math.min(CHUNK, length))
  let head: Buffer | undefined
  for (let done = 0; done < length; ) {
    const chunk = buffer.subarray(0, Math.min(buffer.length, length - done))
    await readInto(handle, chunk, position + done, options)
    head ??= Buffer.from(chunk.subarray(0, 8))
    hash.update(chunk)
    done += chunk.length
  }
  return { digest: `${algorithm}:${hash.digest('hex')}`, head: head ?? Buffer.alloc(0) }
}

/**
 * A stream of `length` bytes at `start`, read 1 MiB at a time (the 64 KiB default made every
 * later stage pay its per-chunk cost 16 times as often). With `autoClose` the handle is closed
 * when the stream ends.
 */
export function rangeStream(handle: FileHandle, start: number, length: number, autoClose: boolean): Readable {
  if (length === 0) {
    if (autoClose) void handle.close().catch(() => {})
    return Readable.from([], { objectMode: false })
  }
  return handle.createReadStream({ start, end: start + length - 1, autoClose, highWaterMark: CHUNK })
}

export interface VerifiedStreamOptions {
  digest: Digest
  size: number
  /** Names the blob in errors, e.g. `oci:dir: blob sha256:ab12…`. */
  what: string
  signal?: AbortSignal | undefined
  hash?: StreamHash | undefined
}

/**
 * Pipes `input` through a VerifyStream (size and digest) and returns the verifying end. Errors of
 * `input` and aborts of `signal` (as ERR_ABORTED) destroy the returned stream; destroying it
 * closes `input`.
 */
export function verifiedStream(input: Readable, options: VerifiedStreamOptions): Readable {
  const verify = new VerifyStream({
    digest: options.digest,
    size: options.size,
    what: options.what,
    ...(options.hash ? { hash: options.hash } : {}),
  })
  pipeline(input, verify, () => {})
  const { signal } = options
  if (signal !== undefined) {
    const onAbort = () => verify.destroy(abortError(signal, options.what))
    signal.addEventListener('abort', onAbort, { once: true })
    verify.once('close', () => signal.removeEventListener('abort', onAbort))
  }
  return verify
}

/** The streams a source handed out and not yet closed, so `close()` can end them. */
export class LiveStreams {
  private readonly streams = new Set<Readable>()

  add(stream: Readable): Readable {
    this.streams.add(stream)
    stream.once('close', () => this.streams.delete(stream))
    return stream
  }

  destroyAll(reason: Error): void {
    for (const stream of this.streams) stream.destroy(reason)
    this.streams.clear()
  }
}

export interface LazyOpen<T> {
  /** Opens on first use; concurrent callers share one opening. A failed opening is retried next time. */
  get(signal?: AbortSignal): Promise<T>
  /** Releases what was opened (waiting for an opening in progress); later `get` calls throw. */
  close(): Promise<void>
}

/**
 * The state a local source builds on first use (an archive's index, a layout's index.json).
 * If the caller whose signal drives the opening aborts, other waiting callers start it again.
 */
export function lazyOpen<T>(
  what: string,
  open: (signal: AbortSignal | undefined) => Promise<T>,
  release: (value: T) => Promise<void>,
): LazyOpen<T> {
  let pending: { promise: Promise<T>; signal: AbortSignal | undefined } | undefined
  let closed = false
  return {
    async get(signal) {
      for (;;) {
        if (closed) throw new TypeError(`${what}: source is closed`)
        if (signal?.aborted) throw abortError(signal, what)
        if (pending === undefined) {
          const promise = open(signal)
          const current = { promise, signal }
          pending = current
          promise.catch(() => {
            if (pending === current) pending = undefined
          })
        }
        const current = pending
        try {
          return await untilAborted(current.promise, signal, what)
        } catch (err) {
          const othersAbort = current.signal !== signal && current.signal?.aborted === true
          if (!(othersAbort && isOcipullError(err, 'ERR_ABORTED') && !signal?.aborted)) throw err
        }
      }
    },
    async close() {
      closed = true
      const current = pending
      pending = undefined
      if (current === undefined) return
      let value: T
      try {
        value = await current.promise
      } catch {
        return
      }
      await release(value)
    },
  }
}

/** Waits for `promise`, or rejects with ERR_ABORTED as soon as `signal` fires. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (signal === undefined) return promise
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, what))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}
