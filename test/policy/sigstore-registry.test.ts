import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { digestOf } from '../../src/digest.js'
import { runCli } from '../helpers/cli.js'
import {
  BUSYBOX_LAYOUT,
  type RigRegistry,
  requireRegistry,
  requireTool,
  run,
  startRegistry,
} from '../rig/index.js'
import { createGpgHome } from './gpg-home.js'
import { createOpensslSigner, makeRekorBundle, type OpensslSigner } from './openssl-signer.js'
import { type RegistryLog, registryLog } from './registry-log.js'

const COSIGN_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json'
// The rig's storage outlives a run and skopeo appends to existing attachments: a fresh namespace each run.
const NS = `cosign-${Date.now().toString(36)}`

/**
 * sigstoreSigned against Debian's docker-registry: cosign-format signatures made by openssl (the
 * independent signer; skopeo 1.9.3 cannot sign with sigstore) are written into a `dir:` image and
 * pushed by skopeo, which stores them as `sha256-<hex>.sig` attachments.
 */
describe.skipIf(!(requireRegistry('http') && requireTool('openssl', 'skopeo', 'gpg')))(
  'verify: sigstore attachments, rig registry',
  () => {
    let reg: RigRegistry
    let o: OpensslSigner
    let work: string
    let host: string
    let digest: string
    let log: RegistryLog
    const files: Record<string, string> = {}

    const skopeo = (args: string[], regd: string) =>
      run('skopeo', ['--policy', join(work, 'accept.json'), '--registries.d', regd, ...args], {
        timeoutMs: 120_000,
      })

    beforeAll(async () => {
      reg = await startRegistry('http')
      host = reg.host
      log = registryLog(reg.logFile)
      o = await createOpensslSigner()
      work = await mkdtemp(join(tmpdir(), 'ocipull-sigstore-'))
      await writeFile(join(work, 'accept.json'), '{"default":[{"type":"insecureAcceptAnything"}]}')
      const pushD = join(work, 'push.d')
      await mkdir(pushD)
      await writeFile(
        join(pushD, 'push.yaml'),
        `docker:\n  ${host}/${NS}:\n    lookaside: file://${work}/push-lookaside\n    use-sigstore-attachments: true\n`,
      )
      for (const [name, text] of [
        ['verify.d', `docker:\n  ${host}/${NS}:\n    use-sigstore-attachments: true\n`],
        ['off.d', `docker:\n  ${host}/${NS}:\n    use-sigstore-attachments: false\n`],
      ] as const) {
        await mkdir(join(work, name))
        await writeFile(join(work, name, 'x.yaml'), text)
      }
      const key = await o.generateKey('ecdsa-p256')
      const wrong = await o.generateKey('ecdsa-p256')
      const rekor = await o.generateKey('ecdsa-p256')
      files['key'] = join(work, 'cosign.pub')
      files['wrong'] = join(work, 'wrong.pub')
      files['rekor'] = join(work, 'rekor.pub')
      await writeFile(files['key']!, key.publicPem)
      await writeFile(files['wrong']!, wrong.publicPem)
      await writeFile(files['rekor']!, rekor.publicPem)
      const g = await createGpgHome()
      files['gpg'] = join(work, 'trusted.gpg')
      await writeFile(files['gpg'], await g.exportKeys([await g.generateKey('Unused GPG Signer')]))
      await g.remove()

      const sigstoreJson = async (identity: string, options: { mimeType?: string; rekor?: boolean } = {}) => {
        const payload = Buffer.from(
          `{"critical":{"identity":{"docker-reference":"${identity}"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature"},"optional":null}`,
        )
        const signature = await o.sign(key, payload)
        const annotations: Record<string, string> = {
          'dev.cosignproject.cosign/signature': signature.toString('base64'),
        }
        if (options.rekor) {
          annotations['dev.sigstore.cosign/bundle'] = await makeRekorBundle(o, rekor, {
            payloadSha256: createHash('sha256').update(payload).digest('hex'),
            signature,
            publicKeyPem: key.publicPem,
            integratedTime: Math.floor(Date.now() / 1000),
          })
        }
        return `\0sigstore-json\n${JSON.stringify({ mimeType: options.mimeType ?? COSIGN_TYPE, payload: payload.toString('base64'), annotations })}`
      }
      for (const [repo, signatures] of [
        [
          `${NS}/app:v1`,
          async () => [
            await sigstoreJson(`${host}/${NS}/app`),
            await sigstoreJson(`${host}/${NS}/app`, { mimeType: 'application/vnd.dsse.envelope.v1+json' }),
          ],
        ],
        [`${NS}/tagged:v1`, async () => [await sigstoreJson(`${host}/${NS}/tagged:v1`, { rekor: true })]],
      ] as const) {
        await skopeo(
          ['copy', '--dest-tls-verify=false', `oci:${BUSYBOX_LAYOUT}:latest`, `docker://${host}/${repo}`],
          pushD,
        )
        const dir = join(work, repo.replace(/\W/g, '-'))
        await skopeo(['copy', '--src-tls-verify=false', `docker://${host}/${repo}`, `dir:${dir}`], pushD)
        digest = digestOf(await readFile(join(dir, 'manifest.json')))
        for (const [i, s] of (await signatures()).entries())
          await writeFile(join(dir, `signature-${i + 1}`), s)
        await skopeo(
          ['copy', '--dest-tls-verify=false', '--preserve-digests', `dir:${dir}`, `docker://${host}/${repo}`],
          pushD,
        )
      }
    })
    afterAll(async () => {
      await reg?.stop()
      await o?.remove()
      if (work) await rm(work, { recursive: true, force: true })
    })

    let n = 0
    const verify = async (
      requirement: Record<string, unknown>,
      repo: string,
      regd = 'verify.d',
      extra: string[] = [],
    ) => {
      const file = join(work, `policy-${n++}.json`)
      await writeFile(
        file,
        JSON.stringify({
          default: [{ type: 'reject' }],
          transports: { docker: { [`${host}/${NS}`]: [requirement] } },
        }),
      )
      return runCli([
        'verify',
        '--insecure',
        '--policy',
        file,
        '--registries.d',
        join(work, regd),
        ...extra,
        `${host}/${repo}`,
      ])
    }
    const sigstore = (extra: Record<string, unknown>) => ({
      type: 'sigstoreSigned',
      keyPath: files['key'],
      ...extra,
    })
    const matchRepository = { signedIdentity: { type: 'matchRepository' } }

    test('the attachment exists where cosign puts it', async () => {
      const { stdout } = await run('skopeo', [
        'inspect',
        '--tls-verify=false',
        '--raw',
        `docker://${host}/${NS}/app:${digest.replace(':', '-')}.sig`,
      ])
      const manifest = JSON.parse(stdout)
      expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([
        COSIGN_TYPE,
        'application/vnd.dsse.envelope.v1+json',
      ])
    })

    const matrix: [string, () => Record<string, unknown>, string, string, number, string][] = [
      [
        'repository identity, matchRepository',
        () => sigstore(matchRepository),
        `${NS}/app:v1`,
        'verify.d',
        0,
        'sigstoreSigned: accepted: signed by trusted key 1',
      ],
      [
        'repository identity, default identity',
        () => sigstore({}),
        `${NS}/app:v1`,
        'verify.d',
        7,
        'is not accepted (matchRepoDigestOrExact)',
      ],
      ['tagged identity, default identity', () => sigstore({}), `${NS}/tagged:v1`, 'verify.d', 0, 'accepted'],
      [
        'wrong key',
        () => ({ ...sigstore(matchRepository), keyPath: files['wrong'] }),
        `${NS}/app:v1`,
        'verify.d',
        7,
        'verification failed',
      ],
      [
        'keyPaths, one of them right',
        () => ({ type: 'sigstoreSigned', keyPaths: [files['wrong'], files['key']], ...matchRepository }),
        `${NS}/app:v1`,
        'verify.d',
        0,
        'signed by trusted key 2',
      ],
      [
        'attachments disabled in registries.d',
        () => sigstore(matchRepository),
        `${NS}/app:v1`,
        'off.d',
        7,
        'no signature exists',
      ],
      [
        'Rekor required, no SET',
        () => sigstore({ ...matchRepository, rekorPublicKeyPath: files['rekor'] }),
        `${NS}/app:v1`,
        'verify.d',
        7,
        'Rekor SET is required',
      ],
      [
        'Rekor required, SET present',
        () => sigstore({ rekorPublicKeyPath: files['rekor'] }),
        `${NS}/tagged:v1`,
        'verify.d',
        0,
        'in Rekor at',
      ],
      [
        'a GPG requirement ignores sigstore signatures',
        () => ({ type: 'signedBy', keyType: 'GPGKeys', keyPath: files['gpg'] }),
        `${NS}/app:v1`,
        'verify.d',
        7,
        'a simple-signing signature was required, but no signature exists',
      ],
      [
        'pki is not supported yet',
        () => ({ type: 'sigstoreSigned', pki: { caRootsPath: files['key'], subjectEmail: 'a@b' } }),
        `${NS}/app:v1`,
        'verify.d',
        7,
        'not supported',
      ],
    ]
    test.each(matrix)('%s', async (_name, requirement, repo, regd, code, text) => {
      const r = await verify(requirement(), repo, regd)
      expect(`${r.stdout}${r.stderr}`).toContain(text)
      expect(r.code).toBe(code)
    })

    test('keyDatas, the verdict records the attachment, and no layer is fetched', async () => {
      const keyDatas = [(await readFile(files['key']!)).toString('base64')]
      const mark = await log.mark()
      const r = await verify(
        { type: 'sigstoreSigned', keyDatas, ...matchRepository },
        `${NS}/app:v1`,
        'verify.d',
        ['--json'],
      )
      expect(r.code).toBe(0)
      const verdict = JSON.parse(r.stdout)
      const tag = `${digest.replace(':', '-')}.sig`
      expect(verdict.signatureSource).toContain(`docker://${host}/${NS}/app:${tag}@sha256:`)
      expect(verdict.requirements[0].signature).toMatch(/signature 1$/)
      expect(verdict.warnings).toEqual(['1 non-signature attachment(s) ignored'])
      await sleep(500)
      const seen = (await log.since(mark, 'ocipull')).map((q) => q.path)
      expect(seen).toContain(`/v2/${NS}/app/manifests/${tag}`)
      const manifest = JSON.parse(
        await readFile(join(work, `${NS}/app:v1`.replace(/\W/g, '-'), 'manifest.json'), 'utf8'),
      )
      for (const layer of manifest.layers) expect(seen).not.toContain(`/v2/${NS}/app/blobs/${layer.digest}`)
    })
  },
)
