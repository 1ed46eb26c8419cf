import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { DEFAULT_PATH, type RuntimeConfigOptions, toRuntimeConfig } from '../../src/bundle/runtime-config.js'
import type { ContainerConfig, ImageConfig } from '../../src/image-config.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'

afterAll(removeTempDirs)

const PATH = `PATH=${DEFAULT_PATH}`
let rootfs: string

beforeAll(async () => {
  rootfs = join(await makeTempDir('ocipull-runtime-'), 'rootfs')
  await mkdir(join(rootfs, 'etc'), { recursive: true })
  await writeFile(
    join(rootfs, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n',
  )
  await writeFile(join(rootfs, 'etc', 'group'), 'root:x:0:\nwheel:x:10:alice\nstaff:x:50:alice\n')
})

function imageConfig(config: ContainerConfig | undefined, extra: Partial<ImageConfig> = {}): ImageConfig {
  return {
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [] },
    ...(config === undefined ? {} : { config }),
    ...extra,
  }
}

function convert(config: ContainerConfig | undefined, options: Partial<RuntimeConfigOptions> = {}) {
  return toRuntimeConfig({ config: imageConfig(config), source: 'oci:app:1' }, { rootfs, ...options })
}

const invalid = (message: RegExp) =>
  expect.objectContaining({ code: 'ERR_CONFIG_INVALID', message: expect.stringMatching(message) })

describe('toRuntimeConfig: process.args', () => {
  const E = ['/bin/ep', '-x']
  const C = ['a', 'b']
  const cases: {
    name: string
    config: ContainerConfig
    options?: Partial<RuntimeConfigOptions>
    want: string[]
  }[] = [
    { name: 'entrypoint + cmd', config: { Entrypoint: E, Cmd: C }, want: [...E, ...C] },
    { name: 'cmd only', config: { Cmd: C }, want: C },
    { name: 'entrypoint only', config: { Entrypoint: E }, want: E },
    {
      name: 'args replace cmd',
      config: { Entrypoint: E, Cmd: C },
      options: { args: ['z'] },
      want: [...E, 'z'],
    },
    { name: 'args without entrypoint', config: { Cmd: C }, options: { args: ['/bin/z'] }, want: ['/bin/z'] },
    {
      name: 'entrypoint option drops the image cmd',
      config: { Entrypoint: E, Cmd: C },
      options: { entrypoint: ['/n'] },
      want: ['/n'],
    },
    {
      name: 'entrypoint and args options',
      config: { Entrypoint: E, Cmd: C },
      options: { entrypoint: ['/n'], args: ['y'] },
      want: ['/n', 'y'],
    },
    {
      name: 'empty entrypoint option + args',
      config: { Entrypoint: E, Cmd: C },
      options: { entrypoint: [], args: ['/y'] },
      want: ['/y'],
    },
    {
      name: 'empty args keep the entrypoint',
      config: { Entrypoint: E, Cmd: C },
      options: { args: [] },
      want: E,
    },
    {
      name: 'arguments kept verbatim',
      config: { Cmd: ['/bin/sh', '-c', 'echo "$A" && x=1'] },
      want: ['/bin/sh', '-c', 'echo "$A" && x=1'],
    },
  ]
  for (const c of cases) test(c.name, () => expect(convert(c.config, c.options).process.args).toEqual(c.want))

  const bad: {
    name: string
    config: ContainerConfig | undefined
    options?: Partial<RuntimeConfigOptions>
  }[] = [
    { name: 'no config at all', config: undefined },
    { name: 'neither entrypoint nor cmd', config: { Env: ['A=1'] } },
    { name: 'empty entrypoint and cmd', config: { Entrypoint: [], Cmd: [] } },
    { name: 'empty entrypoint option drops the only cmd', config: { Cmd: C }, options: { entrypoint: [] } },
    { name: 'empty args and no entrypoint', config: { Cmd: C }, options: { args: [] } },
  ]
  for (const c of bad) {
    test(`rejects ${c.name}`, () =>
      expect(() => convert(c.config, c.options)).toThrow(invalid(/^oci:app:1: no command/)))
  }
  test('rejects a NUL byte in an argument', () => {
    expect(() => convert({ Cmd: ['/bin/a\0b'] })).toThrow(invalid(/args\[0\] contains a NUL byte/))
  })
})

describe('toRuntimeConfig: process.env', () => {
  const cmd = { Cmd: ['/bin/true'] }
  const cases: {
    name: string
    config: ContainerConfig
    options?: Partial<RuntimeConfigOptions>
    want: string[]
  }[] = [
    { name: 'no image env: PATH and HOME added', config: cmd, want: [PATH, 'HOME=/root'] },
    {
      name: 'image PATH kept',
      config: { ...cmd, Env: ['PATH=/x', 'A=1'] },
      want: ['PATH=/x', 'A=1', 'HOME=/root'],
    },
    {
      name: 'later duplicates win, in place',
      config: { ...cmd, Env: ['A=1', 'B=2', 'A=3'] },
      want: [PATH, 'A=3', 'B=2', 'HOME=/root'],
    },
    {
      name: 'values may hold = and be empty',
      config: { ...cmd, Env: ['X=a=b', 'Y='] },
      want: [PATH, 'X=a=b', 'Y=', 'HOME=/root'],
    },
    { name: 'image HOME kept', config: { ...cmd, Env: ['HOME=/srv'] }, want: [PATH, 'HOME=/srv'] },
    {
      name: 'HOME from the resolved user',
      config: { ...cmd, User: 'alice' },
      want: [PATH, 'HOME=/home/alice'],
    },
    { name: 'HOME "/" for a uid without entry', config: { ...cmd, User: '4242' }, want: [PATH, 'HOME=/'] },
    {
      name: 'option env overrides by name and appends',
      config: { ...cmd, Env: ['A=1', 'B=2'] },
      options: { env: ['B=9', 'C=3', 'HOME=/h', 'PATH=/p'] },
      want: ['A=1', 'B=9', 'C=3', 'HOME=/h', 'PATH=/p'],
    },
    {
      name: 'TERM only with a terminal',
      config: cmd,
      options: { terminal: true },
      want: [PATH, 'HOME=/root', 'TERM=xterm'],
    },
    {
      name: 'image TERM kept with a terminal',
      config: { ...cmd, Env: ['TERM=vt100'] },
      options: { terminal: true },
      want: [PATH, 'TERM=vt100', 'HOME=/root'],
    },
  ]
  for (const c of cases) test(c.name, () => expect(convert(c.config, c.options).process.env).toEqual(c.want))

  const bad: {
    name: string
    config: ContainerConfig
    options?: Partial<RuntimeConfigOptions>
    message: RegExp
  }[] = [
    {
      name: 'image entry without =',
      config: { ...cmd, Env: ['A=1', 'NOEQ'] },
      message: /config\.Env\[1\]: want NAME=value/,
    },
    { name: 'image entry with empty name', config: { ...cmd, Env: ['=v'] }, message: /config\.Env\[0\]/ },
    {
      name: 'image entry with NUL',
      config: { ...cmd, Env: ['A=x\0y'] },
      message: /config\.Env\[0\] contains a NUL/,
    },
    { name: 'option entry without =', config: cmd, options: { env: ['X'] }, message: /env option\[0\]/ },
  ]
  for (const c of bad)
    test(`rejects ${c.name}`, () => expect(() => convert(c.config, c.options)).toThrow(invalid(c.message)))
})

describe('toRuntimeConfig: cwd', () => {
  const cmd = { Cmd: ['/bin/true'] }
  const cases: { name: string; config: ContainerConfig; cwd?: string; want: string }[] = [
    { name: 'default', config: cmd, want: '/' },
    { name: 'empty WorkingDir', config: { ...cmd, WorkingDir: '' }, want: '/' },
    { name: 'WorkingDir', config: { ...cmd, WorkingDir: '/srv/app' }, want: '/srv/app' },
    { name: 'option wins', config: { ...cmd, WorkingDir: '/srv/app' }, cwd: '/opt', want: '/opt' },
  ]
  for (const c of cases) {
    test(c.name, () =>
      expect(convert(c.config, c.cwd === undefined ? {} : { cwd: c.cwd }).process.cwd).toBe(c.want),
    )
  }
  test('rejects a relative WorkingDir', () => {
    expect(() => convert({ ...cmd, WorkingDir: 'srv' })).toThrow(
      invalid(/^oci:app:1: working dir "srv" is not absolute$/),
    )
  })
  test('rejects a relative cwd option', () => {
    expect(() => convert(cmd, { cwd: './x' })).toThrow(invalid(/working dir "\.\/x"/))
  })
})

describe('toRuntimeConfig: volumes', () => {
  const cmd = { Cmd: ['/bin/true'] }
  const volumesOf = (Volumes: Record<string, object>) =>
    convert({ ...cmd, Volumes }).mounts.filter((m) => m.source === 'none')
  test('tmpfs mounts, normalized, deduplicated, sorted, after the defaults', () => {
    const config = convert({
      ...cmd,
      Volumes: { '/b/../vol2/': {}, '/data//x': {}, '/a/': {}, '/a': {}, '/a/b': {} },
    })
    expect(config.mounts.slice(0, 7).map((m) => m.destination)).toEqual([
      '/proc',
      '/dev',
      '/dev/pts',
      '/dev/shm',
      '/dev/mqueue',
      '/sys',
      '/sys/fs/cgroup',
    ])
    const opts = ['rw', 'nosuid', 'nodev', 'noexec', 'relatime']
    expect(config.mounts.slice(7)).toEqual(
      ['/a', '/a/b', '/data/x', '/vol2'].map((destination) => ({
        destination,
        type: 'tmpfs',
        source: 'none',
        options: opts,
      })),
    )
  })
  test('no volumes, no extra mounts', () => expect(volumesOf({})).toEqual([]))
  for (const bad of ['relative', '', '/', '//', '/..', '/a/../..'])
    test(`rejects volume ${JSON.stringify(bad)}`, () => {
      expect(() => volumesOf({ [bad]: {} })).toThrow(invalid(/^oci:app:1: volume /))
    })
})

describe('toRuntimeConfig: annotations', () => {
  const full = imageConfig(
    {
      Cmd: ['/bin/true'],
      Labels: {
        'com.example.a': '1',
        'org.opencontainers.image.os': 'label-os',
        'org.opencontainers.image.title': 'from label',
        'org.opencontainers.image.created': 'from label',
      },
      StopSignal: 'SIGQUIT',
      ExposedPorts: { '8080/tcp': {}, '53/udp': {}, '443/tcp': {} },
    },
    { variant: 'v8', 'os.version': '6.1', author: 'someone', created: '2024-05-06T07:08:09.123456789+02:00' },
  )
  test('labels, then metadata (wins over labels, as in umoci), keys sorted', () => {
    const a = toRuntimeConfig({ config: full }, { rootfs }).annotations ?? {}
    expect(a).toEqual({
      'com.example.a': '1',
      'org.opencontainers.image.architecture': 'amd64',
      'org.opencontainers.image.author': 'someone',
      'org.opencontainers.image.created': '2024-05-06T07:08:09.123456789+02:00',
      'org.opencontainers.image.exposedPorts': '443/tcp,53/udp,8080/tcp',
      'org.opencontainers.image.os': 'linux',
      'org.opencontainers.image.os.version': '6.1',
      'org.opencontainers.image.stopSignal': 'SIGQUIT',
      'org.opencontainers.image.title': 'from label',
      'org.opencontainers.image.variant': 'v8',
    })
    expect(Object.keys(a)).toEqual(Object.keys(a).sort())
  })
  test('caller annotations win over both', () => {
    const a = toRuntimeConfig(
      { config: full },
      { rootfs, annotations: { 'org.opencontainers.image.os': 'mine', 'com.example.a': '2', z: '' } },
    ).annotations
    expect(a).toMatchObject({ 'org.opencontainers.image.os': 'mine', 'com.example.a': '2', z: '' })
  })
  test('metadata that is absent or empty is left out', () => {
    const a = convert({ Cmd: ['/bin/true'], StopSignal: '', ExposedPorts: {} }).annotations
    expect(a).toEqual({
      'org.opencontainers.image.architecture': 'amd64',
      'org.opencontainers.image.os': 'linux',
    })
  })
})

describe('toRuntimeConfig: image and options', () => {
  for (const os of ['windows', 'darwin', '', 'Linux']) {
    test(`rejects os ${JSON.stringify(os)}`, () => {
      const image = { config: imageConfig({ Cmd: ['/x'] }, { os }), digest: 'sha256:abc' }
      expect(() => toRuntimeConfig(image, { rootfs })).toThrow(
        expect.objectContaining({
          code: 'ERR_IMAGE_UNSUPPORTED',
          message: `sha256:abc: os ${JSON.stringify(os)} is not linux`,
        }),
      )
    })
  }

  test('user from the image, overridden by the option', () => {
    expect(convert({ Cmd: ['/x'], User: 'alice' }).process.user).toEqual({
      uid: 1000,
      gid: 1000,
      additionalGids: [10, 50],
    })
    expect(convert({ Cmd: ['/x'], User: 'alice' }, { user: '0' }).process.user).toEqual({ uid: 0, gid: 0 })
    expect(convert({ Cmd: ['/x'], User: 'alice:staff' }).process.user).toEqual({ uid: 1000, gid: 50 })
  })
  test('an unknown user fails naming the image', () => {
    expect(() => convert({ Cmd: ['/x'], User: 'mallory' })).toThrow(
      expect.objectContaining({
        code: 'ERR_USER_INVALID',
        message: expect.stringMatching(/^oci:app:1: user "mallory"/),
      }),
    )
  })

  test('defaults', () => {
    const c = convert({ Cmd: ['/x'] })
    expect(c.ociVersion).toBe('1.0.2-dev')
    expect(c.process.terminal).toBe(false)
    expect(c.process.noNewPrivileges).toBe(true)
    expect(c.process.capabilities).toEqual({
      bounding: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      effective: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      permitted: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
    })
    expect(c.root).toEqual({ path: 'rootfs', readonly: false })
    expect(c).not.toHaveProperty('hostname')
    expect(c.linux.namespaces.map((n) => n.type)).toEqual(['pid', 'network', 'ipc', 'uts', 'mount'])
  })
  test('terminal, readonly rootfs, hostname', () => {
    const c = convert({ Cmd: ['/x'] }, { terminal: true, readonlyRootfs: true, hostname: 'box' })
    expect(c.process.terminal).toBe(true)
    expect(c.root.readonly).toBe(true)
    expect(c.hostname).toBe('box')
  })
  test('each call returns fresh objects', () => {
    const a = convert({ Cmd: ['/x'] })
    a.mounts[1]?.options?.push('mutated')
    a.process.capabilities?.bounding?.push('CAP_SYS_ADMIN')
    const b = convert({ Cmd: ['/x'] })
    expect(b.mounts[1]?.options).not.toContain('mutated')
    expect(b.process.capabilities?.bounding).not.toContain('CAP_SYS_ADMIN')
  })
})
