import { createPrivateKey, type KeyObject } from 'node:crypto'
import { open, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { abortError, OcipullError } from '../errors.js'

/** A private key for `enc.keys.jwe`, with the name messages use for it (its file, never its bytes). */
export interface DecryptionKey {
  name: string
  key: KeyObject
}

/** Where to read a key: a file (or a directory of key files) and an optional password. */
export interface DecryptionKeySpec {
  path: string
  password?: string
}

/** Key files are small; anything larger is not a key. */
const MAX_KEY_FILE = 1 << 20
const MAX_KEYS_IN_DIRECTORY = 64

/**
 * Parses ocicrypt's `--decryption-key` form `FILE[:PASSWORD]`. PASSWORD is `pass=TEXT`,
 * `file=PATH` (the password is that file's bytes) or the literal text. The split is at the first
 * `:`, so a key file's name cannot contain one, but a password can.
 */
export function parseDecryptionKeySpec(text: string): DecryptionKeySpec {
  const colon = text.indexOf(':')
  if (colon === 0 || text === '') {
    throw new OcipullError('ERR_OPTIONS_INVALID', 'a decryption key needs a file name: FILE[:PASSWORD]')
  }
  return colon < 0 ? { path: text } : { path: text.slice(0, colon), password: text.slice(colon + 1) }
}

/**
 * Reads the private keys of `spec`: a PEM (PKCS#1, PKCS#8, SEC1, encrypted PKCS#8), DER or JWK
 * (or JWK Set) file, or every such file in a directory, as ocicrypt does. RSA keys serve
 * RSA-OAEP and RSA-OAEP-256 recipients, EC and X25519 keys ECDH-ES+A*KW ones.
 * ERR_KEY_INVALID when a file holds no usable private key or the password is missing or wrong,
 * ERR_KEY_UNAVAILABLE when the file cannot be read.
 */
export async function loadDecryptionKeys(
  spec: DecryptionKeySpec,
  options: { signal?: AbortSignal } = {},
): Promise<DecryptionKey[]> {
  const info = await stat(spec.path).catch((err: NodeJS.ErrnoException) => {
    throw new OcipullError('ERR_KEY_UNAVAILABLE', `decryption key ${spec.path}: ${err.code ?? err.message}`, {
      cause: err,
    })
  })
  const password = spec.password === undefined ? undefined : await readPassword(spec.password, spec.path)
  if (!info.isDirectory())
    return parseKeyFile(await readCapped(spec.path, options.signal), spec.path, password)
  const names = (await readdir(spec.path)).sort().slice(0, MAX_KEYS_IN_DIRECTORY)
  const keys: DecryptionKey[] = []
  for (const name of names) {
    const path = join(spec.path, name)
    if (!(await stat(path)).isFile()) continue
    keys.push(...parseKeyFile(await readCapped(path, options.signal), path, password))
  }
  if (keys.length === 0)
    throw new OcipullError('ERR_KEY_INVALID', `decryption keys ${spec.path}: no key files`)
  return keys
}

/** Parses the bytes of one key file (see `loadDecryptionKeys`); `name` is used in messages. */
export function parseKeyFile(bytes: Buffer, name: string, password?: Buffer): DecryptionKey[] {
  const text = bytes.subarray(0, 64).toString('latin1').trimStart()
  try {
    if (text.startsWith('-----BEGIN')) {
      if (!bytes.includes('PRIVATE KEY-----')) throw new Error('no PRIVATE KEY block')
      return [{ name, key: createPrivateKey(withPassword({ key: bytes, format: 'pem' as const }, password)) }]
    }
    if (text.startsWith('{')) return jwkKeys(bytes, name)
    return [{ name, key: derKey(bytes, password) }]
  } catch (err) {
    if (err instanceof OcipullError) throw err
    const reason = (err as { code?: string }).code ?? (err as Error).message
    const hint =
      password === undefined && /decrypt|passphrase|bad password/i.test(String(err))
        ? ' (is it encrypted? give FILE:PASSWORD)'
        : ''
    throw new OcipullError(
      'ERR_KEY_INVALID',
      `decryption key ${name}: not a usable private key: ${reason}${hint}`,
      {
        cause: err,
      },
    )
  }
}

function derKey(bytes: Buffer, password: Buffer | undefined): KeyObject {
  const errors: unknown[] = []
  for (const type of ['pkcs8', 'pkcs1', 'sec1'] as const) {
    try {
      return createPrivateKey(withPassword({ key: bytes, format: 'der' as const, type }, password))
    } catch (err) {
      errors.push(err)
    }
  }
  throw errors[0]
}

function jwkKeys(bytes: Buffer, name: string): DecryptionKey[] {
  const doc = JSON.parse(bytes.toString('utf8')) as { keys?: unknown; d?: unknown }
  const jwks = Array.isArray(doc.keys) ? (doc.keys as unknown[]) : [doc]
  const keys: DecryptionKey[] = []
  jwks.forEach((jwk, i) => {
    if (typeof jwk !== 'object' || jwk === null || typeof (jwk as { d?: unknown }).d !== 'string') return
    const key = createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' })
    keys.push({ name: jwks.length > 1 ? `${name}#${i}` : name, key })
  })
  if (keys.length === 0)
    throw new OcipullError('ERR_KEY_INVALID', `decryption key ${name}: no private JWK in it`)
  return keys
}

function withPassword<T extends object>(input: T, password: Buffer | undefined): T & { passphrase?: Buffer } {
  return password === undefined ? input : { ...input, passphrase: password }
}

async function readPassword(spec: string, keyPath: string): Promise<Buffer> {
  if (spec.startsWith('pass=')) return Buffer.from(spec.slice(5))
  if (spec.startsWith('file=')) {
    const path = spec.slice(5)
    return readCapped(path).catch((err: unknown) => {
      throw new OcipullError('ERR_KEY_UNAVAILABLE', `password file ${path} of ${keyPath}: unreadable`, {
        cause: err,
      })
    })
  }
  return Buffer.from(spec)
}

async function readCapped(path: string, signal?: AbortSignal): Promise<Buffer> {
  if (signal?.aborted) throw abortError(signal, path)
  const file = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new OcipullError('ERR_KEY_UNAVAILABLE', `${path}: ${err.code ?? err.message}`, { cause: err })
  })
  try {
    const buffer = Buffer.alloc(MAX_KEY_FILE + 1)
    let length = 0
    for (;;) {
      const { bytesRead } = await file.read(buffer, length, buffer.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
      if (length > MAX_KEY_FILE) {
        throw new OcipullError('ERR_KEY_INVALID', `decryption key ${path}: larger than ${MAX_KEY_FILE} bytes`)
      }
    }
    return buffer.subarray(0, length)
  } finally {
    await file.close()
  }
}
