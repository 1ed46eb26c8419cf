import { abortError, OcipullError } from '../errors.js'
import { resourceKey } from '../kbs/resource-uri.js'
import type { KeySource } from './key-source.js'

export interface Pkcs11KeySourceOptions {
  /** The PKCS#11 module (shared library), e.g. /usr/lib/softhsm/libsofthsm2.so. */
  module: string
  /** The index of the slot in the module's list of slots with a token present (0 = the first). */
  slot: number
  /** The user PIN (never printed). */
  pin: string
  /** The largest object value read (default 1 MiB). */
  maxBytes?: number
}

const MAX_VALUE_BYTES = 1024 * 1024

type Pkcs11Module = typeof import('pkcs11js')

/**
 * A KeySource for `kbs:///repo/type/tag` backed by a PKCS#11 token, the guest side of Trustee's
 * PKCS#11 resource backend: the resource is the generic-secret object (CKO_SECRET_KEY,
 * CKK_GENERIC_SECRET) labelled `repo/type/tag`, and its CKA_VALUE is returned. It must be
 * extractable and not sensitive. Each call loads the module, logs in, reads and finalizes again
 * (a few milliseconds, synchronous in the native addon), so nothing stays open between calls.
 * Everything the token refuses (bad PIN, no such slot, no or several objects with the label, a
 * sensitive value) is ERR_KEY_UNAVAILABLE naming the module, the slot and the PKCS#11 return code.
 */
export function pkcs11KeySource(options: Pkcs11KeySourceOptions): KeySource {
  if (!Number.isSafeInteger(options.slot) || options.slot < 0)
    throw new TypeError('pkcs11: slot: want an index >= 0')
  const maxBytes = options.maxBytes ?? MAX_VALUE_BYTES
  return {
    async getResource(uri, opts = {}) {
      const key = resourceKey(uri, 'pkcs11')
      const what = `pkcs11 ${options.module} slot ${options.slot}: ${key}`
      const lib = await loadPkcs11(what)
      if (opts.signal?.aborted) throw abortError(opts.signal, what)
      return readSecret(lib, options, key, maxBytes, what)
    },
  }
}

async function loadPkcs11(what: string): Promise<Pkcs11Module> {
  try {
    const m = (await import('pkcs11js')) as Pkcs11Module & { default?: Pkcs11Module }
    return m.default ?? m
  } catch (err) {
    throw new OcipullError('ERR_KEY_UNAVAILABLE', `${what}: the pkcs11js module is not installed`, {
      cause: err,
    })
  }
}

function readSecret(
  lib: Pkcs11Module,
  options: Pkcs11KeySourceOptions,
  label: string,
  maxBytes: number,
  what: string,
): Uint8Array {
  const p11 = new lib.PKCS11()
  const fail = (step: string, err?: unknown): never => {
    const code = err instanceof Error ? err.message.split(/\s/, 1)[0] : undefined
    throw new OcipullError('ERR_KEY_UNAVAILABLE', `${what}: ${step}${code ? `: ${code}` : ''}`, {
      cause: err,
    })
  }
  try {
    p11.load(options.module)
  } catch (err) {
    return fail('cannot load the module', err)
  }
  let initialized = false
  try {
    try {
      p11.C_Initialize()
      initialized = true
    } catch (err) {
      // Someone else in this process holds the module open: use it, and leave it to them.
      if ((err as { code?: number }).code !== lib.CKR_CRYPTOKI_ALREADY_INITIALIZED) fail('C_Initialize', err)
    }
    const slots = p11.C_GetSlotList(true)
    const slot = slots[options.slot]
    if (slot === undefined) fail(`no slot ${options.slot} (${slots.length} slots with a token)`)
    const session = p11.C_OpenSession(slot as Buffer, lib.CKF_SERIAL_SESSION)
    try {
      try {
        p11.C_Login(session, lib.CKU_USER, options.pin)
      } catch (err) {
        if ((err as { code?: number }).code !== lib.CKR_USER_ALREADY_LOGGED_IN) fail('C_Login', err)
      }
      p11.C_FindObjectsInit(session, [
        { type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY },
        { type: lib.CKA_KEY_TYPE, value: lib.CKK_GENERIC_SECRET },
        { type: lib.CKA_LABEL, value: label },
      ])
      let found: Buffer[]
      try {
        found = p11.C_FindObjects(session, 2)
      } finally {
        p11.C_FindObjectsFinal(session)
      }
      if (found.length === 0) fail('no generic secret with this label')
      if (found.length > 1) fail('several generic secrets with this label')
      let value: Buffer | undefined
      try {
        value = p11.C_GetAttributeValue(session, found[0] as Buffer, [{ type: lib.CKA_VALUE }])[0]?.value as
          | Buffer
          | undefined
      } catch (err) {
        fail('cannot read the value (sensitive or not extractable)', err)
      }
      if (value === undefined || value.length === 0) fail('the object has no value')
      if ((value as Buffer).length > maxBytes) fail(`value over the limit of ${maxBytes} bytes`)
      const out = Uint8Array.from(value as Buffer)
      ;(value as Buffer).fill(0)
      return out
    } finally {
      try {
        p11.C_CloseSession(session)
      } catch {}
    }
  } catch (err) {
    if (err instanceof OcipullError) throw err
    return fail('token error', err)
  } finally {
    if (initialized) {
      try {
        p11.C_Finalize()
      } catch {}
    }
    try {
      p11.close()
    } catch {}
  }
}
