import { channel } from 'node:diagnostics_channel'

/**
 * What a pull or unpack reports while it runs, in order: `resolved`, then per layer
 * `layer-start`, `layer-progress` (throttled), `layer-done`, then `committed`. `warning` may come
 * at any time. Times are milliseconds; bytesIn counts the blob as fetched, bytesOut the
 * uncompressed tar.
 */
export type PullEvent =
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
