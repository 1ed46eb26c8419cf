import { createHash } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import { parseSignatureBlob } from '../../src/policy/signature-blob.js'
import {
  COSIGN_SIGNATURE_TYPE,
  manifestMatchesDigest,
  parseSignaturePayload,
  SIMPLE_SIGNING_TYPE,
} from '../../src/policy/signature-payload.js'

const D = `sha256:${'0a'.repeat(32)}`
// Exactly what skopeo 1.9.3 writes (keys sorted, compact).
const skopeoPayload = `{"critical":{"identity":{"docker-reference":"registry.example.test/ns/app:v1"},"image":{"docker-manifest-digest":"${D}"},"type":"atomic container signature"},"optional":{"creator":"atomic 5.23.1","timestamp":1795392494}}`
const parse = (
  text: string,
  type: Parameters<typeof parseSignaturePayload>[1]['type'] = SIMPLE_SIGNING_TYPE,
) => parseSignaturePayload(new TextEncoder().encode(text), { type, what: 'sig' })
const critical = (over: Record<string, unknown> = {}) => ({
  type: SIMPLE_SIGNING_TYPE,
  image: { 'docker-manifest-digest': D },
  identity: { 'docker-reference': 'quay.io/a:b' },
  ...over,
})

describe('parseSignaturePayload', () => {
  test('skopeo output', () => {
    expect(parse(skopeoPayload)).toEqual({
      dockerReference: 'registry.example.test/ns/app:v1',
      manifestDigest: D,
      creator: 'atomic 5.23.1',
      timestamp: 1795392494,
    })
  })
  test('cosign payload with optional null', () => {
    const p = JSON.stringify({ critical: critical({ type: COSIGN_SIGNATURE_TYPE }), optional: null })
    expect(parse(p, COSIGN_SIGNATURE_TYPE)).toEqual({ dockerReference: 'quay.io/a:b', manifestDigest: D })
  })
  test('unknown optional members are ignored', () => {
    expect(parse(JSON.stringify({ critical: critical(), optional: { x: [1.5, { y: 2 }] } }))).toMatchObject({
      manifestDigest: D,
    })
  })

  const bad: [string, string, string][] = [
    ['extra top-level key', JSON.stringify({ critical: critical(), optional: {}, x: 1 }), 'unknown key "x"'],
    ['no optional', JSON.stringify({ critical: critical() }), 'missing "optional"'],
    [
      'optional null for simple signing',
      JSON.stringify({ critical: critical(), optional: null }),
      'optional: want an object',
    ],
    [
      'extra critical key',
      JSON.stringify({ critical: critical({ extra: 1 }), optional: {} }),
      'critical: unknown key "extra"',
    ],
    [
      'wrong type',
      JSON.stringify({ critical: critical({ type: 'cosign container image signature' }), optional: {} }),
      'unexpected type',
    ],
    [
      'bad digest',
      JSON.stringify({
        critical: critical({ image: { 'docker-manifest-digest': 'sha256:xyz' } }),
        optional: {},
      }),
      'not a valid digest',
    ],
    [
      'digest not a string',
      JSON.stringify({ critical: critical({ image: { 'docker-manifest-digest': 1 } }), optional: {} }),
      'want a string',
    ],
    [
      'extra image key',
      JSON.stringify({ critical: critical({ image: { 'docker-manifest-digest': D, x: 1 } }), optional: {} }),
      'critical.image: unknown key',
    ],
    [
      'missing identity',
      JSON.stringify({
        critical: { type: SIMPLE_SIGNING_TYPE, image: { 'docker-manifest-digest': D } },
        optional: {},
      }),
      'missing "identity"',
    ],
    [
      'fractional timestamp',
      JSON.stringify({ critical: critical(), optional: { timestamp: 1.5 } }),
      'optional.timestamp: want an integer',
    ],
    [
      'exponent timestamp',
      `{"critical":${JSON.stringify(critical())},"optional":{"timestamp":1e3}}`,
      'want an integer',
    ],
    [
      'string creator',
      JSON.stringify({ critical: critical(), optional: { creator: 5 } }),
      'optional.creator: want a string',
    ],
    [
      'duplicate key',
      `{"critical":${JSON.stringify(critical())},"optional":{},"optional":{}}`,
      'duplicate key',
    ],
    ['trailing data', `${skopeoPayload}\n{}`, 'data after the top-level value'],
    ['not JSON', 'This is not JSON\n', 'unexpected "T"'],
    ['array', '[]', 'want an object'],
  ]
  test.each(bad)('refuses %s', (_name, text, message) => {
    expect(() => parse(text)).toThrow(
      expect.objectContaining({ code: 'ERR_SIGNATURE_INVALID', message: expect.stringContaining(message) }),
    )
  })

  test('manifestMatchesDigest: sha256 and sha512 over the exact bytes', () => {
    const bytes = new TextEncoder().encode('{"schemaVersion":2}')
    const sha256 = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
    const sha512 = `sha512:${createHash('sha512').update(bytes).digest('hex')}`
    expect(manifestMatchesDigest(bytes, sha256)).toBe(true)
    expect(manifestMatchesDigest(bytes, sha512)).toBe(true)
    expect(manifestMatchesDigest(bytes, D)).toBe(false)
    expect(manifestMatchesDigest(bytes, 'md5:abc')).toBe(false)
  })
})

describe('parseSignatureBlob', () => {
  test.each([
    ['compressed (old format)', [0xa3, 0x01]],
    ['compressed (new format)', [0xc8, 0x01]],
    ['one-pass signature', [0x90, 0x0d]],
    ['signature packet', [0x89, 0x01]],
    ['new-format signature packet', [0xc2, 0x01]],
  ])('binary OpenPGP: %s', (_name, bytes) => {
    expect(parseSignatureBlob(new Uint8Array(bytes), 's')).toMatchObject({ kind: 'simple-signing' })
  })
  test('\\0simple-signing and \\0sigstore-json containers', () => {
    const simple = parseSignatureBlob(Buffer.from('\0simple-signing\n\xa3\x01', 'latin1'), 's')
    expect(simple.kind).toBe('simple-signing')
    expect([...(simple as { bytes: Uint8Array }).bytes]).toEqual([0xa3, 0x01])
    const json = JSON.stringify({
      mimeType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      payload: Buffer.from('{"x":1}').toString('base64'),
      annotations: { 'dev.cosignproject.cosign/signature': 'c2ln' },
    })
    const sigstore = parseSignatureBlob(Buffer.from(`\0sigstore-json\n${json}`), 's')
    expect(sigstore).toMatchObject({
      kind: 'sigstore',
      mimeType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      annotations: { 'dev.cosignproject.cosign/signature': 'c2ln' },
    })
    expect(Buffer.from((sigstore as { payload: Uint8Array }).payload).toString()).toBe('{"x":1}')
  })
  test.each([
    ['ASCII armor', '-----BEGIN PGP MESSAGE-----\n', 'starting with byte 0x2d (ASCII-armored or clearsigned'],
    ['clearsigned', '-----BEGIN PGP SIGNED MESSAGE-----\n', 'ASCII-armored or clearsigned'],
    ['JSON', '{"critical":{}}', 'starting with byte 0x7b'],
    ['empty', '', 'empty signature'],
    ['unknown container', '\0x509\nabc', 'unrecognized signature format "x509"'],
    [
      'sigstore-json with extra key',
      '\0sigstore-json\n{"mimeType":"m","payload":"","x":1}',
      'unknown key "x"',
    ],
    [
      'sigstore-json bad base64',
      '\0sigstore-json\n{"mimeType":"m","payload":"@@"}',
      'payload: want standard base64',
    ],
  ])('refuses %s', (_name, text, message) => {
    expect(() => parseSignatureBlob(Buffer.from(text, 'latin1'), 'sig-1')).toThrow(
      expect.objectContaining({ code: 'ERR_SIGNATURE_INVALID', message: expect.stringContaining(message) }),
    )
  })
})
