import { loadKeyProviderConfig } from '../decrypt/keyprovider-config.js'
import { createLayerDecryptor, type LayerDecryptor } from '../decrypt/layer-decryptor.js'
import { loadDecryptionKeys, parseDecryptionKeySpec } from '../decrypt/private-keys.js'
import { type OpenedKeySource, openKeySource } from '../keys/open-key-source.js'
import type { CommandIo } from './inspect.js'
import { type KbsFlagValues, kbsFlags, kbsFlagsHelp, keySourceOptionsFromFlags } from './kbs.js'

/** The flags of the commands that decrypt layers: private keys, and the KBS flags. */
export const keyFlags = {
  'decryption-key': { type: 'string', multiple: true },
  ...kbsFlags,
} as const

export const keyFlagsHelp = `Decryption options:
  --decryption-key FILE[:PASSWORD]
                        a private key (PEM, DER or JWK; a directory of them) for encrypted layers
                        (ocicrypt enc.keys.jwe); PASSWORD is pass=TEXT, file=PATH or the text
                        itself; repeatable. Key providers come from $OCICRYPT_KEYPROVIDER_CONFIG;
                        kbs:/// key ids of CoCo packets from the KBS options.

${kbsFlagsHelp}`

export interface KeyFlagValues extends KbsFlagValues {
  'decryption-key'?: string[] | undefined
}

export interface CommandKeys {
  /** Serves `kbs:///…` and `file://` URIs (layer KEKs, policy and config URIs), if configured. */
  keySource?: OpenedKeySource
  /** Unwraps layer keys, when any key, key provider or key source is configured. */
  decryptor?: LayerDecryptor
  close(): Promise<void>
}

/** Opens what the key flags name; `close()` releases the KBS client. */
export async function keysFromFlags(values: KeyFlagValues, io: CommandIo): Promise<CommandKeys> {
  const keys = []
  for (const spec of values['decryption-key'] ?? []) {
    keys.push(...(await loadDecryptionKeys(parseDecryptionKeySpec(spec), { signal: io.signal })))
  }
  const keyProviders = await loadKeyProviderConfig({ env: io.env })
  const sourceOptions = await keySourceOptionsFromFlags(values, io)
  const keySource = sourceOptions === undefined ? undefined : openKeySource(sourceOptions)
  const decryptor =
    keys.length === 0 && keyProviders.size === 0 && keySource === undefined
      ? undefined
      : createLayerDecryptor({ keys, keyProviders, ...(keySource ? { keySource } : {}) })
  return {
    ...(keySource ? { keySource } : {}),
    ...(decryptor ? { decryptor } : {}),
    close: async () => {
      await keySource?.close()
    },
  }
}
