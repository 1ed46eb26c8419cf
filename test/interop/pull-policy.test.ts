import { existsSync, readdirSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { createGpgHome, type GpgHome } from '../policy/gpg-home.js'
import { type RegistryLog, registryLog } from '../policy/registry-log.js'
import {
  BUSYBOX_LAYOUT,
  type RigRegistry,
  requireRegistry,
  requireTool,
  run,
  startRegistry,
} from '../rig/index.js'

/**
 * `ocipull pull --policy`: the policy is checked before any layer is fetched, on every pull (also
 * when the layers are in the store), with real GPG signatures made by skopeo into a lookaside
 * directory. Blob requests are counted in the registry's own access log.
 */

const ready = requireRegistry('http') && requireTool('skopeo', 'gpg')

describe.runIf(ready)('ocipull pull --policy', () => {
  let reg: RigRegistry
  let g: GpgHome
  let work: string
  let log: RegistryLog
  let regd: string
  const policies: Record<string, string> = {}

  beforeAll(async () => {
    reg = await startRegistry('http')
    log = registryLog(reg.logFile)
    g = await createGpgHome()
    work = await mkdtemp(join(tmpdir(), 'ocipull-pull-policy-'))
    regd = join(work, 'registries.d')
    await mkdir(regd)
    await writeFile(
      join(regd, 'rig.yaml'),
      `docker:\n  ${reg.host}:\n    lookaside: file://${work}/lookaside\n`,
    )
    await writeFile(join(work, 'accept.json'), '{"default":[{"type":"insecureAcceptAnything"}]}')
    const signer = await g.generateKey('Pull Signer')
    await writeFile(join(work, 'trusted.gpg'), await g.exportKeys([signer]))
    const push = (repo: string, extra: string[]) =>
      run(
        'skopeo',
        [
          '--policy',
          join(work, 'accept.json'),
          '--registries.d',
          regd,
          'copy',
          '--dest-tls-verify=false',
          ...extra,
          `oci:${BUSYBOX_LAYOUT}:latest`,
          `docker://${reg.host}/${repo}`,
        ],
        { env: g.env, timeoutMs: 120_000 },
      )
    // Distinct layers per repository are not needed: blob GETs are counted per repository path.
    await push('pullpolicy/signed:v1', ['--sign-by', signer])
    await push('pullpolicy/unsigned:v1', [])
    const signedBy = { type: 'signedBy', keyType: 'GPGKeys', keyPath: join(work, 'trusted.gpg') }
    policies['signed'] = join(work, 'signed.json')
    await writeFile(
      policies['signed'],
      JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [reg.host]: [signedBy] } } }),
    )
    policies['reject'] = join(work, 'reject.json')
    await writeFile(policies['reject'], JSON.stringify({ default: [{ type: 'reject' }] }))
  })
  afterAll(async () => {
    await g?.remove()
    if (work) await rm(work, { recursive: true, force: true })
    await reg?.stop()
  })

  const pull = (ref: string, policy: string, dir: string) =>
    runCli([
      'pull',
      '--insecure',
      '--policy',
      policy,
      '--registries.d',
      regd,
      '--bundle',
      join(dir, 'bundle'),
      '--work-dir',
      join(dir, 'store'),
      `docker://${reg.host}/${ref}`,
    ])
  const layerGets = async (mark: number, repo: string) =>
    (await log.since(mark)).filter((r) => r.method === 'GET' && r.path.startsWith(`/v2/${repo}/blobs/`))
      .length

  test('a signed image is pulled; an unsigned one is rejected before any layer is fetched', async () => {
    const dir = await mkdtemp(join(work, 'run-'))
    let mark = await log.mark()
    const ok = await pull('pullpolicy/signed:v1', policies['signed'] as string, dir)
    expect(ok.stderr).not.toMatch(/ERR_/)
    expect(ok.code).toBe(0)
    expect(await layerGets(mark, 'pullpolicy/signed')).toBe(4) // config + 3 layers

    const other = await mkdtemp(join(work, 'run-'))
    mark = await log.mark()
    const rejected = await pull('pullpolicy/unsigned:v1', policies['signed'] as string, other)
    expect(rejected.code).toBe(7)
    expect(rejected.stderr.trim().split('\n').at(-1)).toMatch(/^ocipull: ERR_POLICY_REJECTED: /)
    expect(await layerGets(mark, 'pullpolicy/unsigned')).toBe(1) // the config only
    expect(existsSync(join(other, 'bundle', 'config.json'))).toBe(false)
    expect(readdirSync(join(other, 'store', 'layers'))).toEqual([])
  })

  test('the policy is checked again when every layer is already in the store', async () => {
    const dir = await mkdtemp(join(work, 'run-'))
    expect((await pull('pullpolicy/signed:v1', policies['signed'] as string, dir)).code).toBe(0)
    await rm(join(dir, 'bundle'), { recursive: true })
    const again = await pull('pullpolicy/signed:v1', policies['reject'] as string, dir)
    expect(again.code).toBe(7)
    expect(again.stderr).toMatch(/ERR_POLICY_REJECTED/)
    expect(existsSync(join(dir, 'bundle', 'config.json'))).toBe(false)
  })
})
