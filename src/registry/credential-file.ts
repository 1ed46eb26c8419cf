import { OcipullError } from '../errors.js'
import { readCappedFile } from '../fs/read-capped-file.js'
import { isValidHelperName } from './credential-helper.js'
import { normalizeAuthKey } from './credential-key.js'
import type { Credential } from './credentials.js'

/** A parsed docker `config.json` or containers `auth.json`, keyed for lookups. */
export interface AuthFile {
  path: string
  /** Normalized key → the credential of the first entry in file order that has one for that key. */
  auths: Map<string, Credential>
  /** Normalized host → the first `auths` key naming just that host, as stored (for `credsStore`). */
  serverUrls: Map<string, string>
  /** Normalized host → the helper named in `credHelpers`, and its key as stored. */
  credHelpers: Map<string, { helper: string; serverUrl: string }>
  credsStore: string | undefined
}

export const DEFAULT_MAX_AUTH_FILE_BYTES = 1024 * 1024

type Fail = (problem: string) => never

const ENTRY_FIELDS = ['auth', 'username', 'password', 'identitytoken', 'registrytoken'] as const
const CONTROL = /[\u0000-\u001f\u007f]/
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/**
 * Reads and checks one auth file. Missing files (ENOENT, ENOTDIR) give undefined; an empty file
 * has no entries. Anything else wrong is ERR_CREDENTIALS naming the file and the JSON path; the
 * whole file is checked, not only the entry asked for. Messages never quote values.
 */
export async function readAuthFile(
  path: string,
  options: { maxBytes?: number } = {},
): Promise<AuthFile | undefined> {
  const fail: Fail = (problem) => {
    throw new OcipullError('ERR_CREDENTIALS', `auth file ${path}: ${problem}`)
  }
  const bytes = await readCappedFile(path, options.maxBytes ?? DEFAULT_MAX_AUTH_FILE_BYTES, fail, {
    missingOk: true,
  })
  if (bytes === undefined) return undefined
  return parseAuthFile(bytes, path)
}

/**
 * Checks the bytes of one auth file that came from elsewhere (a KBS resource, an
 * `authenticated_registry_credentials_uri`); `name` stands for the path in messages. The same
 * rules as readAuthFile apply, and the same ERR_CREDENTIALS.
 */
export function parseAuthFile(bytes: Uint8Array, name: string): AuthFile {
  const path = name
  const fail: Fail = (problem) => {
    throw new OcipullError('ERR_CREDENTIALS', `auth file ${path}: ${problem}`)
  }
  let text = ''
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    fail('not valid UTF-8')
  }
  const file: AuthFile = {
    path,
    auths: new Map(),
    serverUrls: new Map(),
    credHelpers: new Map(),
    credsStore: undefined,
  }
  if (text.trim() === '') return file
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    fail('not valid JSON') // the parser's message can quote the text, secrets included
  }
  const top = asObject(doc, '', fail)

  for (const [key, value] of entries(top, 'auths', fail)) {
    const at = `auths.${quote(key)}`
    const credential = entryCredential(asObject(value, at, fail), at, fail)
    const normalized = normalizeAuthKey(key)
    if (normalized === undefined) continue
    if (!normalized.includes('/') && !file.serverUrls.has(normalized)) file.serverUrls.set(normalized, key)
    if (credential !== undefined && !file.auths.has(normalized)) file.auths.set(normalized, credential)
  }
  for (const [key, value] of entries(top, 'credHelpers', fail)) {
    const at = `credHelpers.${quote(key)}`
    if (typeof value !== 'string') fail(`${at}: want a string, got ${typeName(value)}`)
    if (!isValidHelperName(value)) fail(`${at}: not a valid helper name`)
    const normalized = normalizeAuthKey(key)
    if (normalized === undefined || normalized.includes('/') || file.credHelpers.has(normalized)) continue
    file.credHelpers.set(normalized, { helper: value, serverUrl: key })
  }
  const store = top['credsStore']
  if (store !== undefined && store !== null && store !== '') {
    if (typeof store !== 'string') fail(`credsStore: want a string, got ${typeName(store)}`)
    if (!isValidHelperName(store)) fail('credsStore: not a valid helper name')
    file.credsStore = store
  }
  return file
}

/**
 * One `auths` entry's credential: `registrytoken`, else `identitytoken`, else `auth` (base64 of
 * `user:password`, the password may hold ':'), else `username`/`password`. An entry with none
 * of them (Docker's `{}` placeholder next to a credsStore) has no credential.
 */
function entryCredential(entry: Record<string, unknown>, at: string, fail: Fail): Credential | undefined {
  const field: Partial<Record<(typeof ENTRY_FIELDS)[number], string>> = {}
  for (const name of ENTRY_FIELDS) {
    const v = entry[name]
    if (v === undefined || v === null || v === '') continue
    if (typeof v !== 'string') fail(`${at}.${name}: want a string, got ${typeName(v)}`)
    field[name] = v
  }
  let username = field.username ?? ''
  let password = field.password ?? ''
  if (field.auth !== undefined) {
    if (field.auth.length % 4 !== 0 || !BASE64.test(field.auth)) fail(`${at}.auth: not valid base64`)
    let decoded = ''
    try {
      decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(field.auth, 'base64'))
    } catch {
      fail(`${at}.auth: not valid UTF-8 after base64 decoding`)
    }
    const colon = decoded.indexOf(':')
    if (colon < 0) fail(`${at}.auth: want base64 of user:password, found no ':'`)
    username = decoded.slice(0, colon)
    password = decoded.slice(colon + 1)
  }
  if (field.registrytoken !== undefined) {
    if (CONTROL.test(field.registrytoken)) fail(`${at}.registrytoken: holds control characters`)
    return { kind: 'registry-token', token: field.registrytoken }
  }
  if (field.identitytoken !== undefined) {
    if (CONTROL.test(field.identitytoken)) fail(`${at}.identitytoken: holds control characters`)
    const token = field.identitytoken
    return username === '' || username === '<token>'
      ? { kind: 'identity-token', token }
      : { kind: 'identity-token', username, token }
  }
  if (username === '' && password === '') return undefined
  if (username === '') fail(`${at}: user name is empty`)
  if (CONTROL.test(username)) fail(`${at}: user name holds control characters`)
  return { kind: 'basic', username, password }
}

function entries(top: Record<string, unknown>, name: string, fail: Fail): [string, unknown][] {
  const v = top[name]
  if (v === undefined || v === null) return []
  return Object.entries(asObject(v, name, fail))
}

function asObject(v: unknown, at: string, fail: Fail): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    fail(`${at === '' ? '' : `${at}: `}want an object, got ${typeName(v)}`)
  }
  return v as Record<string, unknown>
}

/** The JSON type of a value, never the value: auth files hold secrets. */
function typeName(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'object') return 'an object'
  return `a ${typeof v}`
}

function quote(key: string): string {
  return JSON.stringify(key.length > 100 ? `${key.slice(0, 97)}...` : key)
}
