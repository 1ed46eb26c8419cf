import { isOcipullError, OcipullError } from '../errors.js'
import type { KeySource } from '../keys/key-source.js'
import { parseAnnotationPacket, unwrapAnnotationPacket } from './annotation-packet.js'
import { unwrapJwe } from './jwe-key-wrapper.js'
import { runKeyProviderCmd } from './keyprovider-cmd.js'
import type { KeyProviderEntry, KeyProviders } from './keyprovider-config.js'
import { decodeKeyProviderOutput, encodeKeyUnwrapInput } from './keyprovider-messages.js'
import type { LayerEncryption } from './layer-annotations.js'
import { type PrivateLayerOptions, parsePrivateOptions } from './layer-options.js'
import type { DecryptionKey } from './private-keys.js'
import { type UnwrapAttempt, unwrapFailure } from './unwrap-attempts.js'

export const ATTESTATION_AGENT = 'attestation-agent'

/** Everything that can unwrap a layer key; see `createLayerDecryptor`. */
export interface Unwrappers {
  keys: readonly DecryptionKey[]
  keySource: KeySource | undefined
  /** The KEK for a kid, fetched once per kid from the key source. */
  kek: (kid: string, signal: AbortSignal | undefined) => Promise<Uint8Array>
  keyProviders: KeyProviders
  keyProviderParameters: Readonly<Record<string, readonly Uint8Array[]>>
  keyProviderTimeoutMs: number | undefined
}

/** The unwrapped private options and the way they were obtained (for messages, never the key). */
export interface UnwrappedKey {
  privopts: PrivateLayerOptions
  via: string
}

/**
 * Tries every wrapped key of the layer with every way there is to unwrap it, cheapest first:
 * `enc.keys.jwe` with the private keys; `provider.attestation-agent` packets in-process with
 * KEKs from the key source; then `provider.NAME` through the `cmd` key provider NAME. The first
 * success wins. Otherwise one error names everything tried (see `unwrapFailure`). A malformed
 * annotation is ERR_MANIFEST_INVALID; an abort is passed through at once.
 */
export async function unwrapLayerKey(
  encryption: LayerEncryption,
  u: Unwrappers,
  options: { what: string; signal?: AbortSignal },
): Promise<UnwrappedKey> {
  const { what } = options
  const attempts: UnwrapAttempt[] = []
  const order = (scheme: string) =>
    scheme === 'jwe' ? 0 : scheme === `provider.${ATTESTATION_AGENT}` ? 1 : 2
  const schemes = [...encryption.wrapped].sort((a, b) => order(a.scheme) - order(b.scheme))
  for (const { scheme, entries } of schemes) {
    for (const [i, entry] of entries.entries()) {
      const label = `enc.keys.${scheme}${entries.length > 1 ? ` entry ${i + 1}` : ''}`
      const plain = await unwrapEntry(scheme, entry, label, u, attempts, options)
      if (plain !== undefined) {
        return {
          privopts: parsePrivateOptions(plain.bytes, `${what}: private options from ${plain.via}`),
          via: plain.via,
        }
      }
    }
  }
  throw unwrapFailure(what, attempts)
}

async function unwrapEntry(
  scheme: string,
  entry: Buffer,
  label: string,
  u: Unwrappers,
  attempts: UnwrapAttempt[],
  options: { what: string; signal?: AbortSignal },
): Promise<{ bytes: Uint8Array; via: string } | undefined> {
  const { what, signal } = options
  if (scheme === 'jwe') {
    const bytes = await unwrapJwe(entry, u.keys, { what, label }, attempts)
    return bytes === undefined ? undefined : { bytes, via: label }
  }
  if (!scheme.startsWith('provider.')) {
    attempts.push({ what: label, problem: 'not supported by ocipull', code: 'ERR_KEY_UNAVAILABLE' })
    return undefined
  }
  const name = scheme.slice('provider.'.length)
  if (name === ATTESTATION_AGENT && u.keySource !== undefined) {
    const bytes = await unwrapPacket(entry, label, u, attempts, options)
    if (bytes !== undefined) return { bytes, via: label }
  }
  const provider = u.keyProviders.get(name)
  if (provider === undefined) {
    if (!(name === ATTESTATION_AGENT && u.keySource !== undefined)) {
      const problem =
        name === ATTESTATION_AGENT
          ? 'no key source and no key provider configured'
          : `no key provider ${name} configured`
      attempts.push({ what: label, problem, code: 'ERR_KEY_UNAVAILABLE' })
    }
    return undefined
  }
  const bytes = await viaKeyProvider(name, provider, entry, label, u, attempts, signal)
  return bytes === undefined ? undefined : { bytes, via: `${label} via key provider ${name}` }
}

async function unwrapPacket(
  entry: Buffer,
  label: string,
  u: Unwrappers,
  attempts: UnwrapAttempt[],
  options: { what: string; signal?: AbortSignal },
): Promise<Uint8Array | undefined> {
  const packet = parseAnnotationPacket(entry, `${options.what}: ${label}`)
  if (packet.provider !== 'kbs') {
    attempts.push({
      what: label,
      problem: `KMS provider ${packet.provider} is not supported`,
      code: 'ERR_KEY_UNAVAILABLE',
    })
    return undefined
  }
  let kek: Uint8Array
  try {
    kek = await u.kek(packet.kid, options.signal)
  } catch (err) {
    if (isOcipullError(err, 'ERR_ABORTED')) throw err
    attempts.push({
      what: `${label} (kid ${packet.kid})`,
      problem: (err as Error).message,
      code: isOcipullError(err) ? err.code : 'ERR_KEY_UNAVAILABLE',
      cause: err,
    })
    return undefined
  }
  try {
    return unwrapAnnotationPacket(packet, kek, `${options.what}: ${label}`)
  } catch (err) {
    if (!isOcipullError(err, 'ERR_KEY_INVALID')) throw err
    attempts.push({
      what: `${label} (kid ${packet.kid})`,
      problem: 'the key does not fit',
      code: 'ERR_KEY_INVALID',
      cause: err,
    })
    return undefined
  }
}

async function viaKeyProvider(
  name: string,
  provider: KeyProviderEntry,
  entry: Buffer,
  label: string,
  u: Unwrappers,
  attempts: UnwrapAttempt[],
  signal: AbortSignal | undefined,
): Promise<Uint8Array | undefined> {
  const where = `${label} via key provider ${name}`
  if (provider.kind !== 'cmd') {
    attempts.push({
      what: where,
      problem: `${provider.kind} providers are not supported`,
      code: 'ERR_KEY_UNAVAILABLE',
    })
    return undefined
  }
  try {
    const out = await runKeyProviderCmd(provider, encodeKeyUnwrapInput(entry, u.keyProviderParameters), {
      what: `key provider ${name}`,
      ...(u.keyProviderTimeoutMs === undefined ? {} : { timeoutMs: u.keyProviderTimeoutMs }),
      ...(signal ? { signal } : {}),
    })
    const { optsdata } = decodeKeyProviderOutput(out, `key provider ${name} answer`)
    if (optsdata === undefined)
      throw new OcipullError('ERR_KEY_UNAVAILABLE', `key provider ${name}: no optsdata in the answer`)
    return optsdata
  } catch (err) {
    if (isOcipullError(err, 'ERR_ABORTED')) throw err
    attempts.push({
      what: where,
      problem: (err as Error).message,
      code: isOcipullError(err) ? err.code : 'ERR_KEY_UNAVAILABLE',
      cause: err,
    })
    return undefined
  }
}
