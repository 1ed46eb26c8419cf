import { readdir } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { abortError, OcipullError } from '../errors.js'
import type { PolicyImage } from './policy-scopes.js'
import { readResource } from './read-resource.js'

/** One `docker:` (or `default-docker:`) entry of registries.d, as far as reading needs it. */
export interface RegistriesDEntry {
  /** `lookaside`, or the deprecated `sigstore` when `lookaside` is absent. */
  lookaside?: string
  useSigstoreAttachments?: boolean
}

/** The merged registries.d configuration (containers-registries.d(5)). */
export interface RegistriesD {
  defaultDocker?: RegistriesDEntry
  /** Scope (`host[:port]`, `host/ns`, `host/ns/repo`, a full reference, or `*.domain`) → entry. */
  docker: ReadonlyMap<string, RegistriesDEntry>
  /** Used when no entry names a lookaside; containers/image has a built-in directory. */
  defaultLookaside?: string
}

/** Caps on what we read: files per directory and bytes per file. */
export const MAX_REGISTRIES_D_FILES = 256
export const MAX_REGISTRIES_D_FILE_SIZE = 1024 * 1024

const entryKeys = [
  'lookaside',
  'lookaside-staging',
  'sigstore',
  'sigstore-staging',
  'use-sigstore-attachments',
]

/**
 * Parses and merges registries.d YAML documents. Strict: duplicate keys, unknown keys, wrong
 * types, two `default-docker` sections or the same `docker` scope in two files are
 * ERR_POLICY_INVALID naming the file and key. `lookaside-staging`/`sigstore-staging` are
 * accepted and ignored (they only matter when writing).
 */
export function parseRegistriesD(files: readonly { name: string; text: string }[]): RegistriesD {
  let defaultDocker: RegistriesDEntry | undefined
  let defaultFrom = ''
  const docker = new Map<string, RegistriesDEntry>()
  const from = new Map<string, string>()
  for (const file of files) {
    const fail = (path: string, problem: string): never => {
      throw new OcipullError('ERR_POLICY_INVALID', `registries.d ${file.name}: ${path}: ${problem}`)
    }
    let doc: unknown
    try {
      doc = parseYaml(file.text, { uniqueKeys: true, maxAliasCount: 0, prettyErrors: false, strict: true })
    } catch (err) {
      fail('(document)', `not valid YAML: ${(err as Error).message.split('\n')[0]}`)
    }
    if (doc === null || doc === undefined) continue
    const top = plainObject(doc, '(document)', fail)
    for (const [key, value] of Object.entries(top)) {
      if (key === 'default-docker') {
        if (value === null) continue
        if (defaultDocker !== undefined) fail(key, `default-docker is already defined in ${defaultFrom}`)
        defaultDocker = entry(value, key, fail)
        defaultFrom = file.name
      } else if (key === 'docker') {
        if (value === null) continue
        for (const [scope, v] of Object.entries(plainObject(value, 'docker', fail))) {
          const previous = from.get(scope)
          if (previous !== undefined) fail(`docker.${scope}`, `already defined in ${previous}`)
          docker.set(scope, entry(v, `docker.${scope}`, fail))
          from.set(scope, file.name)
        }
      } else {
        fail(key, `unknown key ${JSON.stringify(key)}`)
      }
    }
  }
  return { ...(defaultDocker === undefined ? {} : { defaultDocker }), docker }
}

/**
 * Reads every `*.yaml` file of a registries.d directory (sorted by name) and merges them. The
 * result's `defaultLookaside` is containers/image's built-in: `/var/lib/containers/sigstore` for
 * root, `~/.local/share/containers/sigstore` otherwise.
 */
export async function loadRegistriesD(
  dir: string,
  options: { signal?: AbortSignal } = {},
): Promise<RegistriesD> {
  let names: string[]
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.yaml')).sort()
  } catch (err) {
    throw new OcipullError(
      'ERR_POLICY_INVALID',
      `registries.d ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err },
    )
  }
  if (names.length > MAX_REGISTRIES_D_FILES) {
    throw new OcipullError(
      'ERR_POLICY_INVALID',
      `registries.d ${dir}: more than ${MAX_REGISTRIES_D_FILES} files`,
    )
  }
  const files: { name: string; text: string }[] = []
  for (const name of names) {
    if (options.signal?.aborted) throw abortError(options.signal, `registries.d ${dir}`)
    const path = join(dir, name)
    const bytes = await readResource(path, {
      maxBytes: MAX_REGISTRIES_D_FILE_SIZE,
      what: `registries.d ${path}`,
      code: 'ERR_POLICY_INVALID',
    })
    files.push({ name: path, text: Buffer.from(bytes).toString('utf8') })
  }
  return { ...parseRegistriesD(files), defaultLookaside: builtinLookaside() }
}

/** containers/image's default lookaside directory for this user. */
export function builtinLookaside(): string {
  const dir =
    process.getuid?.() === 0
      ? '/var/lib/containers/sigstore'
      : join(homedir(), '.local/share/containers/sigstore')
  return `file://${dir}`
}

/**
 * The lookaside base URL for an image: the first entry (exact identity, then each namespace,
 * then `default-docker`) that sets `lookaside` (or `sigstore`); each setting falls back on its
 * own, as containers/image does. Undefined when nothing is configured and there is no default.
 */
export function lookasideFor(config: RegistriesD, image: PolicyImage): string | undefined {
  for (const e of entriesFor(config, image)) if (e.lookaside !== undefined) return e.lookaside
  return config.defaultLookaside
}

/** Whether sigstore attachments are read for this image (`use-sigstore-attachments`; default false). */
export function useSigstoreAttachmentsFor(config: RegistriesD, image: PolicyImage): boolean {
  for (const e of entriesFor(config, image)) {
    if (e.useSigstoreAttachments !== undefined) return e.useSigstoreAttachments
  }
  return false
}

function entriesFor(config: RegistriesD, image: PolicyImage): RegistriesDEntry[] {
  const out: RegistriesDEntry[] = []
  if (image.transport === 'docker') {
    for (const scope of [image.identity, ...image.namespaces]) {
      const e = config.docker.get(scope)
      if (e !== undefined) out.push(e)
    }
  }
  if (config.defaultDocker !== undefined) out.push(config.defaultDocker)
  return out
}

function plainObject(
  value: unknown,
  path: string,
  fail: (path: string, problem: string) => never,
): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Map) {
    return fail(path, 'want a mapping')
  }
  return value as Record<string, unknown>
}

function entry(
  value: unknown,
  path: string,
  fail: (path: string, problem: string) => never,
): RegistriesDEntry {
  if (value === null) return {}
  const o = plainObject(value, path, fail)
  const out: RegistriesDEntry = {}
  for (const [key, v] of Object.entries(o)) {
    if (!entryKeys.includes(key)) fail(`${path}.${key}`, `unknown key ${JSON.stringify(key)}`)
    if (key === 'use-sigstore-attachments') {
      if (typeof v !== 'boolean') fail(`${path}.${key}`, 'want true or false')
      out.useSigstoreAttachments = v as boolean
    } else if (typeof v !== 'string' || v === '') {
      fail(`${path}.${key}`, 'want a non-empty URL string')
    }
  }
  const lookaside = (o['lookaside'] ?? o['sigstore']) as string | undefined
  if (lookaside !== undefined) out.lookaside = lookaside
  return out
}
