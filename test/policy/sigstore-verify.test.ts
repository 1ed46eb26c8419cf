import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { parseCertificates, parseSigstorePublicKey } from '../../src/policy/sigstore-keys.js'
import {
  ANNOTATION_BUNDLE,
  ANNOTATION_CERTIFICATE,
  ANNOTATION_CHAIN,
  ANNOTATION_SIGNATURE,
  verifySigstoreSignature,
} from '../../src/policy/sigstore-verify.js'
import { requireTool } from '../rig/index.js'
import {
  type Cert,
  createOpensslSigner,
  type KeyKind,
  makeRekorBundle,
  type OpensslSigner,
} from './openssl-signer.js'

const D = `sha256:${'9f'.repeat(32)}`
const payloadText = (ref = 'registry.example.test/ns/app') =>
  `{"critical":{"identity":{"docker-reference":"${ref}"},"image":{"docker-manifest-digest":"${D}"},"type":"cosign container image signature"},"optional":null}`
const pem = (text: string) => new TextEncoder().encode(text)
const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex')

describe.skipIf(!requireTool('openssl'))('verifySigstoreSignature with openssl-made signatures', () => {
  let o: OpensslSigner
  beforeAll(async () => {
    o = await createOpensslSigner()
  })
  afterAll(() => o?.remove())

  test.each<KeyKind>(['ecdsa-p256', 'ecdsa-p384', 'rsa', 'ed25519'])('keyed: %s', async (kind) => {
    const k = await o.generateKey(kind)
    const other = await o.generateKey(kind)
    const payload = Buffer.from(payloadText())
    const sig = (await o.sign(k, payload)).toString('base64')
    const trust = (...keys: string[]) => ({
      kind: 'keys' as const,
      keys: keys.map((p, i) => parseSigstorePublicKey(pem(p), `key ${i}`)),
    })
    const v = verifySigstoreSignature({
      payload,
      annotations: { [ANNOTATION_SIGNATURE]: sig },
      trust: trust(other.publicPem, k.publicPem),
      what: 'att',
    })
    expect(v).toEqual({
      payload: { dockerReference: 'registry.example.test/ns/app', manifestDigest: D },
      signer: 'trusted key 2',
    })
    // base64 wrapped over lines is accepted, as Go's decoder does
    const wrapped = sig.replace(/(.{20})/g, '$1\n')
    expect(
      verifySigstoreSignature({
        payload,
        annotations: { [ANNOTATION_SIGNATURE]: wrapped },
        trust: trust(k.publicPem),
        what: 'a',
      }).payload.manifestDigest,
    ).toBe(D)
    expect(() =>
      verifySigstoreSignature({
        payload,
        annotations: { [ANNOTATION_SIGNATURE]: sig },
        trust: trust(other.publicPem),
        what: 'att',
      }),
    ).toThrow(/att: cryptographic signature verification failed/)
    const tampered = Buffer.from(payloadText('registry.example.test/ns/evil'))
    expect(() =>
      verifySigstoreSignature({
        payload: tampered,
        annotations: { [ANNOTATION_SIGNATURE]: sig },
        trust: trust(k.publicPem),
        what: 'att',
      }),
    ).toThrow(/verification failed/)
  })

  test('keys: PEM problems and missing annotations', async () => {
    expect(() => parseSigstorePublicKey(pem('not a key'), 'keyPath /k')).toThrow(
      /keyPath \/k: not a PEM public key/,
    )
    const k = await o.generateKey('ed25519')
    expect(() => parseSigstorePublicKey(pem(k.publicPem), 'rekor', { ecdsaOnly: true })).toThrow(/want ECDSA/)
    const trust = { kind: 'keys' as const, keys: [parseSigstorePublicKey(pem(k.publicPem), 'k')] }
    expect(() =>
      verifySigstoreSignature({ payload: Buffer.from('{}'), annotations: {}, trust, what: 'a' }),
    ).toThrow(/missing annotation dev.cosignproject.cosign\/signature/)
    expect(() =>
      verifySigstoreSignature({
        payload: Buffer.from('{}'),
        annotations: { [ANNOTATION_SIGNATURE]: '***' },
        trust,
        what: 'a',
      }),
    ).toThrow(/not base64/)
    // A valid signature over a payload that is not a cosign payload: crypto passes, parsing fails.
    const sig = (await o.sign(k, '{"critical":{}}')).toString('base64')
    expect(() =>
      verifySigstoreSignature({
        payload: Buffer.from('{"critical":{}}'),
        annotations: { [ANNOTATION_SIGNATURE]: sig },
        trust,
        what: 'a',
      }),
    ).toThrow(/payload: \(document\): missing "optional"/)
  })

  describe('Rekor SET (keyed)', () => {
    let signing: Awaited<ReturnType<OpensslSigner['generateKey']>>
    let rekor: Awaited<ReturnType<OpensslSigner['generateKey']>>
    let otherRekor: Awaited<ReturnType<OpensslSigner['generateKey']>>
    const payload = Buffer.from(payloadText())
    let sig: Buffer
    beforeAll(async () => {
      signing = await o.generateKey('ecdsa-p256')
      rekor = await o.generateKey('ecdsa-p256')
      otherRekor = await o.generateKey('ecdsa-p256')
      sig = await o.sign(signing, payload)
    })
    const check = (bundle: string | undefined, rekorPem = rekor.publicPem) =>
      verifySigstoreSignature({
        payload,
        annotations: {
          [ANNOTATION_SIGNATURE]: sig.toString('base64'),
          ...(bundle === undefined ? {} : { [ANNOTATION_BUNDLE]: bundle }),
        },
        trust: { kind: 'keys', keys: [parseSigstorePublicKey(pem(signing.publicPem), 'k')] },
        rekorKeys: [parseSigstorePublicKey(pem(rekorPem), 'rekor', { ecdsaOnly: true })],
        what: 'att',
      })
    const entry = () => ({
      payloadSha256: sha256(payload),
      signature: sig,
      publicKeyPem: signing.publicPem,
      integratedTime: 1700000000,
    })

    test('a valid SET is accepted and gives the integrated time', async () => {
      expect(check(await makeRekorBundle(o, rekor, entry())).integratedTime).toBe(1700000000)
    })
    test.each([
      ['missing bundle', async () => undefined, /Rekor SET is required/],
      [
        'untrusted Rekor key',
        async () => makeRekorBundle(o, otherRekor, entry()),
        /not signed by a trusted Rekor key/,
      ],
      [
        'unknown key in the SET',
        async () => makeRekorBundle(o, rekor, entry(), { extraKey: true }),
        /unknown key "x"/,
      ],
      [
        'payload hash',
        async () => makeRekorBundle(o, rekor, { ...entry(), payloadSha256: sha256('other') }),
        /hash.value does not match/,
      ],
      [
        'signature',
        async () => makeRekorBundle(o, rekor, { ...entry(), signature: Buffer.from('other') }),
        /not the signature being verified/,
      ],
      [
        'public key',
        async () => makeRekorBundle(o, rekor, { ...entry(), publicKeyPem: rekor.publicPem }),
        /not the key or certificate that signed/,
      ],
      [
        'integratedTime changed after signing',
        async () =>
          (await makeRekorBundle(o, rekor, entry())).replace(
            '"integratedTime":1700000000',
            '"integratedTime":1700000001',
          ),
        /not signed by a trusted Rekor key/,
      ],
      ['not JSON', async () => 'SET', /Rekor SET: \(document\)/],
    ])('refuses: %s', async (_name, bundle, message) => {
      const b = await bundle()
      expect(() => check(b)).toThrow(
        expect.objectContaining({ code: 'ERR_SIGNATURE_INVALID', message: expect.stringMatching(message) }),
      )
    })
  })

  describe('Fulcio certificates (with Rekor)', () => {
    let root: Cert
    let intermediate: Cert
    let otherRoot: Cert
    let rekor: Awaited<ReturnType<OpensslSigner['generateKey']>>
    const payload = Buffer.from(payloadText())
    const issuer = 'https://issuer.example.test'
    const email = 'signer@example.test'
    beforeAll(async () => {
      root = await o.ca('Test Fulcio Root')
      intermediate = await o.ca('Test Fulcio Intermediate', root)
      otherRoot = await o.ca('Another Root')
      rekor = await o.generateKey('ecdsa-p256')
    })
    const attempt = async (
      options: {
        leaf?: Cert
        trustRoot?: Cert
        chain?: string
        integratedTime?: number
        trustEmail?: string
        trustIssuer?: string
        signWith?: Cert
      } = {},
    ) => {
      const leaf = options.leaf ?? (await o.leaf({ issuer: intermediate, email, oidcIssuer: issuer }))
      const signature = await o.sign({ key: (options.signWith ?? leaf).key, kind: 'ecdsa-p256' }, payload)
      const bundle = await makeRekorBundle(o, rekor, {
        payloadSha256: sha256(payload),
        signature,
        publicKeyPem: leaf.certPem,
        integratedTime: options.integratedTime ?? Math.floor(Date.now() / 1000),
      })
      return verifySigstoreSignature({
        payload,
        annotations: {
          [ANNOTATION_SIGNATURE]: signature.toString('base64'),
          [ANNOTATION_CERTIFICATE]: leaf.certPem,
          [ANNOTATION_CHAIN]: options.chain ?? `${intermediate.certPem}${root.certPem}`,
          [ANNOTATION_BUNDLE]: bundle,
        },
        trust: {
          kind: 'fulcio',
          roots: parseCertificates((options.trustRoot ?? root).certPem, 'caPath'),
          oidcIssuer: options.trustIssuer ?? issuer,
          subjectEmail: options.trustEmail ?? email,
        },
        rekorKeys: [parseSigstorePublicKey(pem(rekor.publicPem), 'rekor', { ecdsaOnly: true })],
        what: 'att',
      })
    }

    test('a certificate chaining to the trusted root, with the right email and issuer', async () => {
      const v = await attempt()
      expect(v.signer).toBe(`${email} (${issuer})`)
      expect(v.payload.manifestDigest).toBe(D)
    })
    test('refuses: wrong email, wrong issuer, other root, missing intermediate, outside validity', async () => {
      await expect(attempt({ trustEmail: 'someone@else.test' })).rejects.toThrow(
        /certificate subject "signer@example.test" is not/,
      )
      await expect(attempt({ trustIssuer: 'https://other.issuer' })).rejects.toThrow(
        /OIDC issuer "https:\/\/issuer.example.test" is not trusted/,
      )
      await expect(attempt({ trustRoot: otherRoot })).rejects.toThrow(
        /does not chain to a trusted Fulcio root/,
      )
      await expect(attempt({ chain: root.certPem })).rejects.toThrow(/does not chain/)
      await expect(attempt({ integratedTime: Math.floor(Date.now() / 1000) + 3 * 86400 })).rejects.toThrow(
        /was not valid at/,
      )
    })
    test('refuses: issuer extensions that disagree, no codeSigning, payload signed by another key', async () => {
      const mixed = await o.leaf({
        issuer: intermediate,
        email,
        oidcIssuer: issuer,
        v1Issuer: 'https://v1.example',
      })
      await expect(attempt({ leaf: mixed })).rejects.toThrow(/OIDC issuer extensions disagree/)
      const server = await o.leaf({ issuer: intermediate, email, oidcIssuer: issuer, codeSigning: false })
      await expect(attempt({ leaf: server })).rejects.toThrow(/not for code signing/)
      await expect(attempt({ signWith: intermediate })).rejects.toThrow(
        /not signed by a trusted Rekor key|does not verify with the certificate/,
      )
    })
  })
})
