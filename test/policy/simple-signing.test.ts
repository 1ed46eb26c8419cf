import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { digestOf } from '../../src/digest.js'
import { parseSignatureBlob } from '../../src/policy/signature-blob.js'
import { readGpgKeyring, verifySimpleSigning } from '../../src/policy/simple-signing.js'
import { requireTool, run } from '../rig/index.js'
import { createGpgHome, type GpgHome } from './gpg-home.js'

/**
 * Simple signing with real keys and signatures made by gpg (and skopeo standalone-sign), in a
 * throw-away GNUPGHOME. Covers subkeys, expiry, revocation, untrusted keys, several signatures,
 * unsigned messages and strict payloads.
 */
const manifest = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}')
const D = digestOf(manifest)
const payload = (over: { critical?: unknown; ref?: string; digest?: string; type?: string } = {}) =>
  JSON.stringify({
    critical: over.critical ?? {
      identity: { 'docker-reference': over.ref ?? 'registry.example.test/ns/app:v1' },
      image: { 'docker-manifest-digest': over.digest ?? D },
      type: over.type ?? 'atomic container signature',
    },
    optional: { creator: 'test', timestamp: 1700000000 },
  })

describe.skipIf(!requireTool('gpg'))('verifySimpleSigning with gpg-made signatures', () => {
  let g: GpgHome
  let main: string
  let sub: string
  let revokedSub: string
  let expired: string
  let revoked: string
  let other: string
  let trusted: Awaited<ReturnType<typeof readGpgKeyring>>
  beforeAll(async () => {
    g = await createGpgHome()
    main = await g.generateKey('Main Signer')
    sub = await g.addSubkey(main)
    revokedSub = await g.addSubkey(main)
    const tenDaysAgo = Math.floor(Date.now() / 1000) - 10 * 86400
    expired = await g.generateKey('Expired Signer', { expire: '2d', fakedTime: tenDaysAgo })
    revoked = await g.generateKey('Revoked Signer')
    other = await g.generateKey('Untrusted Signer')
  })
  afterAll(() => g?.remove())

  const verify = async (blob: Buffer, keys = trusted) =>
    verifySimpleSigning(
      parseSignatureBlob(blob, 'sig').kind === 'simple-signing' ? blob : Buffer.alloc(0),
      keys,
      {
        what: 'sig',
      },
    )

  test('a key signed by the primary key, with binary, armored and concatenated keyrings', async () => {
    const sig = await g.sign(`${main}!`, payload())
    expect(sig[0]).toBe(0xa3) // compressed packet, like skopeo's
    for (const keyring of [
      await g.exportKeys([main]),
      await g.exportKeys([main], { armor: true }),
      Buffer.concat([
        await g.exportKeys([other], { armor: true }),
        await g.exportKeys([main], { armor: true }),
      ]),
      Buffer.concat([await g.exportKeys([other]), await g.exportKeys([main])]),
    ]) {
      const keys = await readGpgKeyring(keyring, 'keyring')
      const v = await verifySimpleSigning(sig, keys, { what: 'sig' })
      expect(v.primaryFingerprint).toBe(main)
      expect(v.signingFingerprint).toBe(main)
      expect(v.payload).toEqual({
        dockerReference: 'registry.example.test/ns/app:v1',
        manifestDigest: D,
        creator: 'test',
        timestamp: 1700000000,
      })
    }
  })

  test('a subkey signature counts for its primary key', async () => {
    trusted = await readGpgKeyring(await g.exportKeys([main]), 'keyring')
    const v = await verify(await g.sign(`${sub}!`, payload()))
    expect(v.primaryFingerprint).toBe(main)
    expect(v.signingFingerprint).toBe(sub)
  })

  test('revoked subkey, revoked key, expired key and untrusted key are refused', async () => {
    const bySub = await g.sign(`${revokedSub}!`, payload())
    await g.revokeSubkey(main, 2)
    const keys = await readGpgKeyring(await g.exportKeys([main, expired, revoked]), 'keyring')
    await expect(verify(bySub, keys)).rejects.toThrow(/invalid GPG signature: .*[Ss]ubkey is revoked/)
    // the other subkey and the primary key still work after one subkey is revoked
    await expect(verify(await g.sign(`${sub}!`, payload()), keys)).resolves.toMatchObject({
      primaryFingerprint: main,
    })

    const byRevoked = await g.sign(revoked, payload())
    await expect(verify(byRevoked, keys)).resolves.toMatchObject({ primaryFingerprint: revoked })
    await g.revokeKey(revoked)
    const afterRevocation = await readGpgKeyring(await g.exportKeys([main, revoked]), 'keyring')
    await expect(verify(byRevoked, afterRevocation)).rejects.toThrow(/revoked/)

    // signed nine days ago, while the key was valid; the key expired eight days ago
    const byExpired = await g.sign(expired, payload(), {
      fakedTime: Math.floor(Date.now() / 1000) - 9 * 86400,
    })
    await expect(verify(byExpired, keys)).rejects.toThrow(
      expect.objectContaining({ code: 'ERR_SIGNATURE_INVALID', message: expect.stringMatching(/expired/i) }),
    )
    const whenValid = new Date(Date.now() - 9 * 86400 * 1000 + 3600 * 1000)
    await expect(
      verifySimpleSigning(byExpired, keys, { what: 'sig', now: whenValid }),
    ).resolves.toMatchObject({
      primaryFingerprint: expired,
    })

    await expect(verify(await g.sign(other, payload()), keys)).rejects.toThrow(/invalid GPG signature/)
  })

  test('two signatures, unsigned and detached messages are refused', async () => {
    trusted = await readGpgKeyring(await g.exportKeys([main, other]), 'keyring')
    await expect(verify(await g.sign(main, payload(), { alsoSignedBy: other }))).rejects.toThrow(
      /want exactly one signature, got 2/,
    )
    const stored = await g.sign(main, payload(), { mode: 'store' })
    await expect(verifySimpleSigning(stored, trusted, { what: 'sig' })).rejects.toThrow(/not signed/i)
    const detached = await g.sign(main, payload(), { mode: 'detach' })
    await expect(verifySimpleSigning(detached, trusted, { what: 'sig' })).rejects.toThrow(
      /invalid GPG signature/,
    )
  })

  test('armored and clearsigned signatures are refused before any crypto', async () => {
    for (const mode of ['armor', 'clearsign'] as const) {
      const blob = await g.sign(main, payload(), { mode })
      expect(() => parseSignatureBlob(blob, 'signature-1')).toThrow(/starting with byte 0x2d/)
    }
  })

  test('the payload is parsed strictly only after the signature verified', async () => {
    trusted = await readGpgKeyring(await g.exportKeys([main]), 'keyring')
    await expect(verify(await g.sign(main, 'This is not JSON\n'))).rejects.toThrow(
      /payload: .*unexpected "T"/,
    )
    const extra = payload({
      critical: {
        identity: { 'docker-reference': 'a.example/b:c' },
        image: { 'docker-manifest-digest': D },
        type: 'atomic container signature',
        extra: 1,
      },
    })
    await expect(verify(await g.sign(main, extra))).rejects.toThrow(/critical: unknown key "extra"/)
    await expect(
      verify(await g.sign(main, payload({ type: 'cosign container image signature' }))),
    ).rejects.toThrow(/unexpected type/)
    await expect(verify(await g.sign(main, payload({ digest: 'sha256:nothex' })))).rejects.toThrow(
      /not a valid digest/,
    )
  })

  test('readGpgKeyring refuses empty and non-key input', async () => {
    await expect(readGpgKeyring(Buffer.from('hello'), 'k')).rejects.toThrow(/k: no public keys imported/)
    await expect(readGpgKeyring(Buffer.alloc(0), 'k')).rejects.toMatchObject({
      code: 'ERR_SIGNATURE_INVALID',
    })
  })

  test.skipIf(!requireTool('skopeo'))('skopeo standalone-sign output verifies', async () => {
    const file = join(g.dir, 'manifest.json')
    await writeFile(file, manifest)
    const out = join(g.dir, 'standalone.sig')
    await run('skopeo', ['standalone-sign', file, 'registry.example.test/ns/app:v1', main, '-o', out], {
      env: g.env,
    })
    const v = await verify(await readFile(out), await readGpgKeyring(await g.exportKeys([main]), 'k'))
    expect(v.payload).toMatchObject({ dockerReference: 'registry.example.test/ns/app:v1', manifestDigest: D })
    expect(v.payload.creator).toMatch(/^atomic /)
  })
})
