import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { fsPath, readFileInRoot, resolveInRoot } from '../../src/fs/resolve-in-root.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'

afterAll(removeTempDirs)

let root: string

beforeAll(async () => {
  root = join(await makeTempDir('ocipull-resolve-'), 'root')
  mkdirSync(join(root, 'usr/lib'), { recursive: true })
  mkdirSync(join(root, 'etc'))
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n')
  symlinkSync('usr/lib', join(root, 'lib'))
  symlinkSync('/usr/lib', join(root, 'abslib'))
  symlinkSync('../../../../../etc', join(root, 'up'))
  symlinkSync('/', join(root, 'slash'))
  symlinkSync('/etc/passwd', join(root, 'pw'))
  symlinkSync('loop2', join(root, 'loop1'))
  symlinkSync('loop1', join(root, 'loop2'))
  symlinkSync('chain2', join(root, 'chain1'))
  symlinkSync('lib/../../etc', join(root, 'chain2'))
  symlinkSync('missing/../up', join(root, 'sneaky'))
  mkdirSync(Buffer.from(`${root}/caf\xe9`, 'latin1'))
  symlinkSync(Buffer.from('caf\xe9', 'latin1'), join(root, 'latin'))
})

describe('resolveInRoot', () => {
  const cases: [path: string, want: string, followLast?: boolean][] = [
    ['usr/lib/x', 'usr/lib/x'],
    ['/usr/lib/x', 'usr/lib/x'],
    ['lib/x', 'usr/lib/x'],
    ['abslib/x', 'usr/lib/x'],
    ['up/passwd', 'etc/passwd'],
    ['slash/etc/passwd', 'etc/passwd'],
    ['../../etc/passwd', 'etc/passwd'],
    ['usr/../../../etc', 'etc'],
    ['chain1/passwd', 'etc/passwd'],
    ['pw', 'pw'],
    ['pw', 'etc/passwd', true],
    ['lib', 'lib'],
    ['lib', 'usr/lib', true],
    ['missing/deeper/x', 'missing/deeper/x'],
    // A missing component, then '..' back into the root: 'up' must still be resolved.
    ['missing/../up/x', 'etc/x'],
    ['sneaky/x', 'etc/x'],
    ['etc/passwd/x', 'etc/passwd/x'],
  ]
  for (const [path, want, followLast] of cases) {
    test(`${path}${followLast ? ' (follow last)' : ''} → ${want}`, () => {
      expect(resolveInRoot(root, path, followLast ? { followLast } : {})).toBe(join(root, want))
    })
  }

  test('a symlink loop is ERR_PATH_UNSAFE', () => {
    expect(() => resolveInRoot(root, 'loop1/x')).toThrow(expect.objectContaining({ code: 'ERR_PATH_UNSAFE' }))
  })

  test("byte strings with encoding 'latin1'", () => {
    const rootBytes = Buffer.from(root).toString('latin1')
    const got = resolveInRoot(rootBytes, 'latin/f\xff', { encoding: 'latin1' })
    expect(got).toBe(`${rootBytes}/caf\xe9/f\xff`)
    expect(fsPath(got)).toEqual(Buffer.from(got, 'latin1'))
    expect(fsPath('ascii/only')).toBe('ascii/only')
  })

  test('readFileInRoot follows symlinks within the root only', () => {
    expect(readFileInRoot(root, '/pw', { maxBytes: 100 })?.toString()).toMatch(/^root:x/)
    expect(readFileInRoot(root, 'up/passwd', { maxBytes: 100 })?.toString()).toMatch(/^root:x/)
    expect(readFileInRoot(root, 'nope', { maxBytes: 100 })).toBeUndefined()
    expect(() => readFileInRoot(root, 'etc/passwd', { maxBytes: 3 })).toThrow(
      expect.objectContaining({ code: 'ERR_LIMIT_EXCEEDED' }),
    )
  })
})
