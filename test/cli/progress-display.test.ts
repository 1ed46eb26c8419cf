import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest'
import { createProgressDisplay, formatBytes, formatDuration } from '../../src/cli/progress-display.js'
import type { PullEvent } from '../../src/events.js'
import { runCli } from '../helpers/cli.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { BUSYBOX_LAYOUT, fixturesInfo } from '../rig/index.js'

/**
 * The progress display is a pure renderer, so its boundary is the stream: these tests give it a
 * stream that records what is written (with fixed isTTY/columns/rows) and a clock they move by
 * hand, then read the output back through a small terminal model to get what a user would see.
 */

afterAll(removeTempDirs)
afterEach(() => {
  vi.useRealTimers()
})

const D1 = `sha256:1a2b3c4d5e6f${'0'.repeat(52)}`
const D2 = `sha256:2b3c4d5e6f7a${'1'.repeat(52)}`
const D3 = `sha256:3c4d5e6f7a8b${'2'.repeat(52)}`
const IMAGE = `sha256:abcdef012345${'9'.repeat(52)}`
const GZ = 'application/vnd.oci.image.layer.v1.tar+gzip'

/** A step: an event, or a number of milliseconds for the clock to move on. */
type Step = PullEvent | number

type Terminal = { isTTY: boolean; columns?: number; rows?: number }

/** Plays `steps` into a display on a recording stream; `close` is called at the end unless told. */
function play(steps: Step[], terminal: Terminal, options: { close?: boolean } = {}) {
  const writes: string[] = []
  let clock = 1000
  const display = createProgressDisplay({
    stream: { ...terminal, write: (chunk: string) => writes.push(chunk) },
    now: () => clock,
  })
  for (const step of steps) {
    if (typeof step === 'number') clock += step
    else display.onEvent(step)
  }
  if (options.close !== false) display.close()
  return { writes, text: writes.join(''), screen: screen(writes.join('')) }
}

/**
 * What a terminal shows after `text`: printable characters, CR, LF (as CR LF, like a tty's
 * onlcr), and the only escape sequences the display may use: ESC[nA, ESC[2K and ESC[J. Any
 * other escape sequence fails the test, since it would come from unsanitised input.
 */
function screen(text: string): string[] {
  const lines: string[] = ['']
  let row = 0
  let col = 0
  const put = (ch: string) => {
    const line = (lines[row] ?? '').padEnd(col)
    lines[row] = line.slice(0, col) + ch + line.slice(col + 1)
    col++
  }
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string
    if (ch === '\n') {
      row++
      col = 0
      lines[row] ??= ''
    } else if (ch === '\r') col = 0
    else if (ch === '\x1b') {
      const m = /^\x1b\[(\d*)([AKJ])/.exec(text.slice(i))
      if (!m) throw new Error(`unexpected escape sequence ${JSON.stringify(text.slice(i, i + 8))}`)
      if (m[2] === 'A') row = Math.max(0, row - Number(m[1] || 1))
      else if (m[2] === 'K' && m[1] === '2') lines[row] = ''
      else if (m[2] === 'J' && m[1] === '') {
        lines[row] = (lines[row] ?? '').slice(0, col)
        lines.length = row + 1
      } else throw new Error(`unexpected escape sequence ${JSON.stringify(m[0])}`)
      i += m[0].length - 1
    } else put(ch)
  }
  while (lines.at(-1) === '') lines.pop()
  return lines
}

const stripAnsi = (s: string) => s.replace(/\x1b\[\d*[A-Za-z]|\r/g, '')

const resolved = (layers: number, bytes: number): PullEvent => ({
  type: 'resolved',
  source: 'docker://registry.example/app:1.0',
  digest: IMAGE,
  platform: 'linux/amd64',
  layers,
  bytes,
  ms: 210,
})
const start = (index: number, digest: string, size: number): PullEvent => ({
  type: 'layer-start',
  index,
  digest,
  size,
  mediaType: GZ,
})
const progress = (index: number, digest: string, bytesIn: number, bytesOut = bytesIn * 3): PullEvent => ({
  type: 'layer-progress',
  index,
  digest,
  bytesIn,
  bytesOut,
})
const done = (index: number, digest: string, bytesIn: number, bytesOut: number, ms: number): PullEvent => ({
  type: 'layer-done',
  index,
  digest,
  bytesIn,
  bytesOut,
  entries: 42,
  ms,
})
const phase = (name: 'resolve' | 'layers' | 'snapshot' | 'bundle' | 'policy', ms?: number): PullEvent =>
  ms === undefined
    ? { type: 'phase', phase: name, state: 'start', ms: 0 }
    : { type: 'phase', phase: name, state: 'end', ms }
const warning = (message: string): PullEvent => ({ type: 'warning', code: 'W_TEST', path: 'x', message })
const committed: PullEvent = { type: 'committed', bundle: '/tmp/bundle', ms: 1530 }

/** Three layers downloading at once, their events interleaved; layer 2 is already stored. */
const interleaved: Step[] = [
  phase('resolve'),
  210,
  resolved(3, 52_100_000),
  phase('resolve', 210),
  phase('layers'),
  { type: 'layer-cached', index: 1, digest: D2, size: 2_100_000 },
  start(0, D1, 25_000_000),
  start(2, D3, 25_000_000),
  300,
  progress(2, D3, 4_000_000),
  progress(0, D1, 12_300_000),
]
const finished: Step[] = [
  ...interleaved,
  300,
  done(2, D3, 25_000_000, 80_100_000, 600),
  200,
  done(0, D1, 25_000_000, 71_000_000, 800),
  phase('layers', 800),
  phase('snapshot'),
  400,
  phase('snapshot', 400),
  phase('bundle'),
  phase('bundle', 10),
  committed,
]

describe('progress display on a terminal', () => {
  test.each<{ name: string; steps: Step[]; terminal: Terminal; want: string[] }>([
    {
      name: 'interleaved layers in flight',
      steps: interleaved,
      terminal: { isTTY: true, columns: 120 },
      want: [
        'resolve  ✓ 0.2s   docker://registry.example/app:1.0 sha256:abcdef012345 linux/amd64, 3 layers, 52.1 MB',
        'layer 1/3 sha256:1a2b3c4d5e6f [##############----------------]  12.3/25.0 MB  41.0 MB/s',
        'layer 2/3 sha256:2b3c4d5e6f7a cached 2.1 MB',
        'layer 3/3 sha256:3c4d5e6f7a8b [####--------------------------]  4.0/25.0 MB  13.3 MB/s',
        'layers 0.3s…',
      ],
    },
    {
      name: 'a finished pull, with every phase timed',
      steps: finished,
      terminal: { isTTY: true, columns: 120 },
      want: [
        'resolve  ✓ 0.2s   docker://registry.example/app:1.0 sha256:abcdef012345 linux/amd64, 3 layers, 52.1 MB',
        'layer 1/3 sha256:1a2b3c4d5e6f done 25.0 MB → 71.0 MB in 0.8s',
        'layer 2/3 sha256:2b3c4d5e6f7a cached 2.1 MB',
        'layer 3/3 sha256:3c4d5e6f7a8b done 25.0 MB → 80.1 MB in 0.6s',
        'layers ✓ 0.8s   snapshot ✓ 0.4s   bundle ✓ 0.01s',
        'committed ✓ 1.5s   /tmp/bundle',
      ],
    },
    {
      name: 'layers not started yet wait; the running phase shows its time so far',
      steps: [phase('resolve'), 160, resolved(2, 3_000), phase('resolve', 160), phase('policy'), 40],
      terminal: { isTTY: true, columns: 100 },
      want: [
        'resolve  ✓ 0.2s   docker://regist…example/app:1.0 sha256:abcdef012345 linux/amd64, 2 layers, 3.0 kB',
        'policy 0.04s…',
        'layer 1/2                     waiting',
        'layer 2/2                     waiting',
      ],
    },
    {
      name: 'before the image is resolved',
      steps: [phase('resolve'), 1234],
      terminal: { isTTY: true, columns: 100 },
      want: ['resolve  1.2s…'],
    },
    {
      name: '40 columns: every line cut to 39 cells, never wrapped',
      steps: interleaved,
      terminal: { isTTY: true, columns: 40 },
      want: [
        'resolve  ✓ 0.2s   docker:/…app:1.0 lin…',
        'layer 1/3 1a2b3c4d 49%  12.3/25.0 MB  …',
        'layer 2/3 2b3c4d5e cached 2.1 MB',
        'layer 3/3 3c4d5e6f 16%  4.0/25.0 MB  1…',
        'layers 0.3s…',
      ],
    },
    {
      name: 'a block taller than the screen: a summary and the unfinished layers',
      steps: [
        resolved(8, 8_000),
        ...[0, 1, 2, 3, 4].map((i) => done(i, D1, 1000, 3000, 5)),
        start(6, D3, 1000),
        phase('layers'),
      ],
      terminal: { isTTY: true, columns: 80, rows: 5 },
      want: [
        'resolve  ✓ 0.2s   docker://regist…example/app:1.0 linux/amd64, 8 layers, 8.0 kB',
        'layers   5/8 finished',
        'layer 7/8 sha256:3c4d5e6f7a8b [------------------------------]  0.0/1.0 kB',
        'layers 0.00s…',
      ],
    },
  ])('$name', ({ steps, terminal, want }) => {
    const { screen: shown, text } = play(steps, terminal)
    expect(shown).toEqual(want)
    const width = (terminal.columns ?? 80) - 1
    for (const line of stripAnsi(text).split('\n')) expect([...line].length).toBeLessThanOrEqual(width)
  })

  test('escape sequences: cursor up over the last block, clear each line, clear below', () => {
    const { writes } = play([resolved(1, 10), start(0, D1, 10), 100, done(0, D1, 10, 30, 100)], {
      isTTY: true,
      columns: 80,
    })
    expect(writes).toEqual([
      '\x1b[2Kresolve  ✓ 0.2s   docker://registry.example/app:1.0 linux/amd64, 1 layer, 10 B\n' +
        '\x1b[2Klayer 1/1                     waiting\n\x1b[J',
      '\r\x1b[2A\x1b[2Kresolve  ✓ 0.2s   docker://registry.example/app:1.0 linux/amd64, 1 layer, 10 B\n' +
        '\x1b[2Klayer 1/1 sha256:1a2b3c4d5e6f done 10 B → 30 B in 0.1s\n\x1b[J',
      // close() adds nothing: the last frame is already the final one
    ])
  })

  test('throttling: at most one redraw per 100 ms of the clock, but committed always redraws', () => {
    const steps: Step[] = [resolved(1, 100_000_000), start(0, D1, 100_000_000)]
    for (let i = 1; i <= 20; i++) steps.push(20, progress(0, D1, i * 1_000_000))
    steps.push(1, committed)
    const { writes, screen: shown } = play(steps, { isTTY: true, columns: 100 }, { close: false })
    // t=0 draws; layer-start comes in the same ms; 20 progress events over 400 ms draw at
    // t=100, 200, 300 and 400; committed at t=401 draws although 1 ms passed.
    expect(writes).toHaveLength(6)
    expect(shown[1]).toContain('20.0/100.0 MB')
    expect(shown.at(-1)).toBe('committed ✓ 1.5s   /tmp/bundle')
  })

  test('a change held back by the throttle is drawn when the interval ends', () => {
    vi.useFakeTimers()
    const writes: string[] = []
    const display = createProgressDisplay({
      stream: { isTTY: true, columns: 100, write: (c: string) => writes.push(c) },
      now: () => Date.now(),
    })
    display.onEvent(resolved(1, 1_000_000))
    display.onEvent(start(0, D1, 1_000_000))
    vi.advanceTimersByTime(30)
    display.onEvent(progress(0, D1, 500_000))
    expect(writes).toHaveLength(1)
    vi.advanceTimersByTime(69)
    expect(writes).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(writes).toHaveLength(2)
    expect(screen(writes.join(''))[1]).toContain('0.5/1.0 MB')
    vi.advanceTimersByTime(10)
    display.onEvent(progress(0, D1, 600_000))
    expect(writes).toHaveLength(2)
    display.close() // draws the held-back change now, and cancels the timer
    expect(writes).toHaveLength(3)
    expect(screen(writes.join(''))[1]).toContain('0.6/1.0 MB')
    vi.advanceTimersByTime(1000)
    display.onEvent(progress(0, D1, 700_000))
    expect(writes).toHaveLength(3)
  })

  test('warnings are written above the block and survive later redraws', () => {
    const steps: Step[] = [resolved(2, 2_000_000), start(0, D1, 1_000_000), start(1, D2, 1_000_000)]
    steps.push(150, warning('layer sha256:1a2b: entry "dev/null": cannot make a device without root'))
    for (let i = 1; i <= 5; i++) steps.push(150, progress(i % 2, i % 2 ? D2 : D1, i * 100_000))
    steps.push(10, warning('second'), 5, warning('third'), 150, done(0, D1, 1_000_000, 2_000_000, 900))
    const { screen: shown } = play(steps, { isTTY: true, columns: 100 })
    expect(shown.slice(0, 3)).toEqual([
      'ocipull: warning: layer sha256:1a2b: entry "dev/null": cannot make a device without root',
      'ocipull: warning: second',
      'ocipull: warning: third',
    ])
    expect(shown.slice(3)).toHaveLength(3)
    expect(shown[3]).toMatch(/^resolve /)
  })

  test('hostile strings from the image cannot write their own escape sequences', () => {
    const evil = 'a\x1b[2J\x1b]0;owned\x07b\r\nc\u202Ed\u009b31m'
    const steps: Step[] = [
      { ...(resolved(1, 1) as Extract<PullEvent, { type: 'resolved' }>), source: evil, platform: evil },
      warning(evil),
      { type: 'committed', bundle: evil, ms: 1 },
    ]
    // screen() throws on any escape sequence but the display's own.
    const { screen: shown } = play(steps, { isTTY: true, columns: 200 })
    expect(shown[0]).toBe('ocipull: warning: a?[2J?]0;owned?b??c?d?31m')
    const plain = play(steps, { isTTY: false })
    expect(plain.text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/)
    expect(plain.text.split('\n')).toHaveLength(4)
  })
})

describe('progress display on a pipe or file', () => {
  test('one plain line per notable event, no escape codes', () => {
    const { text } = play([...interleaved.slice(0, 8), warning('w1'), ...finished.slice(8)], {
      isTTY: false,
      columns: 40,
    })
    expect(text).not.toContain('\x1b')
    expect(text.split('\n')).toEqual([
      `docker://registry.example/app:1.0: ${IMAGE} (linux/amd64), 3 layers, 52.1 MB, resolved in 0.2s`,
      'layer 2/3 sha256:2b3c4d5e6f7a: cached, 2.1 MB',
      'ocipull: warning: w1',
      'layer 3/3 sha256:3c4d5e6f7a8b: 25.0 MB → 80.1 MB, 42 entries in 0.6s',
      'layer 1/3 sha256:1a2b3c4d5e6f: 25.0 MB → 71.0 MB, 42 entries in 0.8s',
      'layers done in 0.8s',
      'snapshot done in 0.4s',
      'bundle done in 0.01s',
      'committed /tmp/bundle in 1.5s',
      '',
    ])
  })

  test('nothing is written for progress alone, and close adds nothing', () => {
    expect(play([start(0, D1, 10), progress(0, D1, 5), phase('layers')], { isTTY: false }).text).toBe('')
  })

  test('ocipull unpack of a local layout prints its progress as plain lines', async () => {
    const bundle = join(await makeTempDir(), 'bundle')
    const r = await runCli(['unpack', '--bundle', bundle, `oci:${BUSYBOX_LAYOUT}:latest`])
    expect(r.code).toBe(0)
    expect(r.stderr).not.toContain('\x1b')
    const { busybox } = fixturesInfo()
    const lines = r.stderr.trimEnd().split('\n')
    expect(lines[0]).toMatch(
      new RegExp(
        `^oci:.*busybox:latest: ${busybox.digest} \\(linux/amd64\\), 3 layers, [\\d.]+ kB, resolved in`,
      ),
    )
    const layerLine =
      /^layer (\d)\/3 (sha256:[0-9a-f]{12}): \d+(?:\.\d)? [kM]?B → \d+(?:\.\d)? [kM]?B, \d+ entries in /
    expect(lines.slice(1, 4).map((l) => layerLine.exec(l)?.slice(1, 3))).toEqual(
      busybox.layers.map((l, i) => [String(i + 1), l.digest.slice(0, 19)]),
    )
    expect(lines.at(-1)).toBe(`committed ${bundle} in ${/in (.*)$/.exec(lines.at(-1) ?? '')?.[1]}`)
    expect(r.stdout).toBe(`unpacked oci:${BUSYBOX_LAYOUT}:latest (${busybox.digest}) into ${bundle}\n`)
  })

  test('--json still prints NDJSON events on stdout and nothing on stderr', async () => {
    const bundle = join(await makeTempDir(), 'bundle')
    const r = await runCli(['unpack', '--json', '--bundle', bundle, `oci:${BUSYBOX_LAYOUT}:latest`])
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    const events = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as PullEvent)
    expect(events[0]).toMatchObject({ type: 'phase', phase: 'resolve', state: 'start' })
    expect(events[1]?.type).toBe('resolved')
    expect(events.filter((e) => e.type === 'layer-done')).toHaveLength(3)
    expect(events.at(-1)).toMatchObject({ type: 'committed', bundle })
  })
})

describe('formatting', () => {
  test.each([
    [0, '0 B'],
    [812, '812 B'],
    [999, '999 B'],
    [1000, '1.0 kB'],
    [1499, '1.5 kB'],
    [999_949, '999.9 kB'],
    [999_950, '1.0 MB'],
    [52_100_000, '52.1 MB'],
    [3.2e9, '3.2 GB'],
    [7e15, '7000.0 TB'],
  ])('formatBytes(%d) = %s', (n, want) => expect(formatBytes(n)).toBe(want))

  test.each([
    [0, '0.00s'],
    [7, '0.01s'],
    [94, '0.09s'],
    [150, '0.1s'],
    [600, '0.6s'],
    [59_000, '59.0s'],
    [59_950, '1m00s'],
    [125_400, '2m05s'],
  ])('formatDuration(%d) = %s', (ms, want) => expect(formatDuration(ms)).toBe(want))
})
