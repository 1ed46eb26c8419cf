/**
 * The parts of the OCI runtime-spec 1.x `config.json` that ocipull writes (Linux only).
 * Field names and nesting are the spec's; optional fields are left out rather than written empty.
 * See https://github.com/opencontainers/runtime-spec/blob/main/config.md.
 */

/** The runtime-spec version we write: what `runc spec` (runc 1.1) writes. */
export const OCI_VERSION = '1.0.2-dev'

export interface RuntimeConfig {
  ociVersion: string
  process: RuntimeProcess
  root: RuntimeRoot
  hostname?: string
  mounts: RuntimeMount[]
  annotations?: Record<string, string>
  linux: RuntimeLinux
}

export interface RuntimeProcess {
  terminal: boolean
  user: RuntimeUser
  /** argv; args[0] is looked up on the container's PATH by the runtime. Never empty. */
  args: string[]
  /** `NAME=value` entries, one per name. */
  env: string[]
  /** Absolute path inside the container. */
  cwd: string
  capabilities?: RuntimeCapabilities
  rlimits?: RuntimeRlimit[]
  noNewPrivileges: boolean
}

export interface RuntimeUser {
  uid: number
  gid: number
  umask?: number
  additionalGids?: number[]
}

/** Capability names like `CAP_KILL`, per set. */
export interface RuntimeCapabilities {
  bounding?: string[]
  effective?: string[]
  inheritable?: string[]
  permitted?: string[]
  ambient?: string[]
}

export interface RuntimeRlimit {
  type: string
  hard: number
  soft: number
}

export interface RuntimeRoot {
  /** Relative to the bundle directory. */
  path: string
  readonly: boolean
}

export interface RuntimeMount {
  destination: string
  type?: string
  source?: string
  options?: string[]
}

export interface RuntimeNamespace {
  type: 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup' | 'time'
  path?: string
}

export interface RuntimeDeviceRule {
  allow: boolean
  type?: string
  major?: number
  minor?: number
  access?: string
}

export interface RuntimeLinux {
  resources?: { devices?: RuntimeDeviceRule[] }
  namespaces: RuntimeNamespace[]
  maskedPaths?: string[]
  readonlyPaths?: string[]
}
