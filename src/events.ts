import { channel } from 'node:diagnostics_channel'
import type { LayerStats } from './layer/apply-layer.js'
import type { Descriptor } from './manifest.js'

/** The phases of a pull, in order; `policy` and `keys` only when configured. */
export type PullPhase = 'resolve' | 'policy' | 'keys' | 'layers' | 'snapshot' | 'bundle'

/**
 * What a pull or unpack reports while it runs: `phase` start/end around each phase; `resolved`;
 * per layer either `layer-cached` (already in the store) or `layer-start`, `layer-progress`
 * (throttled), `layer-done` (layers download concurrently, so their events interleave; `index`
 * says which); then `committed`. `warning` may come at any time. Times are milliseconds; bytesIn
 * counts the blob as fetched, bytesOut the uncompressed tar.
 */
export type PullEvent =
  /** `ms` is 0 at `start` and the phase's duration at `end`. */
  | { type: 'phase'; phase: PullPhase; state: 'start' | 'end'; ms: number }
  | { type: 'layer-cached'; index: number; digest: string; size: number }
  | {
      type: 'resolved'
      source: string
      digest: string
      platform: string
      layers: number
      bytes: number
      ms: number
    }
  | { type: 'layer-start'; index: number; digest: string; size: number; mediaType: string }
  | { type: 'layer-progress'; index: number; digest: string; bytesIn: number; bytesOut: number }
  | {
      type: 'layer-done'
      index: number
      digest: string
      bytesIn: number
      bytesOut: number
      entries: number
      ms: number
    }
  | { type: 'warning'; code: string; path: string; message: string }
  | { type: 'committed'; bundle: string; ms: number }

/**
 * Every PullEvent is also published on this diagnostics channel, so an agent can observe pulls
 * it did not start itself (as undici does for requests): `subscribe('ocipull:pull', fn)`.
 */
export const PULL_CHANNEL = 'ocipull:pull'

/** A function that sends an event to the caller's callback and to the diagnostics channel. */
export function eventSink(onEvent: ((event: PullEvent) => void) | undefined): (event: PullEvent) => void {
  const ch = channel(PULL_CHANNEL)
  return (event) => {
    onEvent?.(event)
    if (ch.hasSubscribers) ch.publish(event)
  }
}

/**
 * Runs `body` as phase `name`: a `phase` start event, then an end event with its duration when it
 * succeeds (a failing phase ends with the pull's error, not an event).
 */
export function phaseRunner(emit: (event: PullEvent) => void) {
  return async <T>(name: PullPhase, body: () => Promise<T>): Promise<T> => {
    emit({ type: 'phase', phase: name, state: 'start', ms: 0 })
    const started = performance.now()
    const result = await body()
    emit({ type: 'phase', phase: name, state: 'end', ms: performance.now() - started })
    return result
  }
}

/**
 * The events of one layer's download and unpack: `layer-start` at once, `layer-progress` at most
 * every `intervalMs` through `progress` (applyLayer's `onProgress`), and `layer-done` with the
 * layer's stats and time through `done`.
 */
export function layerEvents(
  emit: (event: PullEvent) => void,
  index: number,
  descriptor: Descriptor,
  intervalMs: number,
): { progress(bytesIn: number, bytesOut: number): void; done(stats: LayerStats): void } {
  const { digest, size, mediaType } = descriptor
  emit({ type: 'layer-start', index, digest, size, mediaType })
  const started = performance.now()
  let last = started
  return {
    progress(bytesIn, bytesOut) {
      const now = performance.now()
      if (now - last < intervalMs) return
      last = now
      emit({ type: 'layer-progress', index, digest, bytesIn, bytesOut })
    },
    done(stats) {
      emit({
        type: 'layer-done',
        index,
        digest,
        bytesIn: stats.compressedBytes,
        bytesOut: stats.uncompressedBytes,
        entries: stats.entries,
        ms: performance.now() - started,
      })
    },
  }
}
