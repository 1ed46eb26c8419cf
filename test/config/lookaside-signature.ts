import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { GpgHome } from '../policy/gpg-home.js'
import { run } from '../rig/index.js'

export interface LookasideSignatureOptions {
  gpg: GpgHome
  /** The signing key's fingerprint, in `gpg`'s keyring. */
  key: string
  /** The manifest file to sign (its bytes give the digest the signature claims). */
  manifest: string
  /** The manifest's digest: where the signature is stored. */
  digest: string
  /** The docker reference the signature names, e.g. `127.0.0.1:5000/busybox:oci`. */
  reference: string
  /** The repository path without the host, e.g. `busybox`. */
  repository: string
  /** The lookaside directory a registries.d `lookaside: file://…` names. */
  lookaside: string
}

/**
 * A simple signing signature made by `skopeo standalone-sign` (with gpg), stored where a file
 * lookaside serves it: `<lookaside>/<repository>@<alg>=<hex>/signature-1`. Returns its path.
 */
export async function signIntoLookaside(options: LookasideSignatureOptions): Promise<string> {
  const [alg, hex] = options.digest.split(':')
  const dir = join(options.lookaside, `${options.repository}@${alg}=${hex}`)
  await mkdir(dir, { recursive: true })
  const out = join(dir, 'signature-1')
  await run('skopeo', ['standalone-sign', options.manifest, options.reference, options.key, '-o', out], {
    env: options.gpg.env,
  })
  return out
}
