import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { readConfigResource } from '../../src/config/read-config-resource.js'
import type { KeySource } from '../../src/keys/key-source.js'

/** What a `*_uri` setting may name, and what a hostile one cannot make us do. */

const dir = mkdtempSync(join(tmpdir(), 'ocipull-config-resource-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const file = join(dir, 'registries conf.toml') // a space: file URIs percent-encode it
writeFileSync(file, 'x = 1\n')
mkdirSync(join(dir, 'a-dir'))
const fifo = join(dir, 'fifo')
execFileSync('mkfifo', [fifo])
const big = join(dir, 'big')
writeFileSync(big, Buffer.alloc(2048, 'a'))

const read = (uri: string, options: { keySource?: KeySource; maxBytes?: number } = {}) =>
  readConfigResource(uri, { what: 'registry_configuration_uri', ...options })

describe('readConfigResource without a KeySource', () => {
  test.each([
    ['an absolute path', file],
    ['a file URI', `file://${join(dir, 'registries%20conf.toml')}`],
    ['a file URI naming localhost', `file://localhost${join(dir, 'registries%20conf.toml')}`],
  ])('reads %s', async (_name, uri) => {
    expect(new TextDecoder().decode(await read(uri))).toBe('x = 1\n')
  })

  const bad: [string, string, string, RegExp, { maxBytes?: number }?][] = [
    [
      'a kbs URI',
      'kbs:///default/registry-configuration/test',
      'ERR_RESOURCE_URI_INVALID',
      /no key source is configured/,
    ],
    [
      'a file URI on another host',
      'file://evil.example/etc/passwd',
      'ERR_RESOURCE_URI_INVALID',
      /not a local file URI/,
    ],
    ['an https URL', 'https://evil.example/registries.conf', 'ERR_RESOURCE_URI_INVALID', /no key source/],
    ['a missing file', join(dir, 'missing'), 'ERR_CONFIG_FILE_INVALID', /cannot open: ENOENT/],
    ['a directory', join(dir, 'a-dir'), 'ERR_CONFIG_FILE_INVALID', /not a regular file/],
    ['a FIFO (must not hang)', fifo, 'ERR_CONFIG_FILE_INVALID', /not a regular file/],
    ['a file over the cap', big, 'ERR_CONFIG_FILE_INVALID', /larger than 1024 bytes/, { maxBytes: 1024 }],
  ]
  for (const [name, uri, code, want, options] of bad) {
    test(`refuses ${name}`, async () => {
      await expect(read(uri, options)).rejects.toMatchObject({ code, message: expect.stringMatching(want) })
    })
  }

  test('an aborted signal stops before reading', async () => {
    const controller = new AbortController()
    controller.abort()
    await expect(readConfigResource(file, { what: 'x', signal: controller.signal })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    })
  })
})

describe('readConfigResource with a KeySource', () => {
  const asked: string[] = []
  const keySource = (bytes: Uint8Array): KeySource => ({
    async getResource(uri) {
      asked.push(uri)
      return bytes
    },
  })

  test('every URI goes through it, file:// too; absolute paths are read directly', async () => {
    const source = keySource(new TextEncoder().encode('from the key source'))
    expect(new TextDecoder().decode(await read('kbs:///default/x/y', { keySource: source }))).toBe(
      'from the key source',
    )
    expect(
      new TextDecoder().decode(await read(`file://${file.replace(' ', '%20')}`, { keySource: source })),
    ).toBe('from the key source')
    expect(new TextDecoder().decode(await read(file, { keySource: source }))).toBe('x = 1\n')
    expect(asked).toEqual(['kbs:///default/x/y', `file://${file.replace(' ', '%20')}`])
  })

  test('an oversized resource is refused', async () => {
    await expect(
      read('kbs:///default/x/y', { keySource: keySource(new Uint8Array(4096)), maxBytes: 1024 }),
    ).rejects.toMatchObject({
      code: 'ERR_CONFIG_FILE_INVALID',
      message: expect.stringMatching(/larger than 1024 bytes/),
    })
  })

  test('a query string is not repeated in messages', async () => {
    await expect(
      read('kbs:///default/x/y?token=secret', { keySource: keySource(new Uint8Array(4096)), maxBytes: 1 }),
    ).rejects.toMatchObject({ message: expect.not.stringContaining('secret') })
  })
})
