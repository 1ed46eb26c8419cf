import { describe, expect, test } from 'vitest'
import { parseAnnotationPacket } from '../../src/decrypt/annotation-packet.js'
import { parseKeyProviderConfig } from '../../src/decrypt/keyprovider-config.js'
import { decodeKeyProviderOutput } from '../../src/decrypt/keyprovider-messages.js'
import { readLayerEncryption } from '../../src/decrypt/layer-annotations.js'
import { parsePrivateOptions } from '../../src/decrypt/layer-options.js'
import { parseDecryptionKeySpec, parseKeyFile } from '../../src/decrypt/private-keys.js'
import { decodeBase64 } from '../../src/decrypt/strict-base64.js'

/** The parsers of untrusted ocicrypt data: the good forms, and a table of bad ones per parser. */

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64')
const HMAC = b64(Buffer.alloc(32, 1))
const D = `sha256:${'a'.repeat(64)}`

describe('strict base64', () => {
  test.each(['', 'QQ==', 'QUI=', 'QUJD', 'TWFu'])('accepts %j', (s) =>
    expect(decodeBase64(s, 'ERR_MANIFEST_INVALID', 'x').toString('base64')).toBe(s),
  )
  test.each(['QQ', 'QQ=', 'Q===', 'QR==', 'QU I=', 'QUJD\n', '-_8=', 'QUJD====', '=QUJ'])('rejects %j', (s) =>
    expect(() => decodeBase64(s, 'ERR_MANIFEST_INVALID', 'field x')).toThrow(
      expect.objectContaining({ code: 'ERR_MANIFEST_INVALID', message: expect.stringContaining('field x') }),
    ),
  )
})

describe('layer annotations and options', () => {
  const pub = (o: unknown) => b64(JSON.stringify(o))
  const layer = (annotations: Record<string, string>) => ({ mediaType: 'm', digest: D, size: 1, annotations })
  const good = {
    'org.opencontainers.image.enc.pubopts': pub({
      cipher: 'AES_256_CTR_HMAC_SHA256',
      hmac: HMAC,
      cipheroptions: {},
    }),
    'org.opencontainers.image.enc.keys.jwe': `${b64('a')},${b64('b')}`,
  }

  test('reads pubopts and splits the comma-separated wrapped keys', () => {
    const e = readLayerEncryption(layer(good), 'l')
    expect(e.pubopts.cipher).toBe('AES_256_CTR_HMAC_SHA256')
    expect(e.wrapped).toEqual([{ scheme: 'jwe', entries: [Buffer.from('a'), Buffer.from('b')] }])
  })

  const bad: [string, Record<string, string>, RegExp][] = [
    [
      'no wrapped keys',
      { 'org.opencontainers.image.enc.pubopts': good['org.opencontainers.image.enc.pubopts'] },
      /no org\.opencontainers\.image\.enc\.keys\.\* annotation/,
    ],
    [
      'an empty entry',
      { ...good, 'org.opencontainers.image.enc.keys.jwe': `${b64('a')},` },
      /entry 2: empty/,
    ],
    [
      'hmac of 31 bytes',
      { ...good, 'org.opencontainers.image.enc.pubopts': pub({ cipher: 'c', hmac: b64(Buffer.alloc(31)) }) },
      /hmac: want 32 bytes/,
    ],
    [
      'cipheroptions not bytes',
      {
        ...good,
        'org.opencontainers.image.enc.pubopts': pub({ cipher: 'c', hmac: HMAC, cipheroptions: { nonce: 5 } }),
      },
      /cipheroptions\.nonce: want a base64 string/,
    ],
    ['pubopts an array', { ...good, 'org.opencontainers.image.enc.pubopts': pub([]) }, /want an object/],
    [
      '65 wrapped keys',
      { ...good, 'org.opencontainers.image.enc.keys.jwe': Array(65).fill(b64('a')).join(',') },
      /more than 64 wrapped keys/,
    ],
  ]
  test.each(bad)('rejects %s', (_name, annotations, message) =>
    expect(() => readLayerEncryption(layer(annotations), 'l')).toThrow(
      expect.objectContaining({ code: 'ERR_MANIFEST_INVALID', message: expect.stringMatching(message) }),
    ),
  )

  test('private options: a prototype key in cipheroptions stays data', () => {
    const p = parsePrivateOptions(
      Buffer.from(
        JSON.stringify({
          symkey: HMAC,
          digest: D,
          cipheroptions: { ['__proto__']: b64('x'), nonce: b64('n') },
        }),
      ),
      'p',
    )
    expect(Object.getPrototypeOf(p.cipherOptions)).toBe(null)
    expect(p.cipherOptions['nonce']).toEqual(Buffer.from('n'))
  })
  test.each([
    ['symkey of 16 bytes', { symkey: b64(Buffer.alloc(16)), digest: D }, /symkey: want 32 bytes/],
    ['a bad digest', { symkey: HMAC, digest: 'md5:00' }, /unsupported digest algorithm/],
    ['no digest', { symkey: HMAC }, /digest: missing/],
  ])('private options: rejects %s', (_n, o, message) =>
    expect(() => parsePrivateOptions(Buffer.from(JSON.stringify(o)), 'p')).toThrow(
      expect.objectContaining({ code: 'ERR_DECRYPTION_FAILED', message: expect.stringMatching(message) }),
    ),
  )
})

describe('attestation-agent annotation packet', () => {
  const v1 = {
    kid: 'kbs:///a/b/c',
    wrapped_data: b64(Buffer.alloc(40)),
    iv: b64(Buffer.alloc(12)),
    wrap_type: 'A256GCM',
  }
  const parse = (o: unknown) => parseAnnotationPacket(Buffer.from(JSON.stringify(o)), 'packet')

  test('v1, v2 and a non-kbs provider', () => {
    expect(parse(v1)).toMatchObject({
      version: '0.1.0',
      provider: 'kbs',
      kid: 'kbs:///a/b/c',
      wrapType: 'A256GCM',
    })
    expect(
      parse({ ...v1, version: '0.1.0', provider: 'kbs', provider_settings: {}, annotations: {}, extra: 1 }),
    ).toMatchObject({ provider: 'kbs' })
    expect(
      parse({ kid: 'k', wrapped_data: '', provider: 'aliyun', provider_settings: { a: 1 } }),
    ).toMatchObject({ provider: 'aliyun', iv: undefined })
  })
  test.each([
    ['no kid', { ...v1, kid: undefined }, /kid: missing/],
    ['a number kid', { ...v1, kid: 7 }, /kid: want a string/],
    ['an unknown wrap_type', { ...v1, wrap_type: 'A128KW' }, /wrap_type: want A256GCM or A256CTR/],
    ['kbs without iv', { ...v1, iv: undefined }, /iv: missing/],
    ['kbs without wrap_type', { ...v1, wrap_type: null }, /wrap_type: missing/],
    ['another version', { ...v1, version: '0.2.0' }, /version: want 0\.1\.0/],
    ['wrapped_data not base64', { ...v1, wrapped_data: 'a b' }, /wrapped_data: not standard padded base64/],
    [
      'provider_settings not an object',
      { ...v1, provider_settings: 'x' },
      /provider_settings: want an object/,
    ],
  ])('rejects %s', (_n, o, message) =>
    expect(() => parse(o)).toThrow(
      expect.objectContaining({ code: 'ERR_MANIFEST_INVALID', message: expect.stringMatching(message) }),
    ),
  )
})

describe('keyprovider messages and config', () => {
  test.each([
    ['a byte of 256', '{"keyunwrapresults":{"optsdata":[1,256]}}', /optsdata\[1\]: want a byte/],
    ['a non-integer byte', '{"keyunwrapresults":{"optsdata":[1.5]}}', /optsdata\[0\]: want a byte/],
    ['optsdata an object', '{"keyunwrapresults":{"optsdata":{}}}', /want base64 or an array of bytes/],
    ['optsdata not base64', '{"keyunwrapresults":{"optsdata":"%%"}}', /not standard padded base64/],
    ['not JSON', 'nope', /not valid JSON/],
  ])('output: rejects %s', (_n, text, message) =>
    expect(() => decodeKeyProviderOutput(Buffer.from(text), 'provider')).toThrow(
      expect.objectContaining({ code: 'ERR_KEY_UNAVAILABLE', message: expect.stringMatching(message) }),
    ),
  )
  test('output: null results are absent', () =>
    expect(
      decodeKeyProviderOutput(
        Buffer.from('{"keywrapresults":{"annotation":null},"keyunwrapresults":null}'),
        'p',
      ),
    ).toEqual({}))

  test('config: cmd, grpc, ttrpc, native', () => {
    const conf = {
      'key-providers': {
        a: { cmd: { path: '/bin/a', args: ['-x'] } },
        b: { grpc: '127.0.0.1:50000' },
        c: { ttrpc: 'unix:///run/cdh.sock' },
        d: { native: 'attestation-agent' },
      },
    }
    expect([...parseKeyProviderConfig(Buffer.from(JSON.stringify(conf)), 'c')]).toEqual([
      ['a', { kind: 'cmd', path: '/bin/a', args: ['-x'] }],
      ['b', { kind: 'grpc', address: '127.0.0.1:50000' }],
      ['c', { kind: 'ttrpc', address: 'unix:///run/cdh.sock' }],
      ['d', { kind: 'native', address: 'attestation-agent' }],
    ])
  })
  test.each([
    [
      'a provider with nothing',
      { 'key-providers': { a: {} } },
      /key-providers\.a: want cmd, grpc, ttrpc or native/,
    ],
    [
      'args not strings',
      { 'key-providers': { a: { cmd: { path: '/p', args: [1] } } } },
      /args\[0\]: want a string/,
    ],
    ['key-providers an array', { 'key-providers': [] }, /key-providers: want an object/],
  ])('config: rejects %s', (_n, o, message) =>
    expect(() => parseKeyProviderConfig(Buffer.from(JSON.stringify(o)), 'conf')).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_FILE_INVALID', message: expect.stringMatching(message) }),
    ),
  )
})

describe('decryption key specs and files', () => {
  test.each([
    ['key.pem', { path: 'key.pem' }],
    ['key.pem:pw', { path: 'key.pem', password: 'pw' }],
    ['key.pem:pass=a:b', { path: 'key.pem', password: 'pass=a:b' }],
    ['key.pem:', { path: 'key.pem', password: '' }],
  ])('parses %j', (text, want) => expect(parseDecryptionKeySpec(text)).toEqual(want))
  test.each(['', ':pw'])('rejects %j', (text) =>
    expect(() => parseDecryptionKeySpec(text)).toThrow(
      expect.objectContaining({ code: 'ERR_OPTIONS_INVALID' }),
    ),
  )
  test.each([
    ['random bytes', Buffer.from([1, 2, 3, 4])],
    ['a public JWK', Buffer.from('{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}')],
    ['a certificate PEM', Buffer.from('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')],
    ['broken JSON', Buffer.from('{"kty":')],
  ])('key file: rejects %s with ERR_KEY_INVALID naming the file', (_n, bytes) =>
    expect(() => parseKeyFile(bytes, 'k.pem')).toThrow(
      expect.objectContaining({
        code: 'ERR_KEY_INVALID',
        message: expect.stringContaining('decryption key k.pem'),
      }),
    ),
  )
})
