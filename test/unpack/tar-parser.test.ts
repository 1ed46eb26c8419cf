import { describe, expect, test } from 'vitest'
import { type TarEntry, type TarEvent, TarParser } from '../../src/unpack/tar-parser.js'
import {
  buildTar,
  buildTarFull,
  gnuLongName,
  paxHeader,
  type TarEntrySpec,
  tarEntry,
  tarEntryFull,
} from '../helpers/tar-builder.js'

interface Parsed {
  entries: (TarEntry & { data: string })[]
  warnings: string[]
  consumed: number
}

/** Parses `tar` fed in chunks of `chunk` bytes; throws what the parser throws. */
function parse(
  tar: Buffer,
  chunk = tar.length || 1,
  limits: { maxPathLength?: number; maxBytes?: number } = {},
) {
  const warnings: string[] = []
  const parser = new TarParser({
    what: 'layer sha256:ab12',
    maxPathLength: limits.maxPathLength ?? 4096,
    maxBytes: limits.maxBytes ?? 1 << 30,
    warn: (code) => warnings.push(code),
  })
  const out: Parsed = { entries: [], warnings, consumed: 0 }
  const data: Buffer[] = []
  for (let i = 0; i < tar.length; i += chunk) {
    const events: TarEvent[] = []
    parser.write(tar.subarray(i, i + chunk), events)
    for (const ev of events) {
      if (ev.kind === 'entry') out.entries.push({ ...ev.entry, data: '' })
      else if (ev.kind === 'data') data.push(Buffer.from(ev.data))
      else {
        const last = out.entries.at(-1)
        if (last) last.data = Buffer.concat(data.splice(0)).toString('latin1')
      }
    }
  }
  parser.finish()
  out.consumed = parser.offset
  return out
}

const LONG = `${'d/'.repeat(80)}file.txt`

describe('well-formed archives', () => {
  const cases: { name: string; tar: Buffer; want: Partial<TarEntry & { data: string }>[] }[] = [
    {
      name: 'ustar file',
      tar: buildTar([{ name: 'a.txt', data: 'hi' }]),
      want: [{ name: 'a.txt', type: 'file', data: 'hi', size: 2 }],
    },
    {
      name: 'ustar prefix field',
      tar: buildTar([{ name: 'file.txt', prefix: 'some/dir', data: 'x' }]),
      want: [{ name: 'some/dir/file.txt' }],
    },
    {
      name: 'GNU long name',
      tar: buildTar([gnuLongName(LONG), { name: 'short', data: 'z', magic: 'gnu' }]),
      want: [{ name: LONG, data: 'z' }],
    },
    {
      name: 'GNU long link name',
      tar: buildTar([
        { name: '././@LongLink', type: 'K', data: `${LONG}\0`, magic: 'gnu' },
        { name: 'l', type: '2', linkname: 'short', magic: 'gnu' },
      ]),
      want: [{ name: 'l', type: 'symlink', linkname: LONG }],
    },
    {
      name: 'PAX path, linkpath, size, mtime, uid',
      tar: buildTar([
        paxHeader({ path: LONG, mtime: '1700000000.5', uid: '70000', gid: '70001', atime: '1600000000' }),
        { name: 'short', data: 'abc' },
      ]),
      want: [{ name: LONG, mtime: 1700000000.5, atime: 1600000000, uid: 70000, gid: 70001, data: 'abc' }],
    },
    {
      name: 'PAX size overrides the header size',
      tar: buildTar([paxHeader({ size: '5' }), { name: 'f', data: 'hello', headerSize: 0 }]),
      want: [{ name: 'f', size: 5, data: 'hello' }],
    },
    {
      name: 'GNU base-256 size',
      tar: buildTar([{ name: 'f', data: 'data', base256Size: true }]),
      want: [{ size: 4, data: 'data' }],
    },
    {
      name: 'v7 header, NUL type, trailing slash is a directory',
      tar: buildTar([{ name: 'dir/', type: '\0', magic: 'v7' }]),
      want: [{ name: 'dir/', type: 'directory' }],
    },
    {
      name: 'every entry type with its fields',
      tar: buildTarFull([
        { name: 'd', type: '5', mode: 0o1777, uid: 1, gid: 2, mtime: 1234 },
        { name: 's', type: '2', linkname: '/abs/target' },
        { name: 'h', type: '1', linkname: 'd/x' },
        { name: 'c', type: '3', devmajor: 1, devminor: 3 },
        { name: 'b', type: '4', devmajor: 8, devminor: 1 },
        { name: 'p', type: '6' },
        { name: 'f', type: '7', data: 'c', mode: 0o4755 },
      ]),
      want: [
        { type: 'directory', mode: 0o1777, uid: 1, gid: 2, mtime: 1234 },
        { type: 'symlink', linkname: '/abs/target' },
        { type: 'hardlink', linkname: 'd/x' },
        { type: 'char', devmajor: 1, devminor: 3 },
        { type: 'block', devmajor: 8, devminor: 1 },
        { type: 'fifo' },
        { type: 'file', mode: 0o4755, data: 'c' },
      ],
    },
    {
      name: 'binary xattr and a name that is not UTF-8',
      tar: buildTarFull([
        {
          name: 'x',
          pax: {
            path: Buffer.from([0x63, 0x61, 0x66, 0xe9]),
            'SCHILY.xattr.security.capability': Buffer.from([1, 0, 0, 2, 0xff, 0, 0x0a]),
          },
        },
      ]),
      want: [{ name: 'caf\xe9' }],
    },
    {
      // Go's archive/tar (umoci, containerd) reads no data for these whatever the size says.
      name: 'header-only types carry no data',
      tar: Buffer.concat([
        tarEntry({ name: 'dir', type: '5', headerSize: 1024 }),
        tarEntry({ name: 'next', data: 'n' }),
        Buffer.alloc(1024),
      ]),
      want: [
        { name: 'dir', size: 0 },
        { name: 'next', data: 'n' },
      ],
    },
  ]
  for (const c of cases) {
    test(c.name, () => {
      for (const chunk of [c.tar.length, 512, 100, 1]) {
        const got = parse(c.tar, chunk)
        expect(got.entries).toHaveLength(c.want.length)
        for (const [i, w] of c.want.entries()) expect(got.entries[i]).toMatchObject(w)
      }
    })
  }

  test('xattr values are byte-exact', () => {
    const value = Buffer.from([1, 0, 0, 2, 0xff, 0, 0x0a, 0x80])
    const got = parse(buildTarFull([{ name: 'x', pax: { 'SCHILY.xattr.user.bin': value } }]))
    expect(got.entries[0]?.xattrs?.get('user.bin')).toEqual(value)
  })

  test('everything after the end-of-archive marker is consumed', () => {
    const tar = Buffer.concat([
      buildTar([{ name: 'a', data: 'x' }]),
      Buffer.from('junk'),
      Buffer.alloc(10000),
    ])
    const got = parse(tar, 333)
    expect(got.entries).toHaveLength(1)
    expect(got.consumed).toBe(tar.length)
  })

  test('an empty stream is an empty archive', () => {
    expect(parse(Buffer.alloc(0)).entries).toEqual([])
  })

  test('a global PAX header is ignored with a warning', () => {
    const tar = buildTar([{ ...paxHeader({ comment: 'git' }), type: 'g' }, { name: 'f' }])
    const got = parse(tar)
    expect(got.entries.map((e) => e.name)).toEqual(['f'])
    expect(got.warnings).toEqual(['WARN_PAX_GLOBAL_IGNORED'])
  })
})

describe('malformed archives', () => {
  const ok: TarEntrySpec = { name: 'f', data: 'x'.repeat(600) }
  const full = buildTar([ok])
  const bad: { name: string; tar: Buffer; code: string; message?: RegExp }[] = [
    {
      name: 'bad checksum',
      tar: buildTar([{ ...ok, badChecksum: true }]),
      code: 'ERR_LAYER_INVALID',
      message: /checksum/,
    },
    {
      name: 'truncated in a header',
      tar: full.subarray(0, 300),
      code: 'ERR_LAYER_INVALID',
      message: /truncated/,
    },
    { name: 'truncated in the data', tar: full.subarray(0, 700), code: 'ERR_LAYER_INVALID' },
    { name: 'no end-of-archive marker', tar: buildTar([ok], { end: false }), code: 'ERR_LAYER_INVALID' },
    { name: 'size field not octal', tar: patch(full, 124, '00000000z00\0'), code: 'ERR_LAYER_INVALID' },
    {
      name: 'unsupported type',
      tar: buildTar([{ name: 'f', type: 'V' }]),
      code: 'ERR_LAYER_INVALID',
      message: /type/,
    },
    {
      name: 'GNU sparse',
      tar: buildTar([{ name: 'f', type: 'S' }]),
      code: 'ERR_LAYER_INVALID',
      message: /sparse/,
    },
    {
      name: 'PAX sparse',
      tar: buildTar([paxHeader({ 'GNU.sparse.major': '1' }), { name: 'f' }]),
      code: 'ERR_LAYER_INVALID',
    },
    {
      name: 'PAX record too long',
      tar: buildTar([{ name: 'p', type: 'x', data: '99 path=x\n' }, ok]),
      code: 'ERR_LAYER_INVALID',
    },
    {
      name: 'PAX record without =',
      tar: buildTar([{ name: 'p', type: 'x', data: '9 pathx\n\n' }, ok]),
      code: 'ERR_LAYER_INVALID',
    },
    {
      name: 'PAX path with NUL',
      tar: buildTar([paxHeader({ path: 'a\0b' }), ok]),
      code: 'ERR_LAYER_INVALID',
    },
    {
      name: 'PAX size not a number',
      tar: buildTar([paxHeader({ size: '-1' }), ok]),
      code: 'ERR_LAYER_INVALID',
    },
    {
      name: 'PAX header larger than 1 MiB',
      tar: buildTar([{ name: 'p', type: 'x', headerSize: 2 << 20 }]),
      code: 'ERR_LIMIT_EXCEEDED',
    },
    {
      name: 'extended header then end',
      tar: buildTar([paxHeader({ path: 'x' })]),
      code: 'ERR_LAYER_INVALID',
    },
    { name: 'empty name', tar: buildTar([{ name: '' }]), code: 'ERR_LAYER_INVALID' },
    { name: 'symlink without target', tar: buildTar([{ name: 'l', type: '2' }]), code: 'ERR_LAYER_INVALID' },
    {
      name: 'uid out of range',
      tar: buildTar([paxHeader({ uid: '4294967295' }), ok]),
      code: 'ERR_LAYER_INVALID',
    },
  ]
  for (const c of bad) {
    test(`${c.name} → ${c.code}`, () => {
      let err: unknown
      try {
        parse(c.tar, 512)
      } catch (e) {
        err = e
      }
      expect(err).toMatchObject({ code: c.code })
      expect((err as Error).message).toMatch(/^layer sha256:ab12: /)
      if (c.message) expect((err as Error).message).toMatch(c.message)
    })
  }

  test('names longer than maxPathLength → ERR_LIMIT_EXCEEDED', () => {
    const tar = buildTar([paxHeader({ path: 'a'.repeat(300) }), { name: 'x' }])
    expect(() => parse(tar, 512, { maxPathLength: 200 })).toThrow(
      expect.objectContaining({ code: 'ERR_LIMIT_EXCEEDED' }),
    )
    const gnu = buildTar([gnuLongName('b'.repeat(300)), { name: 'x' }])
    expect(() => parse(gnu, 512, { maxPathLength: 200 })).toThrow(
      expect.objectContaining({ code: 'ERR_LIMIT_EXCEEDED' }),
    )
  })

  test('a declared size beyond maxBytes fails at the header, before any data', () => {
    const tar = tarEntryFull({ name: 'big', headerSize: 10 << 20 })
    expect(() => parse(tar, 512, { maxBytes: 1 << 20 })).toThrow(/would pass the limit/)
  })

  test('bytes after the end marker count against maxBytes', () => {
    const tar = Buffer.concat([buildTar([{ name: 'a' }]), Buffer.alloc(1 << 20)])
    expect(() => parse(tar, 4096, { maxBytes: 1 << 19 })).toThrow(
      expect.objectContaining({ code: 'ERR_LIMIT_EXCEEDED' }),
    )
  })
})

function patch(buf: Buffer, offset: number, text: string): Buffer {
  const out = Buffer.from(buf)
  out.write(text, offset, 'latin1')
  // Re-sum so that only the patched field is wrong.
  out.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += out[i] as number
  out.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1')
  return out
}
