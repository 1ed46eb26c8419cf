import { shortDigest } from '../digest.js'
import type { PullEvent, PullPhase } from '../events.js'
import type { CommandIo } from './inspect.js'

/** What the display needs of a stream: `process.stderr` fits, and so does a recording object. */
export type ProgressStream = {
  write(chunk: string): unknown
  isTTY?: boolean
  columns?: number
  rows?: number
}

export type ProgressDisplayOptions = {
  stream: ProgressStream
  /** A clock in milliseconds (default `performance.now`); tests inject one. */
  now?: () => number
}

export type ProgressDisplay = {
  onEvent(event: PullEvent): void
  /** Draws the final frame (on a TTY) and stops; call it in `finally`, also on failure. */
  close(): void
}

/** At most 10 redraws a second: layer-progress events from several layers would otherwise flicker. */
const REDRAW_MS = 100
const PHASES_BEFORE: PullPhase[] = ['policy', 'keys']
const PHASES_AFTER: PullPhase[] = ['layers', 'snapshot', 'bundle']

type Layer = {
  digest: string
  size: number
  state: 'running' | 'cached' | 'done'
  bytesIn: number
  bytesOut: number
  started: number
  /** When the last byte count was measured; the rate is bytesIn over (measured - started). */
  measured: number
  ms: number
}
type Phase = { started: number; ms: number | undefined }
type Resolved = Extract<PullEvent, { type: 'resolved' }>

/**
 * Shows pull events on `stream`. On a TTY it keeps a block of lines (resolve, one per layer, the
 * phases) redrawn in place with cursor-up and clear-line, at most every 100 ms, each line cut
 * to the terminal width so it never wraps; warnings are written above the block. Otherwise it
 * writes one plain line per notable event (resolved, layer done or cached, phase end, warning,
 * committed) with no escape sequences. Every string taken from an event is stripped of control
 * characters first: paths and names come from the image and may carry terminal escapes.
 */
export function createProgressDisplay(options: ProgressDisplayOptions): ProgressDisplay {
  const { stream } = options
  const now = options.now ?? (() => performance.now())
  const tty = stream.isTTY === true
  const layers = new Map<number, Layer>()
  const phases = new Map<PullPhase, Phase>()
  let resolved: Resolved | undefined
  let committed: { bundle: string; ms: number } | undefined
  let warnings: string[] = []
  let drawn = 0
  let dirty = false
  let lastDraw = Number.NEGATIVE_INFINITY
  let timer: NodeJS.Timeout | undefined
  let closed = false

  const layerCount = () => resolved?.layers ?? Math.max(0, ...[...layers.keys()].map((i) => i + 1))
  const layerName = (index: number) => `layer ${index + 1}/${layerCount()}`

  function apply(event: PullEvent): string | undefined {
    const t = now()
    switch (event.type) {
      case 'phase': {
        if (event.state === 'start') phases.set(event.phase, { started: t, ms: undefined })
        else phases.set(event.phase, { started: phases.get(event.phase)?.started ?? t, ms: event.ms })
        // The resolved line already says how long resolving took.
        if (event.state === 'start' || event.phase === 'resolve') return undefined
        return `${event.phase} done in ${formatDuration(event.ms)}`
      }
      case 'resolved':
        resolved = event
        return `${clean(event.source)}: ${event.digest} (${clean(event.platform)}), ${plural(event.layers, 'layer')}, ${formatBytes(event.bytes)}, resolved in ${formatDuration(event.ms)}`
      case 'layer-cached':
        layers.set(event.index, { ...layerAt(event, t), size: event.size, state: 'cached' })
        return `${layerName(event.index)} ${shortDigest(event.digest)}: cached, ${formatBytes(event.size)}`
      case 'layer-start':
        layers.set(event.index, { ...layerAt(event, t), size: event.size })
        return undefined
      case 'layer-progress': {
        const layer = layers.get(event.index) ?? layerAt(event, t)
        layers.set(event.index, { ...layer, bytesIn: event.bytesIn, bytesOut: event.bytesOut, measured: t })
        return undefined
      }
      case 'layer-done': {
        const layer = layers.get(event.index) ?? layerAt(event, t)
        const { bytesIn, bytesOut, ms } = event
        layers.set(event.index, { ...layer, state: 'done', bytesIn, bytesOut, ms, measured: t })
        return `${layerName(event.index)} ${shortDigest(event.digest)}: ${formatBytes(bytesIn)} → ${formatBytes(bytesOut)}, ${event.entries} entries in ${formatDuration(ms)}`
      }
      case 'warning': {
        const line = `ocipull: warning: ${clean(event.message)}`
        if (!tty) return line
        warnings.push(line) // written above the block at the next redraw
        return undefined
      }
      case 'committed':
        committed = event
        return `committed ${clean(event.bundle)} in ${formatDuration(event.ms)}`
    }
  }

  /** The block's lines for a terminal `width` cells wide, each already cut to fit. */
  function frame(width: number, rows: number | undefined): string[] {
    const t = now()
    const phaseText = (name: PullPhase) => {
      const p = phases.get(name)
      if (!p) return undefined
      return p.ms === undefined
        ? `${name} ${formatDuration(t - p.started)}…`
        : `${name} ✓ ${formatDuration(p.ms)}`
    }
    const phaseLine = (names: PullPhase[]) => names.flatMap((n) => phaseText(n) ?? []).join('   ')
    const head: string[] = []
    const resolve = phases.get('resolve')
    if (resolved) {
      const r = resolved
      const start = `resolve  ✓ ${formatDuration(resolve?.ms ?? r.ms)}   `
      const facts = ` ${clean(r.platform)}, ${plural(r.layers, 'layer')}, ${formatBytes(r.bytes)}`
      const digest = ` ${shortDigest(r.digest)}`
      // The source can be a long path: keep both of its ends and the facts after it; the
      // digest goes first when space is short.
      const source = clean(r.source)
      const room = width - start.length - facts.length
      const keepDigest = room - digest.length >= Math.min(24, source.length)
      const shown = elide(source, Math.max(16, room - (keepDigest ? digest.length : 0)))
      head.push(`${start}${shown}${keepDigest ? digest : ''}${facts}`)
    } else if (resolve) head.push(`resolve  ${formatDuration(t - resolve.started)}…`)
    const before = phaseLine(PHASES_BEFORE)
    if (before) head.push(before)
    const tail: string[] = []
    const after = phaseLine(PHASES_AFTER)
    if (after) tail.push(after)
    if (committed) tail.push(`committed ✓ ${formatDuration(committed.ms)}   ${clean(committed.bundle)}`)
    // A block taller than the screen cannot be redrawn in place: then only a summary and
    // the unfinished layers get lines.
    const budget = (rows ?? Number.POSITIVE_INFINITY) - 1 - head.length - tail.length
    return [...head, ...layerLines(width, budget), ...tail].map((line) => truncate(line, width))
  }

  function layerLines(width: number, budget: number): string[] {
    const count = layerCount()
    const indices = Array.from({ length: count }, (_, i) => i)
    const label = (i: number) => layerName(i).padEnd(layerName(count - 1).length)
    const digestWidth = width >= 72 ? 19 : 8
    const line = (i: number) => {
      const layer = layers.get(i)
      if (!layer) return `${label(i)} ${''.padEnd(digestWidth)} waiting`
      const hex = layer.digest.slice(layer.digest.indexOf(':') + 1)
      const shown = clean(digestWidth === 8 ? hex.slice(0, 8) : shortDigest(layer.digest))
      const start = `${label(i)} ${shown.padEnd(digestWidth)} `
      if (layer.state === 'cached') return `${start}cached ${formatBytes(layer.size)}`
      if (layer.state === 'done')
        return `${start}done ${formatBytes(layer.bytesIn)} → ${formatBytes(layer.bytesOut)} in ${formatDuration(layer.ms)}`
      return start + running(layer, width - start.length)
    }
    if (indices.length <= budget) return indices.map(line)
    const unfinished = indices.filter(
      (i) => layers.get(i)?.state !== 'done' && layers.get(i)?.state !== 'cached',
    )
    unfinished.sort((a, b) => Number(layers.has(b)) - Number(layers.has(a)) || a - b)
    const summary = `layers   ${count - unfinished.length}/${count} finished`
    return [summary, ...unfinished.slice(0, Math.max(0, budget - 1)).map(line)]
  }

  function draw(): void {
    clearTimeout(timer)
    timer = undefined
    lastDraw = now()
    const lines = frame(Math.max(10, (stream.columns || 80) - 1), stream.rows || undefined)
    // Back to the top of the previous block, rewrite each line, then clear what is left below.
    let out = drawn > 0 ? `\r\x1b[${drawn}A` : ''
    for (const line of [...warnings, ...lines]) out += `\x1b[2K${line}\n`
    stream.write(`${out}\x1b[J`)
    warnings = []
    drawn = lines.length
    dirty = false
  }

  return {
    onEvent(event) {
      if (closed) return
      const line = apply(event)
      dirty = true
      if (!tty) {
        if (line !== undefined) stream.write(`${line}\n`)
        return
      }
      const wait = lastDraw + REDRAW_MS - now()
      if (event.type === 'committed' || wait <= 0) draw()
      else timer ??= setTimeout(draw, wait).unref()
    },
    close() {
      if (closed) return
      closed = true
      clearTimeout(timer)
      // A running phase's time has moved on even when no event came since the last frame.
      const running = [...phases.values()].some((p) => p.ms === undefined)
      if (tty && (dirty || (running && drawn > 0))) draw()
    },
  }
}

function layerAt(event: { digest: string }, t: number): Layer {
  const { digest } = event
  return { digest, size: 0, state: 'running', bytesIn: 0, bytesOut: 0, started: t, measured: t, ms: 0 }
}

/** `[#####-----]  12.3/25.0 MB  41.2 MB/s` in `room` cells; the bar gives way when space is short. */
function running(layer: Layer, room: number): string {
  const elapsed = layer.measured - layer.started
  const rate = elapsed > 0 && layer.bytesIn > 0 ? `  ${formatBytes((layer.bytesIn * 1000) / elapsed)}/s` : ''
  if (layer.size <= 0) return `${formatBytes(layer.bytesIn)}${rate}`
  const fraction = Math.min(1, layer.bytesIn / layer.size)
  const numbers = `  ${bytesOf(layer.bytesIn, layer.size)}${rate}`
  const barWidth = Math.min(30, room - numbers.length - 2)
  if (barWidth < 6) return `${Math.floor(fraction * 100)}%${numbers}`
  const filled = Math.floor(fraction * barWidth)
  return `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]${numbers}`
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB']

/** Decimal units, as docker prints them: `812 B`, `1.5 kB`, `52.1 MB`. */
export function formatBytes(n: number): string {
  const [value, unit] = scaled(n, n)
  return unit === 'B' ? `${Math.round(n)} B` : `${value.toFixed(1)} ${unit}`
}

/** `12.3/25.0 MB`: both in the unit of the total. */
function bytesOf(part: number, total: number): string {
  const [value, unit, divisor] = scaled(total, total)
  if (unit === 'B') return `${Math.round(part)}/${Math.round(total)} B`
  return `${(part / divisor).toFixed(1)}/${value.toFixed(1)} ${unit}`
}

function scaled(n: number, pick: number): [number, string, number] {
  let i = 0
  let divisor = 1
  while (pick / divisor >= 999.95 && i < UNITS.length - 1) {
    divisor *= 1000
    i++
  }
  return [n / divisor, UNITS[i] as string, divisor]
}

/** `0.01s` under a tenth of a second, `0.6s` under a minute, then `2m05s`. */
export function formatDuration(ms: number): string {
  if (ms < 95) return `${(Math.max(0, ms) / 1000).toFixed(2)}s`
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)}s`
  const s = Math.round(ms / 1000)
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
}

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`

/** Replaces control and format characters (ESC, CR, bidi overrides, …) with `?`. */
function clean(s: string): string {
  return s.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '?')
}

/** Keeps the start and end of `s`, at most `max` characters. */
function elide(s: string, max: number): string {
  if (s.length <= max) return s
  const head = Math.ceil((max - 1) / 2)
  return `${s.slice(0, head)}…${s.slice(s.length - (max - 1 - head))}`
}

/** Cuts `s` to `width` terminal cells, ending in `…` when cut. */
function truncate(s: string, width: number): string {
  const chars = [...s]
  if (chars.reduce((n, ch) => n + cellWidth(ch), 0) <= width) return s
  let used = 0
  let out = ''
  for (const ch of chars) {
    used += cellWidth(ch)
    if (used > width - 1) break
    out += ch
  }
  return `${out}…`
}

const WIDE: [number, number][] = [
  [0x1100, 0x115f],
  [0x2e80, 0xa4cf],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe30, 0xfe4f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x1f300, 0x1faff],
  [0x20000, 0x3fffd],
]

/** 0 for combining marks, 2 for East Asian wide characters and most emoji, else 1. */
function cellWidth(ch: string): number {
  if (/\p{M}/u.test(ch)) return 0
  const cp = ch.codePointAt(0) ?? 0
  return WIDE.some(([lo, hi]) => cp >= lo && cp <= hi) ? 2 : 1
}

/** Shows events: JSON lines on stdout with --json; otherwise a progress display on stderr. */
export function progressPrinter(io: Pick<CommandIo, 'stdout' | 'stderr'>, json: boolean): ProgressDisplay {
  if (!json) return createProgressDisplay({ stream: io.stderr })
  return { onEvent: (event) => io.stdout.write(`${JSON.stringify(event)}\n`), close: () => {} }
}
