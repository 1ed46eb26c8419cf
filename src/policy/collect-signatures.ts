import type { Reference } from '../reference.js'
import type { Transport } from '../registry/http-client.js'
import type { RegistryClient } from '../registry/registry-client.js'
import { readLookasideSignatures } from './lookaside.js'
import type { PolicyImage } from './policy-scopes.js'
import { lookasideFor, type RegistriesD, useSigstoreAttachmentsFor } from './registries-d.js'
import { parseSignatureBlob, type SignatureBlob } from './signature-blob.js'
import { readSigstoreAttachments } from './sigstore-attachments.js'

export interface CollectedSignature {
  blob: SignatureBlob
  /** Where it was read: a lookaside URL or an attachment manifest and layer index. */
  origin: string
}

export interface CollectedSignatures {
  signatures: CollectedSignature[]
  /**
   * Stored signatures that could not be parsed. containers/image fails the whole evaluation on
   * one of these, so every signature requirement is rejected when this is not empty.
   */
  problems: string[]
  /** Where signatures were looked for (lookaside bases, attachment tags), for the verdict. */
  sources: string[]
  /** Non-signature attachments that were skipped. */
  ignoredAttachments: number
}

export interface CollectSignaturesOptions {
  image: PolicyImage
  /** Manifest digests whose signatures count (the instance, and the index when allowed). */
  digests: readonly string[]
  registriesD?: RegistriesD
  /** The registry client and the repository the image was actually pulled from. */
  registry?: { client: RegistryClient; repository: Reference }
  transport?: Transport
  signal?: AbortSignal
  onWarning?: (message: string) => void
}

/**
 * Gathers every signature of the image: lookaside signatures (docker transport, base URL from
 * registries.d for the user's reference) and, where registries.d enables
 * `use-sigstore-attachments`, the cosign attachments in the repository the image came from.
 * Network and server failures throw; unparseable signatures are reported in `problems`.
 */
export async function collectSignatures(options: CollectSignaturesOptions): Promise<CollectedSignatures> {
  const out: CollectedSignatures = { signatures: [], problems: [], sources: [], ignoredAttachments: 0 }
  const docker = options.image.docker
  if (options.image.transport !== 'docker' || docker === undefined) return out
  const config = options.registriesD
  const base = config === undefined ? undefined : lookasideFor(config, options.image)
  const repositoryPath = docker.name.slice(docker.name.indexOf('/') + 1)
  for (const digest of options.digests) {
    if (base !== undefined) {
      out.sources.push(`lookaside ${base}`)
      const found = await readLookasideSignatures({
        base,
        repository: repositoryPath,
        digest,
        ...(options.transport === undefined ? {} : { transport: options.transport }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
      })
      for (const s of found) {
        try {
          out.signatures.push({ blob: parseSignatureBlob(s.bytes, s.url), origin: s.url })
        } catch (err) {
          out.problems.push((err as Error).message)
        }
      }
    }
    if (
      config !== undefined &&
      options.registry !== undefined &&
      useSigstoreAttachmentsFor(config, options.image)
    ) {
      const attachments = await readSigstoreAttachments({
        client: options.registry.client,
        repository: options.registry.repository,
        digest,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      })
      const r = options.registry.repository
      out.sources.push(attachments.source ?? `attachments docker://${r.registry}/${r.repository} (none)`)
      out.ignoredAttachments += attachments.ignored
      attachments.signatures.forEach((blob, i) => {
        out.signatures.push({ blob, origin: `${attachments.source ?? 'attachment'} signature ${i + 1}` })
      })
    }
  }
  return out
}
