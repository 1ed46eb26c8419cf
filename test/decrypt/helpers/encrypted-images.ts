import { createCipheriv, createPrivateKey, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { flattenedDecrypt, generalDecrypt } from 'jose'
import type { Descriptor, ImageManifest } from '../../../src/manifest.js'
import { ociLayoutSource } from '../../../src/sources/oci-layout-source.js'
import { type UnpackImageOptions, unpackImage } from '../../../src/unpack-image.js'
import { blobPath, json, REF_NAME, writeBlob, writeLayoutFiles } from '../../helpers/layout-writer.js'
import { snapshotTree, type TreeEntry } from '../../helpers/tree-snapshot.js'
import { run } from '../../rig/exec.js'

/**
 * Real encryptions for the decryption tests: keys from openssl, images encrypted by skopeo (Go
 * ocicrypt), and layouts rewritten blob by blob for the hostile cases.
 */

export const JWE_ANNOTATION = 'org.opencontainers.image.enc.keys.jwe'
export const AA_ANNOTATION = 'org.opencontainers.image.enc.keys.provider.attestation-agent'
export const PUBOPTS_ANNOTATION = 'org.opencontainers.image.enc.pubopts'

export interface KeyPair {
  /** The private key (PEM). */
  private: string
  /** The public key (PEM), what skopeo encrypts to. */
  public: string
}

/** An RSA 2048 or EC P-256 key pair made by openssl in `dir`. */
export async function makeKeyPair(dir: string, name: string, type: 'rsa' | 'ec'): Promise<KeyPair> {
  const priv = join(dir, `${name}.pem`)
  const pub = join(dir, `${name}.pub.pem`)
  if (type === 'rsa')
    await run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', priv])
  else
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', priv])
  await run('openssl', ['pkey', '-in', priv, '-pubout', '-out', pub])
  return { private: priv, public: pub }
}

/** `skopeo copy --encryption-key jwe:PUB… [--encrypt-layer N…] FROM TO`. */
export async function skopeoEncrypt(
  from: string,
  to: string,
  options: { recipients: string[]; layers?: number[]; extra?: string[] },
): Promise<void> {
  await run('skopeo', [
    '--insecure-policy',
    'copy',
    '--quiet',
    ...options.recipients.flatMap((p) => ['--encryption-key', `jwe:${p}`]),
    ...(options.layers ?? []).flatMap((n) => ['--encrypt-layer', String(n)]),
    ...(options.extra ?? []),
    from,
    to,
  ])
}

export async function skopeoCopy(from: string, to: string, extra: string[] = []): Promise<void> {
  await run('skopeo', ['--insecure-policy', 'copy', '--quiet', ...extra, from, to])
}

/** The manifest of the only image in a layout (tag `latest`). */
export async function readManifest(layout: string): Promise<ImageManifest> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] }
  const digest = index.manifests[0]?.digest as string
  return JSON.parse(await readFile(join(layout, blobPath(digest)), 'utf8')) as ImageManifest
}

export async function readBlobOf(layout: string, descriptor: Descriptor): Promise<Buffer> {
  return readFile(join(layout, blobPath(descriptor.digest)))
}

/** What `rewriteLayers` may change in a layer. */
export interface LayerChange {
  blob?: Buffer
  annotations?: Record<string, string>
  mediaType?: string
}

/**
 * Rewrites the layers of a layout's image in place: `edit` gets each layer's descriptor and blob
 * and returns new ones (or nothing to keep it). The blobs, the manifest and index.json are written
 * anew with correct digests and sizes, so only what `edit` changed inside is wrong.
 */
export async function rewriteLayers(
  layout: string,
  edit: (
    layer: Descriptor,
    blob: Buffer,
    index: number,
  ) => Promise<LayerChange | undefined> | LayerChange | undefined,
): Promise<void> {
  const manifest = await readManifest(layout)
  const layers: Descriptor[] = []
  for (const [i, layer] of manifest.layers.entries()) {
    const blob = await readBlobOf(layout, layer)
    const change = await edit(layer, blob, i)
    if (change === undefined) {
      layers.push(layer)
      continue
    }
    const written = await writeBlob(layout, change.blob ?? blob, change.mediaType ?? layer.mediaType)
    const annotations = change.annotations ?? layer.annotations
    layers.push({ ...written, ...(annotations ? { annotations } : {}) })
  }
  const manifestDescriptor = await writeBlob(layout, json({ ...manifest, layers }), manifest.mediaType)
  await writeLayoutFiles(layout, {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ ...manifestDescriptor, annotations: { [REF_NAME]: 'latest' } }],
  })
}

/** Decrypts a layer's JWE annotation with a private key file: the private options' JSON. */
export async function privateOptionsOf(layer: Descriptor, privateKeyPem: string): Promise<Buffer> {
  const key = createPrivateKey(await readFile(privateKeyPem))
  const value = layer.annotations?.[JWE_ANNOTATION] as string
  const jwe = JSON.parse(Buffer.from(value.split(',')[0] as string, 'base64').toString())
  const result = jwe.recipients ? await generalDecrypt(jwe, key) : await flattenedDecrypt(jwe, key)
  return Buffer.from(result.plaintext)
}

/** CoCo's attestation-agent packet (coco_keyprovider's v1 form): `optsdata` under `kek` with AES-256-GCM. */
export function annotationPacket(optsdata: Buffer, kek: Buffer, kid: string): Buffer {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', kek, iv)
  const wrapped = Buffer.concat([cipher.update(optsdata), cipher.final(), cipher.getAuthTag()])
  return Buffer.from(
    JSON.stringify({
      kid,
      wrapped_data: wrapped.toString('base64'),
      iv: iv.toString('base64'),
      wrap_type: 'A256GCM',
    }),
  )
}

/**
 * Re-wraps every encrypted layer's private options (from skopeo's JWE) into an attestation-agent
 * packet under `kek` for `kid`, as coco_keyprovider would have written it; with `dropJwe` the JWE
 * annotation is removed, so only the packet can unwrap the layer.
 */
export async function rewrapForAttestationAgent(
  layout: string,
  options: { privateKey: string; kek: Buffer; kid: string; dropJwe: boolean },
): Promise<void> {
  await rewriteLayers(layout, async (layer) => {
    if (!layer.mediaType.endsWith('+encrypted')) return undefined
    const optsdata = await privateOptionsOf(layer, options.privateKey)
    const { [JWE_ANNOTATION]: jwe, ...rest } = layer.annotations ?? {}
    const packet = annotationPacket(optsdata, options.kek, options.kid).toString('base64')
    return {
      annotations: {
        ...(options.dropJwe ? rest : { ...rest, [JWE_ANNOTATION]: jwe as string }),
        [AA_ANNOTATION]: packet,
      },
    }
  })
}

/** Unpacks `oci:LAYOUT:latest` into `bundle` and returns the rootfs snapshot. */
export async function unpackSnapshot(
  layout: string,
  bundle: string,
  options: Omit<UnpackImageOptions, 'bundle'> = {},
): Promise<Record<string, TreeEntry>> {
  const source = ociLayoutSource({ path: layout, tag: 'latest' })
  try {
    const result = await unpackImage(source, { ...options, bundle })
    return snapshotTree(result.rootfs)
  } finally {
    await source.close()
  }
}

export async function writeText(path: string, text: string): Promise<string> {
  await writeFile(path, text)
  return path
}
