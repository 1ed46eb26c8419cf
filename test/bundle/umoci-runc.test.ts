/**
 * ocipull's config.json next to what real tools write and run:
 * - `umoci unpack` of the same image: the fields we mean to match (process.args, env, cwd, user,
 *   annotations, default mounts and volume mounts) must be equal, modulo the deliberate
 *   differences listed in DIFFERENCES below;
 * - `runc spec`: our defaults (mounts, namespaces, masked/readonly paths, rlimits, capabilities)
 *   are runc's;
 * - `runc run` on the rootfs umoci extracted, with our config.json: /bin/hello must run and exit 0.
 * Needs root, umoci and runc; skipped without them, except under CI=true where it fails.
 */
import { randomBytes } from 'node:crypto'
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type RuntimeConfigOptions, toRuntimeConfig } from '../../src/bundle/runtime-config.js'
import type { RuntimeConfig, RuntimeMount } from '../../src/bundle/runtime-spec.js'
import { writeBundle } from '../../src/bundle/write-bundle.js'
import { resolveImage } from '../../src/resolve-image.js'
import { ociLayoutSource } from '../../src/sources/oci-layout-source.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { run } from '../rig/exec.js'
import { BUSYBOX_LAYOUT } from '../rig/paths.js'
import { isCI, requireTool } from '../rig/tools.js'

/**
 * Where we differ from umoci 0.4.7 on purpose (asserted in 'deliberate differences'):
 * - process.terminal false (umoci and runc spec: true), so no TERM=xterm in env: a CoCo guest
 *   agent runs the process without a tty, and runc refuses terminal=true without a console socket.
 * - capabilities: no inheritable and no ambient set (umoci writes both; runc spec writes ambient):
 *   ambient caps would survive execve in a process running as a non-root image user.
 * - additionalGids: without the primary gid and without duplicates (umoci keeps both).
 * - volume destinations normalized (umoci writes "/b/../vol2/" verbatim).
 * - annotations with an empty value (umoci writes stopSignal, exposedPorts, author, created as ""
 *   when unset) are left out.
 * - ociVersion, hostname ("umoci-default"; we set none), root.readonly written explicitly, masked and
 *   readonly paths: ours are what this machine's `runc spec` writes.
 */
const DIFFERENCES = 'see the comment above'

function requireRoot(): boolean {
  if (process.getuid?.() === 0) return true
  if (isCI()) throw new Error('these tests need root (CI=true, so this is an error)')
  return false
}

const enabled = requireTool('umoci', 'runc') && requireRoot()
const canRunFixture = process.arch === 'x64' // /bin/hello is a static x86_64 binary

afterAll(removeTempDirs)

const GREETING = 'hello from the ocipull fixture image'
const DEFAULT_MOUNTS = 7

interface Bundle {
  dir: string
  rootfs: string
  umoci: RuntimeConfig
  ours: (options?: Partial<RuntimeConfigOptions>) => Promise<RuntimeConfig>
}

describe.skipIf(!enabled)('bundle config vs umoci and runc', () => {
  let work: string
  let layout: string
  const bundles = new Map<string, Bundle>()

  async function unpack(tag: string): Promise<Bundle> {
    const dir = join(work, `bundle-${tag}`)
    await run('umoci', ['unpack', '--image', `${layout}:${tag}`, dir])
    const umoci = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as RuntimeConfig
    const rootfs = join(dir, 'rootfs')
    const image = await resolveImage(ociLayoutSource({ path: layout, tag }), {
      platform: { os: 'linux', architecture: 'amd64' },
    })
    return {
      dir,
      rootfs,
      umoci,
      ours: async (options = {}) => toRuntimeConfig(image, { rootfs, ...options }),
    }
  }

  beforeAll(async () => {
    work = await makeTempDir('ocipull-umoci-')
    layout = join(work, 'layout')
    await cp(BUSYBOX_LAYOUT, layout, { recursive: true })
    // A variant with everything the bundle step converts.
    await run('umoci', [
      'config',
      ...['--image', `${layout}:latest`, '--tag', 'variant'],
      ...['--config.volume', '/b/../vol2/', '--config.volume', '/a'],
      ...['--config.exposedports', '8080/tcp', '--config.exposedports', '53/udp'],
      ...['--config.stopsignal', 'SIGTERM', '--config.user', 'nobody', '--config.workingdir', '/tmp'],
      ...['--config.env', 'FOO=bar', '--config.env', 'PATH=/bin', '--config.env', 'FOO=baz'],
      ...['--config.label', 'org.opencontainers.image.os=label-os', '--config.label', 'com.example=x'],
      ...['--config.entrypoint', '/bin/cat', '--config.cmd', '/etc/motd'],
      ...['--created', '2024-05-06T07:08:09.123456789+02:00'],
    ])
    // A variant whose /etc/group gives nobody supplementary groups.
    const scratch = join(work, 'scratch')
    await run('umoci', ['unpack', '--image', `${layout}:latest`, scratch])
    await writeFile(
      join(scratch, 'rootfs', 'etc', 'group'),
      'root:x:0:\nnogroup:x:65534:\nwheel:x:10:nobody,root\nstaff:x:50:nobody\nstaff2:x:50:nobody\nself:x:65534:nobody\n',
    )
    await run('umoci', ['repack', '--image', `${layout}:groups-base`, scratch])
    await run('umoci', [
      'config',
      '--image',
      `${layout}:groups-base`,
      '--tag',
      'groups',
      '--config.user',
      'nobody',
    ])
    for (const tag of ['latest', 'variant', 'groups']) bundles.set(tag, await unpack(tag))
  })

  const get = (tag: string): Bundle => bundles.get(tag) as Bundle
  const volumes = (mounts: RuntimeMount[]) =>
    mounts
      .slice(DEFAULT_MOUNTS)
      .map((m) => ({ ...m, destination: posix.normalize(m.destination).replace(/\/+$/, '') }))
      .sort((a, b) => (a.destination < b.destination ? -1 : 1))

  for (const tag of ['latest', 'variant', 'groups']) {
    test(`${tag}: same args, env, cwd, user, annotations and mounts as umoci`, async () => {
      const { umoci } = get(tag)
      const ours = await get(tag).ours()
      expect(ours.process.args).toEqual(umoci.process.args)
      expect(ours.process.env).toEqual(umoci.process.env.filter((e) => e !== 'TERM=xterm'))
      expect(ours.process.cwd).toBe(umoci.process.cwd)
      const { additionalGids, ...user } = umoci.process.user
      expect(ours.process.user).toMatchObject(user)
      const extra = [...new Set(additionalGids ?? [])].filter((g) => g !== user.gid).sort((a, b) => a - b)
      expect(ours.process.user.additionalGids ?? []).toEqual(extra)
      const annotations = Object.entries(umoci.annotations ?? {}).filter(([, v]) => v !== '')
      expect(ours.annotations).toEqual(Object.fromEntries(annotations))
      expect(ours.mounts.slice(0, DEFAULT_MOUNTS)).toEqual(umoci.mounts.slice(0, DEFAULT_MOUNTS))
      expect(ours.mounts.slice(DEFAULT_MOUNTS)).toEqual(volumes(umoci.mounts))
    })
  }

  test('variant: the conversions the comparison relies on did happen', async () => {
    const ours = await get('variant').ours()
    expect(ours.process.args).toEqual(['/bin/cat', '/etc/motd'])
    expect(ours.process.env).toEqual(['PATH=/bin', 'FIXTURE=busybox', 'FOO=baz', 'HOME=/nonexistent'])
    expect(ours.process.user).toEqual({ uid: 65534, gid: 65534 })
    expect(ours.mounts.slice(DEFAULT_MOUNTS).map((m) => m.destination)).toEqual(['/a', '/vol2'])
    expect(ours.annotations?.['org.opencontainers.image.os']).toBe('linux') // metadata beats the label
    expect(ours.annotations?.['org.opencontainers.image.exposedPorts']).toBe('53/udp,8080/tcp')
    expect((await get('groups').ours()).process.user).toEqual({
      uid: 65534,
      gid: 65534,
      additionalGids: [10, 50],
    })
  })

  test(`deliberate differences from umoci (${DIFFERENCES})`, async () => {
    const { umoci } = get('variant')
    const ours = await get('variant').ours()
    expect([umoci.process.terminal, ours.process.terminal]).toEqual([true, false])
    expect(umoci.process.env).toContain('TERM=xterm')
    expect(umoci.process.capabilities?.ambient).toBeDefined()
    expect(ours.process.capabilities).not.toHaveProperty('ambient')
    expect(ours.process.capabilities).not.toHaveProperty('inheritable')
    expect(umoci.mounts.map((m) => m.destination)).toContain('/b/../vol2/')
    const latest = get('latest')
    expect(latest.umoci.annotations?.['org.opencontainers.image.stopSignal']).toBe('')
    expect((await latest.ours()).annotations).not.toHaveProperty(['org.opencontainers.image.stopSignal'])
    expect(umoci.hostname).toBe('umoci-default')
    expect(ours).not.toHaveProperty('hostname')
  })

  test('defaults are what `runc spec` writes (but terminal false, no ambient caps)', async () => {
    const dir = join(work, 'runc-spec')
    await mkdir(dir)
    await run('runc', ['spec', '--bundle', dir])
    const spec = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as RuntimeConfig
    const ours = await get('latest').ours()
    expect(ours.ociVersion).toBe(spec.ociVersion)
    expect(ours.mounts.slice(0, DEFAULT_MOUNTS)).toEqual(spec.mounts)
    expect(ours.linux).toEqual(spec.linux)
    expect(ours.process.rlimits).toEqual(spec.process.rlimits)
    expect(ours.process.noNewPrivileges).toBe(spec.process.noNewPrivileges)
    const { ambient: _ambient, ...caps } = spec.process.capabilities ?? {}
    expect(ours.process.capabilities).toEqual(caps)
    expect(ours.root.path).toBe(spec.root.path)
    expect(ours.process.env[0]).toBe(spec.process.env[0])
  })

  describe.skipIf(!canRunFixture)('runc run with our config.json', () => {
    async function runc(bundle: Bundle, options: Partial<RuntimeConfigOptions> = {}): Promise<string> {
      await writeBundle(bundle.dir, await bundle.ours(options))
      const id = `ocipull-test-${randomBytes(6).toString('hex')}`
      try {
        const { stdout } = await run('runc', ['run', '--bundle', bundle.dir, id], { timeoutMs: 60_000 })
        return stdout
      } finally {
        await run('runc', ['delete', '--force', id]).catch(() => undefined)
      }
    }

    test('the image command runs and prints the greeting', async () => {
      expect(await runc(get('latest'))).toBe(`${GREETING}\n`)
    })

    test('writing the bundle again and running again works', async () => {
      expect(await runc(get('latest'), { readonlyRootfs: true })).toBe(`${GREETING}\n`)
    })

    test('user, groups and env reach the process', async () => {
      const status = await runc(get('groups'), { entrypoint: ['/bin/cat'], args: ['/proc/self/status'] })
      expect(status).toMatch(/^Uid:\t65534\t65534\t65534\t65534$/m)
      expect(status).toMatch(/^Gid:\t65534\t65534\t65534\t65534$/m)
      expect(status).toMatch(/^Groups:\t10 50 ?$/m)
      const environ = await runc(get('groups'), { entrypoint: ['/bin/cat'], args: ['/proc/self/environ'] })
      expect(environ.split('\0').filter(Boolean)).toEqual([
        'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        'FIXTURE=busybox',
        'HOME=/nonexistent',
      ])
    })

    test('volumes are tmpfs mounts and the image entrypoint runs in WorkingDir', async () => {
      const variant = get('variant')
      expect(await runc(variant)).toBe('motd from layer 2\n')
      const mountinfo = await runc(variant, { args: ['/proc/self/mountinfo'] })
      for (const dest of ['/a', '/vol2']) {
        expect(mountinfo).toMatch(
          new RegExp(`^\\S+ \\S+ \\S+ / ${dest} rw,nosuid,nodev,noexec,relatime( \\S+)* - tmpfs `, 'm'),
        )
      }
    })
  })
})
