import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { digestOf } from '../../src/digest.js'
import { parseImageName } from '../../src/image-name.js'
import type { KeySource } from '../../src/keys/key-source.js'
import { evaluatePolicy } from '../../src/policy/evaluate-policy.js'
import { parsePolicy } from '../../src/policy/parse-policy.js'
import { assertPolicyAccepted } from '../../src/policy/policy-verdict.js'
import { parseRegistriesD } from '../../src/policy/registries-d.js'
import { requireTool } from '../rig/index.js'
import { createGpgHome, type GpgHome } from './gpg-home.js'

/**
 * evaluatePolicy without a registry: the manifest bytes are given, signatures come from a file
 * lookaside, keys from a KeySource (as a KBS would serve them). Signatures are made by gpg.
 */
describe.skipIf(!requireTool('gpg'))('evaluatePolicy', () => {
  let g: GpgHome
  let work: string
  let fpr: string
  let keyring: Buffer
  const manifest = Buffer.from(
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}',
  )
  const index = Buffer.from(
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}',
  )
  const manifestDigest = digestOf(manifest)
  const indexDigest = digestOf(index)
  const name = 'registry.example.test/ns/app'
  const payload = (digest: string, ref = `${name}:v1`) =>
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': ref },
        image: { 'docker-manifest-digest': digest },
        type: 'atomic container signature',
      },
      optional: {},
    })

  beforeAll(async () => {
    g = await createGpgHome()
    work = await mkdtemp(join(tmpdir(), 'ocipull-evaluate-'))
    fpr = await g.generateKey('Evaluate Signer')
    keyring = await g.exportKeys([fpr])
    // The per-platform manifest is signed by tag; the index only by digest (as image-rs would accept).
    const put = async (digest: string, blobs: Buffer[]) => {
      const dir = join(work, 'lookaside', `ns/app@${digest.replace(':', '=')}`)
      await mkdir(dir, { recursive: true })
      for (const [i, b] of blobs.entries()) await writeFile(join(dir, `signature-${i + 1}`), b)
    }
    await put(manifestDigest, [await g.sign(fpr, payload(manifestDigest))])
    await put(indexDigest, [await g.sign(fpr, payload(indexDigest))])
  })
  afterAll(async () => {
    await g?.remove()
    if (work) await rm(work, { recursive: true, force: true })
  })

  const kbs = (): KeySource & { asked: string[] } => {
    const asked: string[] = []
    return {
      asked,
      async getResource(uri) {
        asked.push(uri)
        if (uri === 'kbs:///default/gpg-public-config/test') return keyring
        throw Object.assign(new Error('no such resource'), { code: 'ERR_KEY_UNAVAILABLE' })
      },
    }
  }
  const policy = (keyPath = 'kbs:///default/gpg-public-config/test') =>
    parsePolicy(JSON.stringify({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath }] }), {
      origin: 'kbs:///p',
    })
  const registriesD = () =>
    parseRegistriesD([{ name: 'x.yaml', text: `default-docker:\n  lookaside: file://${work}/lookaside\n` }])

  test('keys through a KeySource; the verdict names the user reference and the source used', async () => {
    const keySource = kbs()
    const verdict = await evaluatePolicy({
      policy: policy(),
      reference: parseImageName(`${name}:v1`),
      manifestDigest,
      manifestBytes: manifest,
      source: { name: 'docker://mirror.example.test/ns/app:v1' },
      registriesD: registriesD(),
      keySource,
    })
    expect(verdict).toMatchObject({
      accepted: true,
      image: `docker://${name}:v1`,
      source: 'docker://mirror.example.test/ns/app:v1',
      policy: 'kbs:///p',
      scope: { transport: 'docker' },
      requirements: [{ type: 'signedBy', result: 'accepted', signer: fpr }],
    })
    expect(keySource.asked).toEqual(['kbs:///default/gpg-public-config/test'])
    expect(() => assertPolicyAccepted(verdict)).not.toThrow()
  })

  test('a key the KeySource cannot serve rejects the requirement', async () => {
    const verdict = await evaluatePolicy({
      policy: policy('kbs:///default/missing/key'),
      reference: parseImageName(`${name}:v1`),
      manifestDigest,
      manifestBytes: manifest,
      source: { name: 'x' },
      registriesD: registriesD(),
      keySource: kbs(),
    })
    expect(verdict.accepted).toBe(false)
    expect(verdict.requirements[0]!.reason).toMatch(/cannot load the trusted keys: no such resource/)
    expect(() => assertPolicyAccepted(verdict)).toThrow(
      expect.objectContaining({
        code: 'ERR_POLICY_REJECTED',
        message: expect.stringContaining('cannot load the trusted keys'),
      }),
    )
  })

  test('multi-arch: index signatures count only with acceptIndexSignatures', async () => {
    // A per-platform manifest with no signature of its own, pulled through a signed index.
    const other = Buffer.from(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[{}]}',
    )
    const base = {
      policy: policy(),
      reference: parseImageName(`${name}@${indexDigest}`),
      manifestDigest: digestOf(other),
      manifestBytes: other,
      indexDigest,
      source: { name: 'x' },
      registriesD: registriesD(),
      keySource: kbs(),
    }
    const strict = await evaluatePolicy(base)
    expect(strict.accepted).toBe(false)
    expect(strict.requirements[0]!.reason).toMatch(/no signature exists/)
    const lenient = await evaluatePolicy({ ...base, acceptIndexSignatures: true })
    expect(lenient.accepted).toBe(true)
    expect(lenient.requirements[0]!.signature).toContain(`ns/app@sha256=${indexDigest.slice(7)}`)
  })

  test('bad input and cancellation', async () => {
    const base = {
      policy: policy(),
      reference: parseImageName(`${name}:v1`),
      manifestDigest,
      manifestBytes: Buffer.from('{"tampered":true}'),
      source: { name: 'x' },
      registriesD: registriesD(),
      keySource: kbs(),
    }
    await expect(evaluatePolicy(base)).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' })
    const controller = new AbortController()
    controller.abort()
    await expect(
      evaluatePolicy({ ...base, manifestBytes: manifest, signal: controller.signal }),
    ).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    })
  })

  test('local transports: no lookaside; exactReference cannot be satisfied without signatures', async () => {
    const p = parsePolicy(
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: {
          oci: { '': [{ type: 'signedBy', keyType: 'GPGKeys', keyData: keyring.toString('base64') }] },
        },
      }),
    )
    const verdict = await evaluatePolicy({
      policy: p,
      reference: parseImageName('oci:/srv/layout:v1'),
      manifestDigest,
      manifestBytes: manifest,
      source: { name: 'oci:/srv/layout:v1' },
      registriesD: registriesD(),
    })
    expect(verdict).toMatchObject({ accepted: false, scope: { transport: 'oci', scope: '' } })
    expect(verdict.requirements[0]!.reason).toMatch(/no signature exists/)
  })
})
