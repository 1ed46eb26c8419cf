import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, describe, expect, test } from 'vitest'
import { type UnpackLimits, unpackTar } from '../../src/unpack/unpack-tar.js'
import {
  buildTar,
  buildTarFull,
  paxHeader,
  type TarFullSpec,
  tarEntry,
  tarEntryFull,
} from '../helpers/tar-builder.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'

/**
 * Threat: an archive that costs unbounded disk, inodes, memory or time: too many entries, a
 * declared size far beyond the data, endless padding after the end marker, giant PAX headers or
 * long names (which a naive parser buffers whole), over-long or over-deep paths, symlink loops.
 * Each is ERR_LIMIT_EXCEEDED (or ERR_PATH_UNSAFE for loops) early, never a hang or an OOM.
 */

afterAll(removeTempDirs)

async function newRoot(): Promise<string> {
  const root = join(await makeTempDir('ocipull-bomb-'), 'root')
  mkdirSync(root)
  return root
}

function unpack(input: Buffer | Readable, root: string, limits?: UnpackLimits) {
  const stream = Buffer.isBuffer(input) ? Readable.from([input]) : input
  return unpackTar(stream, root, {
    whiteouts: 'apply',
    what: 'layer sha256:ab12',
    ...(limits ? { limits } : {}),
  })
}

/** A stream that yields `head` and then zero-filled (or `fill`) chunks for ever. */
function endless(head: Buffer, fill = 0): Readable {
  let sent = false
  let produced = 0
  const chunk = Buffer.alloc(1 << 16, fill)
  const r = new Readable({
    read() {
      produced += 1
      if (produced > 100_000) this.destroy(new Error('the extractor kept reading: no limit applied'))
      else this.push(sent ? chunk : head)
      sent = true
    },
  })
  return r
}

describe('tar bombs', () => {
  test('too many entries stops at the limit', async () => {
    const root = await newRoot()
    const tar = buildTarFull(Array.from({ length: 5000 }, (_, i) => ({ name: `f${i}` }) as TarFullSpec))
    await expect(unpack(tar, root, { maxEntries: 1000 })).rejects.toMatchObject({
      code: 'ERR_LIMIT_EXCEEDED',
      message: 'layer sha256:ab12: more than 1000 entries',
    })
    expect(readdirSync(root).length).toBeLessThanOrEqual(1000)
  })

  test('a declared size of 8 EiB-ish (base-256) is refused before any byte is written', async () => {
    const root = await newRoot()
    const tar = buildTar([{ name: 'huge', base256Size: true, headerSize: 2 ** 52 }], { end: false })
    await expect(unpack(tar, root)).rejects.toMatchObject({ code: 'ERR_LIMIT_EXCEEDED' })
    expect(existsSync(join(root, 'huge'))).toBe(false)
  })

  test('a file larger than maxBytes is refused at its header', async () => {
    const root = await newRoot()
    const tar = buildTarFull([{ name: 'big', data: Buffer.alloc(3 << 20) }])
    await expect(unpack(tar, root, { maxBytes: 1 << 20 })).rejects.toMatchObject({
      code: 'ERR_LIMIT_EXCEEDED',
    })
    expect(existsSync(join(root, 'big'))).toBe(false)
  })

  test('endless zeros after the end marker stop at maxBytes', async () => {
    const root = await newRoot()
    const input = endless(buildTar([{ name: 'a', data: 'x' }]))
    await expect(unpack(input, root, { maxBytes: 16 << 20 })).rejects.toMatchObject({
      code: 'ERR_LIMIT_EXCEEDED',
    })
  })

  test('a chain of PAX headers without an entry is bounded by maxBytes', async () => {
    const root = await newRoot()
    const pax = tarEntry(paxHeader({ comment: 'x'.repeat(60000) }))
    const input = Readable.from(
      (function* () {
        for (let i = 0; i < 100_000; i++) yield pax
      })(),
    )
    await expect(unpack(input, root, { maxBytes: 32 << 20 })).rejects.toMatchObject({
      code: 'ERR_LIMIT_EXCEEDED',
    })
  })

  test('a PAX header declared at 1 GiB is refused without buffering it', async () => {
    const root = await newRoot()
    const before = process.memoryUsage().arrayBuffers
    const input = endless(tarEntryFull({ name: 'p', type: 'x', headerSize: 1 << 30 }).subarray(0, 512), 0x31)
    await expect(unpack(input, root)).rejects.toMatchObject({
      code: 'ERR_LIMIT_EXCEEDED',
      message: expect.stringMatching(/pax header at offset 0: 1073741824 bytes exceeds 1048576/),
    })
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20)
  })

  test('a GNU long name declared at 1 GiB is refused', async () => {
    const root = await newRoot()
    const input = endless(
      tarEntryFull({ name: '././@LongLink', type: 'L', headerSize: 1 << 30 }).subarray(0, 512),
      0x61,
    )
    await expect(unpack(input, root)).rejects.toMatchObject({ code: 'ERR_LIMIT_EXCEEDED' })
  })

  test('names and link targets beyond maxPathLength', async () => {
    const root = await newRoot()
    const long = `${'d/'.repeat(2100)}f`
    await expect(unpack(buildTarFull([{ name: 'x', pax: { path: long } }]), root)).rejects.toMatchObject({
      code: 'ERR_LIMIT_EXCEEDED',
    })
    const link = buildTarFull([{ name: 'l', type: '2', linkname: 'x', pax: { linkpath: 'a'.repeat(5000) } }])
    await expect(unpack(link, root)).rejects.toMatchObject({ code: 'ERR_LIMIT_EXCEEDED' })
  })

  test('deep nesting within the limit works (no recursion blow-up)', async () => {
    const root = await newRoot()
    const deep = `${'d/'.repeat(1500)}f`
    await unpack(buildTarFull([{ name: 'x', data: 'deep', pax: { path: deep } }]), root)
    expect(existsSync(join(root, deep))).toBe(true)
  })

  test('symlink loops and long chains are ERR_PATH_UNSAFE', async () => {
    const root = await newRoot()
    const chain: TarFullSpec[] = Array.from({ length: 300 }, (_, i) => ({
      name: `l${i}`,
      type: '2',
      linkname: i === 299 ? 'real' : `l${i + 1}`,
    }))
    await expect(unpack(buildTarFull([...chain, { name: 'l0/x', data: 'x' }]), root)).rejects.toMatchObject({
      code: 'ERR_PATH_UNSAFE',
      message: expect.stringMatching(/too many levels of symbolic links/),
    })
  })
})
