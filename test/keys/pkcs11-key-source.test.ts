import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { pkcs11KeySource } from '../../src/keys/pkcs11-key-source.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { requireTool } from '../rig/tools.js'

// The PKCS#11 key source against a real SoftHSM2 token, provisioned by OpenSC's pkcs11-tool
// (an independent writer and reader of the same objects).

const MODULE = '/usr/lib/softhsm/libsofthsm2.so'
const PIN = '123456'
const haveTools = requireTool('softhsm2-util', 'pkcs11-tool')

describe.skipIf(!haveTools)('pkcs11 key source on SoftHSM2', () => {
  let dir: string
  let savedConf: string | undefined
  let expected: Buffer
  const env = () => ({ ...process.env, SOFTHSM2_CONF: join(dir, 'softhsm2.conf') })
  const tool = (args: string[]) =>
    execFileSync('pkcs11-tool', ['--module', MODULE, '--login', '--pin', PIN, ...args], {
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  const keygen = (label: string, ...flags: string[]) =>
    tool(['--keygen', '--key-type', 'GENERIC:32', '--label', label, ...flags])

  beforeAll(async () => {
    if (!existsSync(MODULE)) throw new Error(`${MODULE} is missing (Debian package softhsm2)`)
    dir = await makeTempDir()
    await mkdir(join(dir, 'tokens'))
    await writeFile(
      join(dir, 'softhsm2.conf'),
      `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
    )
    execFileSync(
      'softhsm2-util',
      ['--init-token', '--free', '--label', 'ocipull', '--pin', PIN, '--so-pin', '654321'],
      {
        env: env(),
        stdio: 'ignore',
      },
    )
    keygen('default/key/key_id1', '--extractable')
    tool([
      '--read-object',
      '--type',
      'secrkey',
      '--label',
      'default/key/key_id1',
      '-o',
      join(dir, 'expected.bin'),
    ])
    expected = await readFile(join(dir, 'expected.bin'))
    keygen('default/key/sensitive', '--sensitive')
    keygen('default/key/dup', '--extractable')
    keygen('default/key/dup', '--extractable')
    // SoftHSM reads SOFTHSM2_CONF when the module initializes, in this process.
    savedConf = process.env['SOFTHSM2_CONF']
    process.env['SOFTHSM2_CONF'] = join(dir, 'softhsm2.conf')
  })
  afterAll(async () => {
    if (savedConf === undefined) delete process.env['SOFTHSM2_CONF']
    else process.env['SOFTHSM2_CONF'] = savedConf
    await removeTempDirs()
  })

  test('reads the generic secret labelled repo/type/tag (the value pkcs11-tool reads)', async () => {
    expect(expected).toHaveLength(32)
    const src = pkcs11KeySource({ module: MODULE, slot: 0, pin: PIN })
    expect(Buffer.from(await src.getResource('kbs:///default/key/key_id1'))).toEqual(expected)
    // Every call opens and finalizes the module again: a second call works the same way.
    expect(Buffer.from(await src.getResource('kbs://ignored-host/default/key/key_id1'))).toEqual(expected)
  })

  const failures: [string, () => Parameters<typeof pkcs11KeySource>[0], string, string, RegExp][] = [
    [
      'a missing label',
      () => ({ module: MODULE, slot: 0, pin: PIN }),
      'kbs:///default/key/none',
      'ERR_KEY_UNAVAILABLE',
      /no generic secret with this label/,
    ],
    [
      'a sensitive object',
      () => ({ module: MODULE, slot: 0, pin: PIN }),
      'kbs:///default/key/sensitive',
      'ERR_KEY_UNAVAILABLE',
      /cannot read the value.*CKR_ATTRIBUTE_SENSITIVE/,
    ],
    [
      'two objects with the label',
      () => ({ module: MODULE, slot: 0, pin: PIN }),
      'kbs:///default/key/dup',
      'ERR_KEY_UNAVAILABLE',
      /several generic secrets/,
    ],
    [
      'a wrong PIN',
      () => ({ module: MODULE, slot: 0, pin: '000000' }),
      'kbs:///default/key/key_id1',
      'ERR_KEY_UNAVAILABLE',
      /C_Login: CKR_PIN_INCORRECT/,
    ],
    [
      'a slot index past the end',
      () => ({ module: MODULE, slot: 7, pin: PIN }),
      'kbs:///default/key/key_id1',
      'ERR_KEY_UNAVAILABLE',
      /no slot 7/,
    ],
    [
      'a module that does not exist',
      () => ({ module: '/nonexistent/libp11.so', slot: 0, pin: PIN }),
      'kbs:///default/key/key_id1',
      'ERR_KEY_UNAVAILABLE',
      /cannot load the module/,
    ],
    [
      'a value over the cap',
      () => ({ module: MODULE, slot: 0, pin: PIN, maxBytes: 16 }),
      'kbs:///default/key/key_id1',
      'ERR_KEY_UNAVAILABLE',
      /over the limit/,
    ],
    [
      'a plugin URI',
      () => ({ module: MODULE, slot: 0, pin: PIN }),
      'kbs+pkcs11:///default/key/key_id1',
      'ERR_RESOURCE_URI_INVALID',
      /kbs:\/\/\/repository\/type\/tag only/,
    ],
  ]
  for (const [name, options, uri, code, message] of failures) {
    test(name, async () => {
      const err = await pkcs11KeySource(options())
        .getResource(uri)
        .catch((e: unknown) => e)
      expect(err).toMatchObject({ code })
      expect((err as Error).message).toMatch(message)
      expect((err as Error).message).not.toContain(PIN)
    })
  }

  test('the token still works after the failures (nothing left initialized or logged in)', async () => {
    const src = pkcs11KeySource({ module: MODULE, slot: 0, pin: PIN })
    expect(Buffer.from(await src.getResource('kbs:///default/key/key_id1'))).toEqual(expected)
  })
})
