import { mkdir, open, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, test } from 'vitest'
import { isOcipullError } from '../../src/errors.js'
import {
  findTarFile,
  indexTar,
  normalizeTarPath,
  openTarArchive,
  type TarIndex,
} from '../../src/sources/tar-index.js'
import { rejection } from '../helpers/failure.js'
import {
  buildTar,
  gnuLongName,
  paxHeader,
  type TarEntrySpec,
  tarEntry,
  tarHeader,
} from '../helpers/tar-builder.js'
import { makeTempDir, useTempFiles } from '../helpers/temp-dirs.js'
import { requireTool, run } from '../rig/index.js'

const tars = useTempFiles('t')
const writeTar = tars.write

async function indexBytes(bytes: Buffer, options: { maxEntries?: number } = {}): Promise<TarIndex> {
  const archive = await openTarArchive(await writeTar(bytes), { what: 'test.tar', ...options })
  await archive.close()
  return archive.index
}

/** The contents of each regular file, read back at the offsets the index gives. */
function filesOf(index: TarIndex, bytes: Buffer): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [path, e] of index.entries) {
    if (e.type === 'file') out[path] = bytes.subarray(e.offset, e.offset + e.size).toString()
  }
  return out
}

const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(60)}.txt`

describe('indexTar: formats', () => {
  test.each<[string, TarEntrySpec[], Record<string, string>]>([
    [
      'ustar',
      [
        { name: 'a.txt', data: 'alpha' },
        { name: 'dir/', type: '5' },
        { name: 'dir/b', data: 'beta' },
      ],
      { 'a.txt': 'alpha', 'dir/b': 'beta' },
    ],
    [
      './ prefix and doubled slashes',
      [
        { name: './', type: '5' },
        { name: './x//y', data: 'xy' },
      ],
      { 'x/y': 'xy' },
    ],
    ['v7 header without magic', [{ name: 'old', data: 'v7', magic: 'v7' }], { old: 'v7' }],
    [
      'v7 directory as a regular file ending in /',
      [
        { name: 'd/', magic: 'v7' },
        { name: 'd/f', data: '1' },
      ],
      { 'd/f': '1' },
    ],
    [
      'ustar prefix field',
      [{ name: 'name.txt', prefix: 'some/long/prefix', data: 'p' }],
      { 'some/long/prefix/name.txt': 'p' },
    ],
    [
      'gnu magic ignores the prefix area',
      [{ name: 'g.txt', prefix: 'junk', magic: 'gnu', data: 'g' }],
      { 'g.txt': 'g' },
    ],
    [
      'GNU long name (L)',
      [gnuLongName(long), { name: long.slice(0, 99), data: 'long', magic: 'gnu' }],
      { [long]: 'long' },
    ],
    [
      'PAX path',
      [paxHeader({ path: long, mtime: '1.5' }), { name: 'short', data: 'pax' }],
      { [long]: 'pax' },
    ],
    [
      'PAX size overrides the header size',
      [paxHeader({ size: '3' }), { name: 's', data: 'abc', headerSize: 0 }, { name: 't', data: 'T' }],
      { s: 'abc', t: 'T' },
    ],
    [
      'PAX beats GNU long name',
      [gnuLongName('from-L'), paxHeader({ path: 'from-pax' }), { name: 'h', data: '!' }],
      { 'from-pax': '!' },
    ],
    ['base-256 size', [{ name: 'b256', data: 'hello', base256Size: true }], { b256: 'hello' }],
    ['contiguous file (7)', [{ name: 'c', type: '7', data: 'cc' }], { c: 'cc' }],
    [
      'empty file and exact block sizes',
      [
        { name: 'e', data: '' },
        { name: 'k', data: 'k'.repeat(512) },
      ],
      { e: '', k: 'k'.repeat(512) },
    ],
    [
      'global PAX header is skipped',
      [
        { name: 'g', type: 'g', data: '9 a=bcd\n' },
        { name: 'after', data: 'A' },
      ],
      { after: 'A' },
    ],
  ])('%s', async (_name, specs, want) => {
    const bytes = buildTar(specs)
    expect(filesOf(await indexBytes(bytes), bytes)).toEqual(want)
  })

  test('no end-of-archive blocks, and bytes after the end marker, are accepted', async () => {
    const bare = buildTar([{ name: 'a', data: 'A' }], { end: false })
    expect(filesOf(await indexBytes(bare), bare)).toEqual({ a: 'A' })
    const trailing = Buffer.concat([buildTar([{ name: 'a', data: 'A' }]), Buffer.from('trailing junk')])
    expect(filesOf(await indexBytes(trailing), trailing)).toEqual({ a: 'A' })
  })

  test('records links and other entry types', async () => {
    const index = await indexBytes(
      buildTar([
        { name: 'f', data: 'F' },
        { name: 'd/sym', type: '2', linkname: '../f' },
        { name: 'hard', type: '1', linkname: './f' },
        { name: 'fifo', type: '6' },
      ]),
    )
    expect(index.entries.get('d/sym')).toEqual({ type: 'link', linkname: '../f', target: 'f' })
    expect(index.entries.get('hard')).toEqual({ type: 'link', linkname: './f', target: 'f' })
    expect(index.entries.get('fifo')).toEqual({ type: 'other', typeflag: '6' })
  })

  test('reads only headers, never file contents', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 7)
    const path = await writeTar(
      buildTar([
        { name: 'big1', data: big },
        { name: 'big2', data: big },
        { name: 'small', data: 's' },
      ]),
    )
    const handle = await open(path, 'r')
    let bytesRead = 0
    const counting = new Proxy(handle, {
      get(target, prop) {
        if (prop === 'read') {
          return async (...args: Parameters<typeof handle.read>) => {
            const result = await (target.read as (...a: unknown[]) => ReturnType<typeof handle.read>)(...args)
            bytesRead += result.bytesRead
            return result
          }
        }
        const value = Reflect.get(target, prop)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const index = await indexTar(counting, { what: 'big.tar' })
    await handle.close()
    expect(index.entries.get('big2')).toMatchObject({ type: 'file', size: big.length })
    expect(bytesRead).toBeLessThanOrEqual(4 * 512)
  })
})

describe('indexTar: hostile archives', () => {
  const ok: TarEntrySpec = { name: 'ok', data: 'fine' }
  test.each<[string, Buffer, RegExp]>([
    [
      'bad checksum',
      buildTar([ok, { name: 'evil', data: 'x', badChecksum: true }]),
      /offset 1024: checksum mismatch/,
    ],
    [
      'checksum field not octal',
      (() => {
        const b = buildTar([ok])
        b.write('zzzzzz', 148, 'latin1')
        return b
      })(),
      /checksum field is not octal/,
    ],
    [
      'size field not a number',
      (() => {
        const b = buildTar([ok])
        b.write('9999', 124, 'latin1')
        return b
      })(),
      /checksum mismatch|size field/,
    ],
    [
      'size past EOF',
      buildTar([{ name: 'huge', data: 'x', headerSize: 1e9 }], { end: false }),
      /"huge" of 1000000000 bytes runs past the end/,
    ],
    ['data missing its padding', tarEntry({ name: 'p', data: 'abc' }).subarray(0, 515), /runs past the end/],
    [
      'truncated header',
      Buffer.concat([tarEntry(ok), tarHeader(ok).subarray(0, 100)]),
      /truncated: 100 bytes left/,
    ],
    [
      'absolute name',
      buildTar([{ name: '/etc/passwd', data: 'x' }]),
      /"\/etc\/passwd" is absolute or contains/,
    ],
    ['dot-dot name', buildTar([{ name: 'a/../../b', data: 'x' }]), /"a\/..\/..\/b" is absolute or contains/],
    ['dot-dot via PAX', buildTar([paxHeader({ path: '../escape' }), ok]), /"..\/escape" is absolute/],
    ['duplicate path', buildTar([ok, { name: './ok', data: 'other' }]), /ok: occurs more than once/],
    [
      'file over a directory',
      buildTar([
        { name: 'd', type: '5' },
        { name: 'd', data: 'x' },
      ]),
      /d: occurs more than once/,
    ],
    ['GNU sparse entry', buildTar([{ name: 'sp', type: 'S', data: 'x' }]), /sparse files are not supported/],
    [
      'PAX sparse keys',
      buildTar([paxHeader({ 'GNU.sparse.major': '1' }), ok]),
      /sparse files are not supported/,
    ],
    [
      'malformed PAX record',
      buildTar([{ name: 'x', type: 'x', data: '99 path=x\n' }, ok]),
      /malformed pax record at byte 0/,
    ],
    [
      'PAX record without =',
      buildTar([{ name: 'x', type: 'x', data: '8 path\n\n' }, ok]),
      /malformed pax record/,
    ],
    ['PAX size not a number', buildTar([paxHeader({ size: '-1' }), ok]), /pax size "-1" is not valid/],
    [
      'PAX size past EOF',
      buildTar([paxHeader({ size: '999999' }), ok]),
      /"ok" of 999999 bytes runs past the end/,
    ],
    [
      'oversized long name',
      buildTar([{ name: 'L', type: 'L', data: 'n'.repeat(70_000) }, ok]),
      /long name of 70000 bytes exceeds/,
    ],
    [
      'metadata header loop',
      buildTar([...Array.from({ length: 9 }, () => paxHeader({ a: 'b' })), ok]),
      /more than 8 metadata headers in a row/,
    ],
    [
      'archive ends after a metadata header',
      buildTar([ok, gnuLongName('dangling')]),
      /end of archive after a metadata header/,
    ],
    [
      'EOF after a metadata header',
      buildTar([ok, gnuLongName('dangling')], { end: false }),
      /archive ends after a metadata header/,
    ],
    ['empty file name', buildTar([{ name: '.', data: 'x' }]), /"\." is empty/],
  ])('%s', async (_name, bytes, message) => {
    const err = await rejection(indexBytes(bytes))
    expect(isOcipullError(err, 'ERR_SOURCE_INVALID'), String(err)).toBe(true)
    expect((err as Error).message).toMatch(/^test\.tar: /)
    expect((err as Error).message).toMatch(message)
  })

  test('caps the number of entries', async () => {
    const bytes = buildTar(Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, data: 'x' })))
    await expect(indexBytes(bytes, { maxEntries: 10 })).rejects.toThrow(/more than 10 entries/)
    expect((await indexBytes(bytes, { maxEntries: 11 })).entries.size).toBe(11)
  })

  test('refuses what is not a regular file, and reports a missing file', async () => {
    await expect(openTarArchive(tars.dir, { what: 'dir.tar' })).rejects.toMatchObject({
      code: 'ERR_SOURCE_INVALID',
    })
    await expect(openTarArchive(join(tars.dir, 'nope.tar'), { what: 'nope.tar' })).rejects.toMatchObject({
      code: 'ERR_NOT_FOUND',
    })
  })

  test('honours an aborted signal', async () => {
    const path = await writeTar(buildTar([{ name: 'a', data: 'A' }]))
    await expect(openTarArchive(path, { what: 'a.tar', signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    })
  })
})

describe('findTarFile', () => {
  let index: TarIndex
  beforeAll(async () => {
    index = await indexBytes(
      buildTar([
        { name: 'blobs/f', data: 'F' },
        { name: 'blobs/d', type: '5' },
        { name: 'a/link', type: '2', linkname: '../blobs/f' },
        { name: 'a/chain', type: '2', linkname: 'link' },
        { name: 'hard', type: '1', linkname: 'blobs/f' },
        { name: 'escape', type: '2', linkname: '../../etc/passwd' },
        { name: 'absolute', type: '2', linkname: '/etc/passwd' },
        { name: 'loop1', type: '2', linkname: 'loop2' },
        { name: 'loop2', type: '2', linkname: 'loop1' },
      ]),
    )
  })

  test.each([
    ['blobs/f', true, 'F'],
    ['a/link', true, 'F'],
    ['a/chain', true, 'F'],
    ['hard', true, 'F'],
    ['missing', true, undefined],
  ])('%s (follow links: %s)', (path, followLinks, want) => {
    const found = findTarFile(index, path, { followLinks, what: 't.tar' })
    expect(found === undefined ? undefined : 'F').toBe(want)
  })

  test.each([
    ['a/link', false, /a\/link: is a link, refusing to follow it/],
    ['escape', true, /escape: link target "..\/..\/etc\/passwd" is outside the archive/],
    ['absolute', true, /absolute: link target "\/etc\/passwd" is outside the archive/],
    ['loop1', true, /loop1: more than 16 levels of links/],
    ['blobs/d', true, /blobs\/d: not a regular file/],
  ])('%s is refused', (path, followLinks, message) => {
    expect(() => findTarFile(index, path, { followLinks, what: 't.tar' })).toThrow(message)
  })
})

test.each([
  ['./a//b/', 'a/b'],
  ['a/./b', 'a/b'],
  ['/abs', undefined],
  ['a/../b', undefined],
  ['a\0b', undefined],
  ['./', ''],
])('normalizeTarPath(%j) = %j', (input, want) => {
  expect(normalizeTarPath(input)).toBe(want)
})

describe.runIf(requireTool('tar'))('indexTar: archives written by GNU tar', () => {
  let src: string
  const deep = `${'x'.repeat(70)}/${'y'.repeat(70)}/${'z'.repeat(70)}.txt` // > 100: long-name or prefix
  beforeAll(async () => {
    src = await makeTempDir()
    await mkdir(join(src, deep.slice(0, deep.lastIndexOf('/'))), { recursive: true })
    await writeFile(join(src, deep), 'deep')
    await writeFile(join(src, 'plain'), 'plain')
    await symlink('plain', join(src, 'link'))
  })

  test.each(['gnu', 'posix', 'ustar'])('--format=%s', async (format) => {
    const out = join(tars.dir, `gnu-${format}.tar`)
    await run('tar', [`--format=${format}`, '-cf', out, '-C', src, '.'])
    const archive = await openTarArchive(out, { what: out })
    try {
      for (const [path, content] of [
        [deep, 'deep'],
        ['plain', 'plain'],
      ] as const) {
        const file = findTarFile(archive.index, path, { followLinks: false, what: out })
        expect(file, path).toBeDefined()
        const buf = Buffer.alloc(file!.size)
        await archive.handle.read(buf, 0, buf.length, file!.offset)
        expect(buf.toString()).toBe(content)
      }
      expect(findTarFile(archive.index, 'link', { followLinks: true, what: out })?.size).toBe(5)
    } finally {
      await archive.close()
    }
  })
})
