import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { digestOf } from '../../src/digest.js'
import { parseImageName } from '../../src/image-name.js'
import { evaluatePolicy } from '../../src/policy/evaluate-policy.js'
import { loadPolicy } from '../../src/policy/parse-policy.js'
import { assertPolicyAccepted } from '../../src/policy/policy-verdict.js'
import { loadRegistriesD } from '../../src/policy/registries-d.js'
import { parseReference } from '../../src/reference.js'
import { RegistryClient } from '../../src/registry/registry-client.js'
import { registrySource } from '../../src/registry/registry-source.js'
import { resolveImage } from '../../src/resolve-image.js'
import { runCli } from '../helpers/cli.js'
import {
  BUSYBOX_LAYOUT,
  type RigRegistry,
  requireRegistry,
  requireTool,
  run,
  startRegistry,
} from '../rig/index.js'
import { createGpgHome, type GpgHome } from './gpg-home.js'
import { type RegistryLog, registryLog } from './registry-log.js'

/**
 * `ocipull verify` and evaluatePolicy against Debian's docker-registry, with GPG signatures made
 * by skopeo (`copy --sign-by` into a lookaside directory configured in registries.d, and
 * `standalone-sign`). The expected verdicts are the ones skopeo 1.9.3 gives for the same policies
 * (docs/signatures.md §6.3 of the research notes).
 */
describe.skipIf(!(requireRegistry('http') && requireTool('gpg', 'skopeo')))(
  'verify: GPG simple signing, rig registry',
  () => {
    let reg: RigRegistry
    let g: GpgHome
    let work: string
    let regd: string
    let host: string
    let signer: string
    let appDigest: string
    let log: RegistryLog
    const keys: Record<string, string> = {}

    const skopeo = (args: string[]) =>
      run('skopeo', ['--policy', join(work, 'accept.json'), '--registries.d', regd, ...args], {
        env: g.env,
        timeoutMs: 120_000,
      })
    const push = (repo: string, extra: string[] = []) =>
      skopeo([
        'copy',
        '--dest-tls-verify=false',
        ...extra,
        `oci:${BUSYBOX_LAYOUT}:latest`,
        `docker://${host}/${repo}`,
      ])
    const lookasideDir = (repo: string, digest: string) =>
      join(work, 'lookaside', `${repo}@${digest.replace(':', '=')}`)

    beforeAll(async () => {
      reg = await startRegistry('http')
      host = reg.host
      log = registryLog(reg.logFile)
      g = await createGpgHome()
      work = await mkdtemp(join(tmpdir(), 'ocipull-verify-'))
      regd = join(work, 'registries.d')
      await mkdir(regd)
      await writeFile(
        join(regd, 'rig.yaml'),
        `docker:\n  ${host}:\n    lookaside: file://${work}/lookaside\n`,
      )
      await writeFile(join(work, 'accept.json'), '{"default":[{"type":"insecureAcceptAnything"}]}')
      signer = await g.generateKey('Policy Signer')
      const stranger = await g.generateKey('Stranger')
      keys['binary'] = join(work, 'trusted.gpg')
      keys['armored'] = join(work, 'trusted.asc')
      keys['wrong'] = join(work, 'wrong.gpg')
      await writeFile(keys['binary']!, await g.exportKeys([signer]))
      await writeFile(keys['armored']!, await g.exportKeys([signer], { armor: true }))
      await writeFile(keys['wrong']!, await g.exportKeys([stranger]))

      await push('policy/app:v1', ['--sign-by', signer])
      const { stdout } = await skopeo([
        'inspect',
        '--tls-verify=false',
        '--raw',
        `docker://${host}/policy/app:v1`,
      ])
      appDigest = digestOf(Buffer.from(stdout))
      // A signed image copied elsewhere keeps its signature, and the signature names policy/app:v1.
      await skopeo([
        'copy',
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${host}/policy/app:v1`,
        `docker://${host}/policy/app2:v1`,
      ])
      await push('policy/mirror/app:v1', ['--sign-by', signer, '--sign-identity', `${host}/policy/app:v1`])
      for (const repo of [
        'policy/unsigned:v1',
        'policy/wrongdigest:v1',
        'policy/armored:v1',
        'policy/mixed:v1',
      ]) {
        await push(repo, repo === 'policy/mixed:v1' ? ['--sign-by', signer] : [])
      }
      // A valid signature over another manifest, with the right identity.
      const other = join(work, 'other-manifest.json')
      await writeFile(other, '{"schemaVersion":2,"note":"not the pushed manifest"}')
      await mkdir(lookasideDir('policy/wrongdigest', appDigest), { recursive: true })
      await run(
        'skopeo',
        [
          'standalone-sign',
          other,
          `${host}/policy/wrongdigest:v1`,
          signer,
          '-o',
          join(lookasideDir('policy/wrongdigest', appDigest), 'signature-1'),
        ],
        { env: g.env },
      )
      // An armored signature of a valid payload: containers/image refuses the format outright.
      const payload = JSON.stringify({
        critical: {
          identity: { 'docker-reference': `${host}/policy/armored:v1` },
          image: { 'docker-manifest-digest': appDigest },
          type: 'atomic container signature',
        },
        optional: {},
      })
      await mkdir(lookasideDir('policy/armored', appDigest), { recursive: true })
      await writeFile(
        join(lookasideDir('policy/armored', appDigest), 'signature-1'),
        await g.sign(signer, payload, { mode: 'armor' }),
      )
      // skopeo 1.9.3 also wrote sigstore signatures into lookaside: a signedBy check skips them.
      const sigstoreJson = JSON.stringify({
        mimeType: 'application/vnd.dev.cosign.simplesigning.v1+json',
        payload: 'e30=',
        annotations: {},
      })
      await writeFile(
        join(lookasideDir('policy/mixed', appDigest), 'signature-2'),
        `\0sigstore-json\n${sigstoreJson}`,
      )
    })
    afterAll(async () => {
      await reg?.stop()
      await g?.remove()
      if (work) await rm(work, { recursive: true, force: true })
    })

    const signedBy = (key: string, extra: Record<string, unknown> = {}) => ({
      type: 'signedBy',
      keyType: 'GPGKeys',
      keyPath: keys[key],
      ...extra,
    })
    let policyCounter = 0
    const writePolicy = async (scopes: Record<string, unknown[]>) => {
      const file = join(work, `policy-${policyCounter++}.json`)
      await writeFile(file, JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: scopes } }))
      return file
    }
    const verify = async (file: string, ref: string, extra: string[] = []) =>
      runCli(['verify', '--insecure', '--policy', file, '--registries.d', regd, ...extra, ref])

    // [name, scope → requirements, image, exit code, text the output must contain]
    const matrix: [
      string,
      (h: string) => Record<string, unknown[]>,
      (h: string, d: string) => string,
      number,
      string,
    ][] = [
      [
        'keyPath binary',
        (h) => ({ [`${h}/policy`]: [signedBy('binary')] }),
        (h) => `${h}/policy/app:v1`,
        0,
        'signedBy: accepted: signed by GPG key',
      ],
      [
        'keyPath armored',
        (h) => ({ [`${h}/policy`]: [signedBy('armored')] }),
        (h) => `${h}/policy/app:v1`,
        0,
        'accepted',
      ],
      [
        'digest pull, default identity',
        (h) => ({ [`${h}/policy`]: [signedBy('binary')] }),
        (h, d) => `${h}/policy/app@${d}`,
        0,
        'accepted',
      ],
      [
        'digest pull, matchExact',
        (h) => ({ [`${h}/policy`]: [signedBy('binary', { signedIdentity: { type: 'matchExact' } })] }),
        (h, d) => `${h}/policy/app@${d}`,
        7,
        'is not accepted (matchExact)',
      ],
      [
        'tag pull, matchExact',
        (h) => ({ [`${h}/policy`]: [signedBy('binary', { signedIdentity: { type: 'matchExact' } })] }),
        (h) => `${h}/policy/app:v1`,
        0,
        'accepted',
      ],
      [
        'copied signature, default identity',
        (h) => ({ [`${h}/policy`]: [signedBy('binary')] }),
        (h) => `${h}/policy/app2:v1`,
        7,
        `identity "${'HOST'}/policy/app:v1" is not accepted`,
      ],
      [
        'copied signature, matchRepository',
        (h) => ({ [`${h}/policy`]: [signedBy('binary', { signedIdentity: { type: 'matchRepository' } })] }),
        (h) => `${h}/policy/app2:v1`,
        7,
        'is not accepted (matchRepository)',
      ],
      [
        'wrong key',
        (h) => ({ [`${h}/policy`]: [signedBy('wrong')] }),
        (h) => `${h}/policy/app:v1`,
        7,
        'invalid GPG signature',
      ],
      [
        'mirror without remap',
        (h) => ({ [`${h}/policy/mirror`]: [signedBy('binary')] }),
        (h) => `${h}/policy/mirror/app:v1`,
        7,
        'is not accepted',
      ],
      [
        'mirror with remapIdentity',
        (h) => ({
          [`${h}/policy/mirror`]: [
            signedBy('binary', {
              signedIdentity: {
                type: 'remapIdentity',
                prefix: `${h}/policy/mirror`,
                signedPrefix: `${h}/policy`,
              },
            }),
          ],
        }),
        (h) => `${h}/policy/mirror/app:v1`,
        0,
        'accepted',
      ],
      [
        'mirror with exactReference, by digest',
        (h) => ({
          [`${h}/policy/mirror/app`]: [
            signedBy('binary', {
              signedIdentity: { type: 'exactReference', dockerReference: `${h}/policy/app:v1` },
            }),
          ],
        }),
        (h, d) => `${h}/policy/mirror/app@${d}`,
        0,
        'accepted',
      ],
      [
        'only *.0.0.1 accepts anything',
        () => ({ '*.0.0.1': [{ type: 'insecureAcceptAnything' }] }),
        (h) => `${h}/policy/unsigned:v1`,
        0,
        'insecureAcceptAnything: accepted',
      ],
      [
        'unsigned image',
        (h) => ({ [h]: [signedBy('binary')] }),
        (h) => `${h}/policy/unsigned:v1`,
        7,
        'no signature exists',
      ],
      [
        'signature over another manifest',
        (h) => ({ [h]: [signedBy('binary')] }),
        (h) => `${h}/policy/wrongdigest:v1`,
        7,
        'not this image',
      ],
      [
        'armored signature in lookaside',
        (h) => ({ [h]: [signedBy('binary')] }),
        (h) => `${h}/policy/armored:v1`,
        7,
        'starting with byte 0x2d',
      ],
      [
        'sigstore-json next to a GPG signature',
        (h) => ({ [h]: [signedBy('binary')] }),
        (h) => `${h}/policy/mixed:v1`,
        0,
        'accepted',
      ],
      [
        'two requirements: accept and reject',
        (h) => ({ [h]: [signedBy('binary'), { type: 'reject' }] }),
        (h) => `${h}/policy/app:v1`,
        7,
        'reject: rejected: rejected by policy',
      ],
      [
        'signedBaseLayer',
        (h) => ({ [h]: [{ type: 'signedBaseLayer', baseLayerIdentity: { type: 'matchRepository' } }] }),
        (h) => `${h}/policy/app:v1`,
        7,
        'not implemented',
      ],
      ['default reject', () => ({}), (h) => `${h}/policy/app:v1`, 7, 'scope: default'],
    ]

    test.each(matrix)('%s', async (_name, scopes, image, code, text) => {
      const file = await writePolicy(scopes(host))
      const r = await verify(file, image(host, appDigest))
      const out = `${r.stdout}${r.stderr}`
      if (process.env['OCIPULL_SHOW_VERDICTS']) console.log(out)
      expect(out).toContain(text.replace('HOST', host))
      expect(r.code).toBe(code)
      expect(r.stdout.split('\n')[0]).toMatch(code === 0 ? /^accepted: / : /^rejected: /)
      if (code !== 0) expect(r.stderr).toMatch(/^ocipull: ERR_POLICY_REJECTED: /)
    })

    test('keyData (base64 binary keyring) and --json', async () => {
      const keyData = (await readFile(keys['binary']!)).toString('base64')
      const file = await writePolicy({
        [`${host}/policy`]: [{ type: 'signedBy', keyType: 'GPGKeys', keyData }],
      })
      const r = await verify(file, `${host}/policy/app:v1`, ['--json'])
      expect(r.code).toBe(0)
      const verdict = JSON.parse(r.stdout)
      expect(verdict).toMatchObject({
        accepted: true,
        image: `docker://${host}/policy/app:v1`,
        manifestDigest: appDigest,
        scope: { transport: 'docker', scope: `${host}/policy` },
        source: `docker://${host}/policy/app:v1`,
        signatureSource: `lookaside file://${work}/lookaside`,
        requirements: [{ type: 'signedBy', result: 'accepted', signer: signer }],
      })
      expect(verdict.requirements[0].signature).toBe(
        `file://${lookasideDir('policy/app', appDigest)}/signature-1`,
      )
    })

    test('a policy that does not parse exits 2; a bad registries.d too', async () => {
      const file = join(work, 'bad-policy.json')
      await writeFile(file, '{"default":[]}')
      const r = await verify(file, `${host}/policy/app:v1`)
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('ERR_POLICY_INVALID')
      const badD = join(work, 'bad.d')
      await mkdir(badD)
      await writeFile(join(badD, 'x.yaml'), 'docker: {a: {lookasid: b}}\n')
      const ok = await writePolicy({})
      const r2 = await runCli([
        'verify',
        '--insecure',
        '--policy',
        ok,
        '--registries.d',
        badD,
        `${host}/policy/app:v1`,
      ])
      expect(r2.code).toBe(2)
      expect(r2.stderr).toContain('lookasid: unknown key')
    })

    test('a rejected image downloads no layer blob; an accepted one is then pulled (counted at the registry)', async () => {
      const policy = await loadPolicy(await writePolicy({ [`${host}/policy`]: [signedBy('binary')] }))
      const registriesD = await loadRegistriesD(regd)
      const pullLike = async (text: string) => {
        const reference = parseReference(text)
        const client = new RegistryClient({ insecureRegistries: [host] })
        const source = registrySource(reference, { client })
        try {
          const image = await resolveImage(source, { platform: { os: 'linux', architecture: 'amd64' } })
          const verdict = await evaluatePolicy({
            policy,
            reference: parseImageName(text),
            manifestDigest: image.digest,
            manifestBytes: image.manifestBytes,
            source,
            registry: { client },
            registriesD,
          })
          assertPolicyAccepted(verdict)
          for (const layer of image.manifest.layers) (await source.blob(layer)).resume()
          return image.manifest.layers.map((l) => l.digest)
        } finally {
          await source.close()
          await client.close()
        }
      }
      const layerPaths = (repo: string, requests: { path: string }[]) =>
        requests.filter((r) => r.path.startsWith(`/v2/${repo}/blobs/`))

      let mark = await log.mark()
      await expect(pullLike(`${host}/policy/app2:v1`)).rejects.toMatchObject({ code: 'ERR_POLICY_REJECTED' })
      await sleep(500)
      let seen = await log.since(mark, 'ocipull')
      expect(seen.some((r) => r.path.startsWith('/v2/policy/app2/manifests/'))).toBe(true)
      const configOnly = layerPaths('policy/app2', seen)
      expect(configOnly.length).toBe(1) // the config blob, never a layer

      mark = await log.mark()
      const layers = await pullLike(`${host}/policy/app:v1`)
      await sleep(500)
      seen = await log.since(mark, 'ocipull')
      for (const digest of layers) expect(seen.map((r) => r.path)).toContain(`/v2/policy/app/blobs/${digest}`)

      // ocipull verify itself never fetches a layer, accepted or not.
      mark = await log.mark()
      expect(
        (
          await verify(
            await writePolicy({ [`${host}/policy`]: [signedBy('binary')] }),
            `${host}/policy/app:v1`,
          )
        ).code,
      ).toBe(0)
      await sleep(500)
      seen = await log.since(mark, 'ocipull')
      for (const digest of layers)
        expect(seen.map((r) => r.path)).not.toContain(`/v2/policy/app/blobs/${digest}`)
    })
  },
)
