import { createPublicKey, diffieHellman } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import { sampleAttester } from '../../src/kbs/attester.js'
import { canonicalJson } from '../../src/kbs/jcs.js'
import { attestationRequest, parseChallenge } from '../../src/kbs/rcar-messages.js'
import { decryptResourceResponse } from '../../src/kbs/resource-response.js'
import { runtimeDataDigest, runtimeDataText, selectedRuntimeDataHash } from '../../src/kbs/runtime-data.js'
import { concatKdf, concatKdfOtherInfo, encryptResource } from '../../src/kbs/server/encrypt-resource.js'
import { generateTeeKey } from '../../src/kbs/tee-key.js'
import {
  fixture,
  fixtureText,
  intermediates,
  labelDigest,
  vectorEphemeralKey,
  vectorTeeKeyP256,
  vectorTeeKeyRsa,
} from './kbs-test-kit.js'

// Byte-for-byte checks against the generated RCAR vectors 02, 03, 04, 06 and 07.

describe('02 challenge', () => {
  test('parses, keeps the nonce verbatim and selects SHA-384', () => {
    const c = parseChallenge(fixture('02-auth-challenge.json'), 'challenge')
    expect(c.nonce).toBe(labelDigest('nonce').toString('base64'))
    expect(c.extraParams).toBe('')
    expect(selectedRuntimeDataHash(c.extraParams)).toBe('sha384')
  })
})

describe('03 runtime data', () => {
  const nonce = parseChallenge(fixture('02-auth-challenge.json'), 'challenge').nonce
  const binding = { teePubkey: vectorTeeKeyP256().pubkey, nonce, additionalEvidence: '' }

  test('the JCS text is the vector, byte for byte', () => {
    expect(runtimeDataText(binding)).toBe(fixtureText('03-runtime-data.canonical.txt'))
  })

  test('its SHA-384 is the report data', () => {
    expect(runtimeDataDigest(binding).toString('hex')).toBe(fixtureText('03-runtime-data.sha384.hex').trim())
  })
})

describe('04 attestation request', () => {
  test('the client body is the vector, member for member and in order', async () => {
    const key = vectorTeeKeyP256()
    const nonce = parseChallenge(fixture('02-auth-challenge.json'), 'challenge').nonce
    const digest = runtimeDataDigest({ teePubkey: key.pubkey, nonce, additionalEvidence: '' })
    const body = attestationRequest({
      initDataToml: undefined,
      nonce,
      teePubkey: key.pubkey,
      evidence: await sampleAttester().evidence(digest, {}),
      additionalEvidence: '',
    })
    expect(JSON.stringify(body, null, 2)).toBe(fixtureText('04-attest-request.json').trimEnd())
  })
})

describe('06 ECDH-ES+A256KW response', () => {
  const i = intermediates()

  test('the vector inputs derive from their labels', () => {
    expect(labelDigest('cek').toString('hex')).toBe(i.cek_hex)
    expect(labelDigest('iv').subarray(0, 12).toString('hex')).toBe(i.iv_hex)
    const epk = createPublicKey(vectorEphemeralKey()).export({ format: 'jwk' })
    expect(JSON.parse(fixtureText('06-resource-response.protected-header.json')).epk).toEqual({
      crv: 'P-256',
      kty: 'EC',
      x: epk.x,
      y: epk.y,
    })
  })

  test('Z, the Concat-KDF OtherInfo and the wrapping key', () => {
    const z = diffieHellman({
      privateKey: vectorEphemeralKey(),
      publicKey: createPublicKey(vectorTeeKeyP256().privateKey),
    })
    expect(z.toString('hex')).toBe(i.kdf_z_hex)
    expect(concatKdfOtherInfo('ECDH-ES+A256KW', 256).toString('hex')).toBe(i.kdf_otherinfo_hex)
    expect(concatKdf(z, 'ECDH-ES+A256KW', 256).toString('hex')).toBe(i.wrapping_key_hex)
  })

  test('the server JWE builder reproduces the response byte for byte', () => {
    const jwe = encryptResource(Buffer.from(i.payload_b64, 'base64'), vectorTeeKeyP256().pubkey, {
      ephemeralPrivateKey: vectorEphemeralKey(),
      cek: Buffer.from(i.cek_hex, 'hex'),
      iv: Buffer.from(i.iv_hex, 'hex'),
    })
    expect(JSON.stringify(jwe, null, 2)).toBe(fixtureText('06-resource-response.ecdh-es-a256kw.json'))
    expect(Buffer.from(jwe.protected, 'base64url').toString('utf8')).toBe(
      fixtureText('06-resource-response.protected-header.json').trimEnd(),
    )
  })

  test('the client decrypts it (jose, AAD = the received protected string)', async () => {
    const plain = await decryptResourceResponse(
      fixture('06-resource-response.ecdh-es-a256kw.json'),
      vectorTeeKeyP256(),
      'r',
    )
    expect(plain.toString('base64')).toBe(i.payload_b64)
  })
})

describe('07 RSA-OAEP-256 response', () => {
  test('the RSA tee-pubkey has exactly Trustee members, in order', () => {
    expect(JSON.stringify(vectorTeeKeyRsa().pubkey, null, 2)).toBe(
      fixtureText('TEST-ONLY-tee-key-rsa2048.tee-pubkey.json').trimEnd(),
    )
  })

  test('the client decrypts it', async () => {
    const plain = await decryptResourceResponse(
      fixture('07-resource-response.rsa-oaep-256.json'),
      vectorTeeKeyRsa(),
      'r',
    )
    expect(plain.toString('base64')).toBe(intermediates().payload_b64)
  })

  test('a response the server builds for RSA decrypts too', async () => {
    const key = vectorTeeKeyRsa()
    const jwe = encryptResource(Buffer.from('resource'), key.pubkey)
    expect(Buffer.from(jwe.protected, 'base64url').toString()).toBe('{"alg":"RSA-OAEP-256","enc":"A256GCM"}')
    const plain = await decryptResourceResponse(Buffer.from(JSON.stringify(jwe)), key, 'r')
    expect(plain.toString()).toBe('resource')
  })
})

describe('malformed resource responses are ERR_KBS_PROTOCOL', () => {
  const good = JSON.parse(fixtureText('06-resource-response.ecdh-es-a256kw.json')) as Record<string, string>
  const flip = (s: string) => {
    const b = Buffer.from(s, 'base64url')
    b[0] = (b[0] as number) ^ 1
    return b.toString('base64url')
  }
  const header = (h: unknown) => Buffer.from(JSON.stringify(h)).toString('base64url')
  const epk = JSON.parse(fixtureText('06-resource-response.protected-header.json')).epk
  const cases: { name: string; body: string | Record<string, unknown>; want?: RegExp }[] = [
    { name: 'not JSON', body: 'nope' },
    { name: 'an array', body: '[]' },
    { name: 'a general JWE', body: { ...good, recipients: [] }, want: /recipients: unexpected member/ },
    { name: 'an aad member', body: { ...good, aad: 'eA' }, want: /aad: unexpected member/ },
    { name: 'a missing tag', body: { ...good, tag: undefined }, want: /tag: missing/ },
    {
      name: 'padded base64url',
      body: { ...good, iv: `${good['iv']}=` },
      want: /iv: want unpadded base64url/,
    },
    {
      name: 'standard base64',
      body: { ...good, ciphertext: 'a+b/' },
      want: /ciphertext: want unpadded base64url/,
    },
    {
      name: 'the wrong alg',
      body: { ...good, protected: header({ alg: 'RSA-OAEP-256', enc: 'A256GCM' }) },
      want: /alg/,
    },
    { name: 'alg dir', body: { ...good, protected: header({ alg: 'dir', enc: 'A256GCM' }) }, want: /alg/ },
    {
      name: 'A128GCM',
      body: { ...good, protected: header({ alg: 'ECDH-ES+A256KW', enc: 'A128GCM', epk }) },
      want: /enc/,
    },
    {
      name: 'the same header with a space (the AAD changes)',
      body: {
        ...good,
        protected: Buffer.from(`${Buffer.from(good['protected'] as string, 'base64url')} `).toString(
          'base64url',
        ),
      },
      want: /cannot decrypt/,
    },
    { name: 'a flipped tag', body: { ...good, tag: flip(good['tag'] as string) }, want: /cannot decrypt/ },
    {
      name: 'a flipped ciphertext',
      body: { ...good, ciphertext: flip(good['ciphertext'] as string) },
      want: /cannot decrypt/,
    },
    {
      name: 'a flipped wrapped key',
      body: { ...good, encrypted_key: flip(good['encrypted_key'] as string) },
      want: /cannot decrypt/,
    },
  ]
  for (const c of cases) {
    test(c.name, async () => {
      const bytes = Buffer.from(typeof c.body === 'string' ? c.body : JSON.stringify(c.body))
      const err = await decryptResourceResponse(bytes, vectorTeeKeyP256(), 'kbs x: GET /r').catch(
        (e: unknown) => e,
      )
      expect(err).toMatchObject({ code: 'ERR_KBS_PROTOCOL' })
      if (c.want) expect((err as Error).message).toMatch(c.want)
    })
  }

  test('a response for another TEE key', async () => {
    const other = await generateTeeKey()
    const jwe = encryptResource(Buffer.from('x'), other.pubkey)
    const err = await decryptResourceResponse(
      Buffer.from(JSON.stringify(jwe)),
      vectorTeeKeyP256(),
      'r',
    ).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_KBS_PROTOCOL' })
  })
})

describe('JCS', () => {
  const cases: [unknown, string][] = [
    [{ b: 1, a: [true, null, 'x'] }, '{"a":[true,null,"x"],"b":1}'],
    [
      { 'tee-pubkey': { y: '1', x: '2' }, nonce: 'n', 'additional-evidence': '' },
      '{"additional-evidence":"","nonce":"n","tee-pubkey":{"x":"2","y":"1"}}',
    ],
    [{ '\u20ac': 1, '\ud83d\ude00': 2, a: 3 }, '{"a":3,"\u20ac":1,"\ud83d\ude00":2}'],
    [{ n: 1e21, m: -0, f: 0.1 }, '{"f":0.1,"m":0,"n":1e+21}'],
    ['\u2028"\\', '"\u2028\\"\\\\"'],
  ]
  for (const [value, want] of cases) test(want, () => expect(canonicalJson(value)).toBe(want))
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 1n, () => 1]) {
    test(`refuses ${String(bad)}`, () => expect(() => canonicalJson(bad)).toThrow(TypeError))
  }
})
