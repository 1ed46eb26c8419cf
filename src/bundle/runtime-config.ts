import { posix } from 'node:path'
import { OcipullError } from '../errors.js'
import type { ImageConfig } from '../image-config.js'
import { resolveUser } from './resolve-user.js'
import { OCI_VERSION, type RuntimeConfig, type RuntimeMount } from './runtime-spec.js'

/** What toRuntimeConfig needs of an image; a ResolvedImage fits. */
export interface RuntimeConfigImage {
  config: ImageConfig
  /** Used to name the image in error messages. */
  digest?: string
  source?: string
}

export interface RuntimeConfigOptions {
  /** Host path of the unpacked rootfs; its own /etc/passwd and /etc/group resolve the user. */
  rootfs: string
  /** Replaces the image Cmd. */
  args?: string[]
  /** Replaces the image Entrypoint and, as in docker, drops the image Cmd (unless `args` is given). */
  entrypoint?: string[]
  /** Replaces the image WorkingDir; must be absolute. */
  cwd?: string
  /** `NAME=value` entries that replace the image's by name. */
  env?: string[]
  /** Replaces the image User: `name`, `uid`, `name:group`, `uid:gid`, … */
  user?: string
  /** Default false (runc spec writes true); true also sets TERM=xterm unless set. */
  terminal?: boolean
  /** root.readonly, default false. */
  readonlyRootfs?: boolean
  /** Left unset by default (the runtime then keeps the host's name in the new uts namespace). */
  hostname?: string
  /** Win over the image's labels and metadata. */
  annotations?: Record<string, string>
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Options of the tmpfs mount made for each image volume (as umoci and image-rs mount them). */
export const VOLUME_MOUNT_OPTIONS = ['rw', 'nosuid', 'nodev', 'noexec', 'relatime'] as const

const ANNOTATION_PREFIX = 'org.opencontainers.image.'

/**
 * Converts an image config to a runtime-spec config for the bundle whose rootfs is
 * `options.rootfs`: process (args, env, cwd, user), image volumes as tmpfs mounts, labels and
 * image metadata as annotations, and otherwise the defaults `runc spec` writes, with
 * `process.terminal` false. Reads /etc/passwd and /etc/group in the rootfs, nothing else.
 * Throws ERR_IMAGE_UNSUPPORTED for a non-linux image, ERR_CONFIG_INVALID for no command, a relative
 * working dir, a bad env entry or volume, ERR_USER_INVALID for a user the image does not define.
 */
export function toRuntimeConfig(image: RuntimeConfigImage, options: RuntimeConfigOptions): RuntimeConfig {
  const what = image.source ?? image.digest ?? 'image'
  const { config } = image
  const c = config.config ?? {}
  if (config.os !== 'linux') {
    throw new OcipullError('ERR_IMAGE_UNSUPPORTED', `${what}: os ${JSON.stringify(config.os)} is not linux`)
  }

  const entrypoint = options.entrypoint ?? c.Entrypoint ?? []
  const cmd = options.args ?? (options.entrypoint === undefined ? c.Cmd : undefined) ?? []
  const args = [...entrypoint, ...cmd]
  if (args.length === 0) {
    throw new OcipullError('ERR_CONFIG_INVALID', `${what}: no command: neither Entrypoint nor Cmd is set`)
  }
  for (const [i, a] of args.entries()) checkNoNul(a, what, `args[${i}]`)

  const cwd = options.cwd ?? (c.WorkingDir || '/')
  if (!cwd.startsWith('/')) {
    throw new OcipullError(
      'ERR_CONFIG_INVALID',
      `${what}: working dir ${JSON.stringify(cwd)} is not absolute`,
    )
  }
  checkNoNul(cwd, what, 'working dir')

  const terminal = options.terminal ?? false
  const user = resolveUser(options.rootfs, options.user ?? c.User, { image: what })
  const env = new Map<string, string>()
  mergeEnv(env, c.Env ?? [], what, 'config.Env')
  mergeEnv(env, options.env ?? [], what, 'env option')
  const defaults: [string, string | false][] = [
    ['HOME', user.home],
    ['TERM', terminal && 'xterm'],
  ]
  for (const [name, value] of defaults) if (value !== false && !env.has(name)) env.set(name, value)
  const envList = [...env].map(([k, v]) => `${k}=${v}`)
  // PATH goes first when the image sets none, where runc spec and umoci put it.
  if (!env.has('PATH')) envList.unshift(`PATH=${DEFAULT_PATH}`)

  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal,
      user: {
        uid: user.uid,
        gid: user.gid,
        ...(user.additionalGids.length > 0 ? { additionalGids: user.additionalGids } : {}),
      },
      args,
      env: envList,
      cwd,
      // Like runc spec but without inheritable and ambient: ambient caps would survive execve in a
      // process running as a non-root image user, which docker and containerd do not grant either.
      capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: options.readonlyRootfs ?? false },
    ...(options.hostname === undefined ? {} : { hostname: options.hostname }),
    mounts: [...defaultMounts(), ...volumeMounts(c.Volumes ?? {}, what)],
    annotations: annotationsOf(config, options.annotations ?? {}),
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [
        ...['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats'],
        ...['/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  }
}

/** Adds `NAME=value` entries to `env`; a later entry for a name replaces the earlier one in place. */
function mergeEnv(env: Map<string, string>, entries: readonly string[], what: string, field: string): void {
  entries.forEach((entry, i) => {
    const eq = entry.indexOf('=')
    // runc refuses these at start; fail here, naming the entry.
    if (eq <= 0) {
      throw new OcipullError(
        'ERR_CONFIG_INVALID',
        `${what}: ${field}[${i}]: want NAME=value, got ${JSON.stringify(entry)}`,
      )
    }
    checkNoNul(entry, what, `${field}[${i}]`)
    env.set(entry.slice(0, eq), entry.slice(eq + 1))
  })
}

/** The image's Volumes as tmpfs mounts: normalized, deduplicated, sorted (parents before children). */
function volumeMounts(volumes: Record<string, object>, what: string): RuntimeMount[] {
  const destinations = new Set<string>()
  for (const volume of Object.keys(volumes)) {
    checkNoNul(volume, what, 'volume')
    const dest = posix.normalize(volume).replace(/\/+$/, '')
    if (!volume.startsWith('/') || dest === '') {
      const why = dest === '' ? 'would hide the whole rootfs' : 'is not absolute'
      throw new OcipullError('ERR_CONFIG_INVALID', `${what}: volume ${JSON.stringify(volume)} ${why}`)
    }
    destinations.add(dest)
  }
  return [...destinations].sort().map((destination) => ({
    destination,
    type: 'tmpfs',
    source: 'none',
    options: [...VOLUME_MOUNT_OPTIONS],
  }))
}

/**
 * Labels, then image metadata under umoci's keys (metadata wins over a label of the same key, as in
 * umoci), then the caller's annotations. Empty values are left out; keys are sorted.
 */
function annotationsOf(config: ImageConfig, extra: Record<string, string>): Record<string, string> {
  const c = config.config ?? {}
  const metadata: Record<string, string | undefined> = {
    os: config.os,
    architecture: config.architecture,
    variant: config.variant,
    'os.version': config['os.version'],
    author: config.author,
    created: config.created,
    stopSignal: c.StopSignal,
    exposedPorts: Object.keys(c.ExposedPorts ?? {})
      .sort()
      .join(','),
  }
  const all: Record<string, string> = { ...c.Labels }
  for (const [key, value] of Object.entries(metadata)) if (value) all[ANNOTATION_PREFIX + key] = value
  Object.assign(all, extra)
  return Object.fromEntries(Object.entries(all).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

function checkNoNul(text: string, what: string, field: string): void {
  if (text.includes('\0'))
    throw new OcipullError('ERR_CONFIG_INVALID', `${what}: ${field} contains a NUL byte`)
}

/** The mounts `runc spec` writes, fresh objects on each call. */
function defaultMounts(): RuntimeMount[] {
  const hardened = ['nosuid', 'noexec', 'nodev']
  return [
    { destination: '/proc', type: 'proc', source: 'proc' },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: [...hardened, 'mode=1777', 'size=65536k'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: [...hardened] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: [...hardened, 'ro'] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: [...hardened, 'relatime', 'ro'],
    },
  ]
}
