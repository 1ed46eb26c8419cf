import type { Readable } from 'node:stream'
import { isOcipullError, OcipullError } from '../errors.js'
import { MediaType } from '../media-types.js'
import type { Reference } from '../reference.js'
import type { RegistryClient } from '../registry/registry-client.js'
import type { SignatureBlob } from './signature-blob.js'

export const COSIGN_SIGNATURE_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json'
/** Attachment payloads are capped at this size; more attachments than MAX_ATTACHMENTS is an error. */
export const MAX_ATTACHMENT_SIZE = 4 * 1024 * 1024
export const MAX_ATTACHMENTS = 128

export interface SigstoreAttachments {
  /** The `.sig` manifest that was read, for the verdict. */
  source?: string
  /** Signature layers (media type COSIGN_SIGNATURE_MEDIA_TYPE), payload fetched and verified. */
  signatures: Extract<SignatureBlob, { kind: 'sigstore' }>[]
  /** Layers of other media types (attestations, …): counted, never fetched. */
  ignored: number
}

/**
 * Reads the cosign-style attachments of `digest` from `repository` (the registry and repository the
 * image was actually pulled from): the manifest tagged `<algo>-<hex>.sig`, which must be an OCI
 * image manifest, and the payload blob of each signature layer (digest- and size-checked by the
 * client). No such tag means no signatures. Costs one manifest GET plus one blob GET per
 * signature layer.
 */
export async function readSigstoreAttachments(options: {
  client: RegistryClient
  repository: Reference
  digest: string
  signal?: AbortSignal
}): Promise<SigstoreAttachments> {
  const colon = options.digest.indexOf(':')
  const tag = `${options.digest.slice(0, colon)}-${options.digest.slice(colon + 1)}.sig`
  const ref: Reference = {
    registry: options.repository.registry,
    repository: options.repository.repository,
    tag,
  }
  const what = `docker://${ref.registry}/${ref.repository}:${tag}`
  const signal = options.signal === undefined ? {} : { signal: options.signal }
  let top: Awaited<ReturnType<RegistryClient['getManifest']>>
  try {
    top = await options.client.getManifest(ref, signal)
  } catch (err) {
    if (isOcipullError(err, 'ERR_NOT_FOUND')) return { signatures: [], ignored: 0 }
    throw err
  }
  if (top.kind !== 'manifest' || top.mediaType !== MediaType.OciManifest) {
    throw new OcipullError(
      'ERR_SIGNATURE_INVALID',
      `${what}: sigstore attachments must be an OCI image manifest, got ${top.mediaType}`,
    )
  }
  const layers = top.manifest.layers
  if (layers.length > MAX_ATTACHMENTS) {
    throw new OcipullError('ERR_SIGNATURE_INVALID', `${what}: more than ${MAX_ATTACHMENTS} attachments`)
  }
  const out: SigstoreAttachments = { source: `${what}@${top.digest}`, signatures: [], ignored: 0 }
  for (const [i, layer] of layers.entries()) {
    if (layer.mediaType !== COSIGN_SIGNATURE_MEDIA_TYPE) {
      out.ignored++
      continue
    }
    if (layer.size > MAX_ATTACHMENT_SIZE) {
      throw new OcipullError(
        'ERR_SIGNATURE_INVALID',
        `${what}: layers[${i}]: ${layer.size} bytes exceeds the limit of ${MAX_ATTACHMENT_SIZE}`,
      )
    }
    const payload = await readAll(await options.client.getBlob(ref, layer, signal))
    out.signatures.push({
      kind: 'sigstore',
      mimeType: layer.mediaType,
      payload,
      annotations: { ...(layer.annotations ?? {}) },
    })
  }
  return out
}

async function readAll(stream: Readable): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return new Uint8Array(Buffer.concat(chunks))
}
