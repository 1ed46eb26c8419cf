import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type DevKbs, startDevKbs } from '../../src/kbs/server/dev-kbs.js'
import { fileKeySource } from '../../src/keys/file-key-source.js'
import type { KeySource } from '../../src/keys/key-source.js'
import { keySourceByScheme } from '../../src/keys/key-source-by-scheme.js'
import { offlineFsKeySource } from '../../src/keys/offline-fs-key-source.js'
import { openKeySource } from '../../src/keys/open-key-source.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'

const KEY = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex')
let dir: string

beforeAll(async () => {
  dir = await makeTempDir()
  await writeFile(join(dir, 'key.bin'), KEY)
  await writeFile(join(dir, 'a key with spaces'), 'spaced')
  await mkdir(join(dir, 'sub'))
  await symlink(join(dir, 'key.bin'), join(dir, 'link'))
  await writeFile(join(dir, 'big'), Buffer.alloc(2048))
  await writeFile(
    join(dir, 'keys.json'),
    JSON.stringify({ 'default/key/key_id1': KEY.toString('base64'), 'a/b/c': 'YWJj' }),
  )
  await writeFile(join(dir, 'resources.json'), JSON.stringify({ 'a/b/c': 'eHl6', 'x/y/z': '' }))
  await writeFile(join(dir, 'bad-json.json'), '{')
  await writeFile(join(dir, 'bad-b64.json'), JSON.stringify({ 'a/b/c': 'not base64!' }))
  await writeFile(join(dir, 'lenient-b64.json'), JSON.stringify({ 'a/b/c': 'YWJj\n' }))
  await writeFile(join(dir, 'not-string.json'), JSON.stringify({ 'a/b/c': 5 }))
  await writeFile(join(dir, 'array.json'), '[]')
})
afterAll(removeTempDirs)

async function code(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: { code?: string }) => e.code,
  )
}

describe('file:// key source', () => {
  const src = fileKeySource({ maxBytes: 1024 })
  test('reads a file, a symlinked file, a percent-encoded path and file://localhost', async () => {
    expect(Buffer.from(await src.getResource(`file://${dir}/key.bin`))).toEqual(KEY)
    expect(Buffer.from(await src.getResource(`file://${dir}/link`))).toEqual(KEY)
    expect(Buffer.from(await src.getResource(`file://${dir}/a%20key%20with%20spaces`)).toString()).toBe(
      'spaced',
    )
    expect(Buffer.from(await src.getResource(`file://localhost${dir}/key.bin`))).toEqual(KEY)
  })
  const cases: [string, () => string, string][] = [
    ['a missing file', () => `file://${dir}/missing`, 'ERR_KEY_UNAVAILABLE'],
    ['a directory', () => `file://${dir}/sub`, 'ERR_KEY_UNAVAILABLE'],
    ['a file over the cap', () => `file://${dir}/big`, 'ERR_KEY_UNAVAILABLE'],
    ['a remote host', () => `file://example.com${dir}/key.bin`, 'ERR_RESOURCE_URI_INVALID'],
    ['a relative path', () => 'file:key.bin', 'ERR_RESOURCE_URI_INVALID'],
    ['a query', () => `file://${dir}/key.bin?x=1`, 'ERR_RESOURCE_URI_INVALID'],
    ['an encoded slash', () => `file://${dir}%2Fkey.bin`, 'ERR_RESOURCE_URI_INVALID'],
    ['another scheme', () => 'kbs:///a/b/c', 'ERR_RESOURCE_URI_INVALID'],
  ]
  for (const [name, uri, want] of cases)
    test(name, async () => expect(await code(src.getResource(uri()))).toBe(want))

  test('an aborted signal', async () => {
    expect(await code(src.getResource(`file://${dir}/key.bin`, { signal: AbortSignal.abort() }))).toBe(
      'ERR_ABORTED',
    )
  })
})

describe('offline-fs key source', () => {
  test('loads the maps in order (later wins, with a warning); the host is ignored', async () => {
    const warnings: string[] = []
    const src = offlineFsKeySource({
      files: [join(dir, 'keys.json'), join(dir, 'missing.json'), join(dir, 'resources.json')],
      onWarning: (m) => warnings.push(m),
    })
    expect(Buffer.from(await src.getResource('kbs:///default/key/key_id1'))).toEqual(KEY)
    expect(Buffer.from(await src.getResource('kbs://any-host:99/a/b/c')).toString()).toBe('xyz')
    expect(Buffer.from(await src.getResource('kbs:///x/y/z'))).toHaveLength(0)
    expect(warnings).toEqual([
      `offline-fs key map ${join(dir, 'missing.json')}: not found, skipped`,
      `offline-fs key map ${join(dir, 'resources.json')}: a/b/c overrides an earlier entry`,
    ])
  })

  test('the default file list takes OFFLINE_FS_KBC_EXTRA_FILE_PATH from env', async () => {
    const src = offlineFsKeySource({
      env: { OFFLINE_FS_KBC_EXTRA_FILE_PATH: ` ${join(dir, 'keys.json')} ,` },
    })
    expect(Buffer.from(await src.getResource('kbs:///default/key/key_id1'))).toEqual(KEY)
  })

  test('a key no map has is ERR_KEY_UNAVAILABLE; plugin URIs are not served', async () => {
    const src = offlineFsKeySource({ files: [join(dir, 'keys.json')] })
    expect(await code(src.getResource('kbs:///default/key/other'))).toBe('ERR_KEY_UNAVAILABLE')
    expect(await code(src.getResource('kbs+pkcs11:///a/b/c'))).toBe('ERR_RESOURCE_URI_INVALID')
    expect(await code(src.getResource('kbs:///a/b'))).toBe('ERR_RESOURCE_URI_INVALID')
  })

  for (const name of ['bad-json.json', 'bad-b64.json', 'lenient-b64.json', 'not-string.json', 'array.json']) {
    test(`a malformed map (${name}) is ERR_CONFIG_FILE_INVALID`, async () => {
      const src = offlineFsKeySource({ files: [join(dir, 'keys.json'), join(dir, name)] })
      expect(await code(src.getResource('kbs:///default/key/key_id1'))).toBe('ERR_CONFIG_FILE_INVALID')
    })
  }
})

describe('dispatch by scheme', () => {
  const seen: string[] = []
  const kbs: KeySource = {
    async getResource(uri) {
      seen.push(uri)
      return Buffer.from('from-kbs')
    },
  }
  const both = keySourceByScheme({ kbs })
  const cases: [string, () => string, string | Buffer][] = [
    ['kbs:///', () => 'kbs:///a/b/c', Buffer.from('from-kbs')],
    ['kbs+plugin:///', () => 'kbs+pkcs11:///a/b/c', Buffer.from('from-kbs')],
    ['KBS:/// (schemes are case-insensitive)', () => 'KBS:///a/b/c', Buffer.from('from-kbs')],
    ['file://', () => `file://${dir}/key.bin`, KEY],
    ['https://', () => 'https://example.com/key', 'ERR_RESOURCE_URI_INVALID'],
    ['no scheme', () => '/etc/passwd', 'ERR_RESOURCE_URI_INVALID'],
    ['kbsx://', () => 'kbsx:///a/b/c', 'ERR_RESOURCE_URI_INVALID'],
  ]
  for (const [name, uri, want] of cases) {
    test(name, async () => {
      if (typeof want === 'string') expect(await code(both.getResource(uri()))).toBe(want)
      else expect(Buffer.from(await both.getResource(uri()))).toEqual(want)
    })
  }

  test('kbs:// without a KBS source is ERR_KEY_UNAVAILABLE; file: null refuses files', async () => {
    expect(await code(keySourceByScheme({}).getResource('kbs:///a/b/c'))).toBe('ERR_KEY_UNAVAILABLE')
    expect(await code(keySourceByScheme({ kbs, file: null }).getResource(`file://${dir}/key.bin`))).toBe(
      'ERR_RESOURCE_URI_INVALID',
    )
  })
})

describe('openKeySource', () => {
  let kbs: DevKbs
  beforeAll(async () => {
    const repo = await makeTempDir()
    await mkdir(join(repo, 'default', 'key'), { recursive: true })
    await writeFile(join(repo, 'default', 'key', 'key_id1'), KEY)
    kbs = await startDevKbs({ repository: repo })
  })
  afterAll(async () => kbs?.close())

  test('a KBS client for kbs://, files for file://', async () => {
    const src = openKeySource({ kbs: { url: kbs.url, env: {} } })
    try {
      expect(Buffer.from(await src.getResource('kbs:///default/key/key_id1'))).toEqual(KEY)
      expect(Buffer.from(await src.getResource(`file://${dir}/key.bin`))).toEqual(KEY)
    } finally {
      await src.close()
    }
  })

  test('offline-fs for kbs://; file: false', async () => {
    const src = openKeySource({ offlineFs: { files: [join(dir, 'keys.json')] }, file: false })
    expect(Buffer.from(await src.getResource('kbs:///default/key/key_id1'))).toEqual(KEY)
    expect(await code(src.getResource(`file://${dir}/key.bin`))).toBe('ERR_RESOURCE_URI_INVALID')
    await src.close()
  })

  test('two kbs:// backends are a TypeError', () => {
    expect(() => openKeySource({ kbs: { url: kbs.url }, offlineFs: {} })).toThrow(TypeError)
  })
})
