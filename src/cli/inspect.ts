import { parseArgs } from 'node:util'
import { OcipullError } from '../errors.js'
import { formatImageName, parseImageName } from '../image-name.js'
import { openImageSource } from '../open-image-source.js'
import { formatPlatform, parsePlatform, platformOf } from '../platform.js'
import { type ResolvedImage, resolveImage } from '../resolve-image.js'
import {
  type RegistryFlagValues,
  registryFlags,
  registryFlagsHelp,
  registryOptions,
} from './registry-options.js'

export const inspectHelp = `Usage: ocipull inspect REF [--platform os/arch[/variant]] [--raw] [--json]

Prints the manifest chosen for the platform, a summary of its config and, for an index, the
platforms it offers. Fetches manifests and the config blob only, never layers.

REF: docker://NAME[:TAG|@DIGEST] (the default transport), oci:DIR[:TAG|@DIGEST],
     oci-archive:FILE[:TAG|@DIGEST], docker-archive:FILE[:NAME:TAG]

Options:
  --platform P   os/arch[/variant] to pick from an index (default: this host)
  --raw          print the manifest bytes the reference names, unchanged
  --json         print one JSON object

${registryFlagsHelp}`

export interface CommandIo {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  env: NodeJS.ProcessEnv
  signal: AbortSignal
}

export async function inspectCommand(args: string[], io: CommandIo): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...registryFlags,
      platform: { type: 'string' },
      raw: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  })
  if (positionals.length !== 1) throw new OcipullError('ERR_OPTIONS_INVALID', 'inspect takes exactly one REF')
  const name = parseImageName(positionals[0] as string)
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform)
  const source = openImageSource(
    name,
    registryOptions(values as RegistryFlagValues, name, io.env, {
      input: positionals[0] as string,
      onWarning: (m) => io.stderr.write(`ocipull: warning: ${m}\n`),
    }),
  )
  try {
    if (values.raw) {
      const top = await source.manifest({ signal: io.signal })
      io.stdout.write(Buffer.from(top.bytes))
      return
    }
    const image = await resolveImage(source, { signal: io.signal, ...(platform ? { platform } : {}) })
    const summary = inspectSummary(image)
    io.stdout.write(
      values.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary, formatImageName(name)),
    )
  } finally {
    await source.close()
  }
}

/** The JSON form of `ocipull inspect --json`. */
export function inspectSummary(image: ResolvedImage) {
  const c = image.config
  return {
    name: image.source,
    digest: image.digest,
    mediaType: image.mediaType,
    platform: formatPlatform(platformOf(c)),
    config: {
      digest: image.manifest.config.digest,
      mediaType: image.manifest.config.mediaType,
      size: image.manifest.config.size,
      os: c.os,
      architecture: c.architecture,
      ...(c.variant === undefined ? {} : { variant: c.variant }),
      ...(c.created === undefined ? {} : { created: c.created }),
      ...(c.author === undefined ? {} : { author: c.author }),
      user: c.config?.User ?? '',
      entrypoint: c.config?.Entrypoint ?? [],
      cmd: c.config?.Cmd ?? [],
      env: c.config?.Env ?? [],
      workingDir: c.config?.WorkingDir ?? '',
      labels: c.config?.Labels ?? {},
    },
    layers: image.manifest.layers.map((l, i) => ({
      digest: l.digest,
      size: l.size,
      mediaType: l.mediaType,
      diffId: c.rootfs.diff_ids[i],
    })),
    ...(image.index === undefined
      ? {}
      : {
          index: { digest: image.index.digest, mediaType: image.index.mediaType },
          platforms: image.index.index.manifests.flatMap((d) =>
            d.platform ? [{ ...d.platform, digest: d.digest, mediaType: d.mediaType }] : [],
          ),
        }),
  }
}

function formatSummary(s: ReturnType<typeof inspectSummary>, name: string): string {
  const lines = [
    `Name:         ${name}`,
    `Digest:       ${s.digest}`,
    `MediaType:    ${s.mediaType}`,
    `Platform:     ${s.platform}`,
    `Config:       ${s.config.digest}`,
  ]
  if (s.config.created) lines.push(`Created:      ${s.config.created}`)
  if (s.config.user) lines.push(`User:         ${s.config.user}`)
  if (s.config.entrypoint.length) lines.push(`Entrypoint:   ${JSON.stringify(s.config.entrypoint)}`)
  if (s.config.cmd.length) lines.push(`Cmd:          ${JSON.stringify(s.config.cmd)}`)
  if (s.config.workingDir) lines.push(`WorkingDir:   ${s.config.workingDir}`)
  for (const e of s.config.env) lines.push(`Env:          ${e}`)
  lines.push(`Layers:       ${s.layers.length}`)
  for (const l of s.layers) lines.push(`  ${l.digest}  ${String(l.size).padStart(10)}  ${l.mediaType}`)
  if (s.index) {
    lines.push(`Index:        ${s.index.digest} (${s.index.mediaType})`)
    for (const p of s.platforms ?? []) {
      const mark = p.digest === s.digest ? '*' : ' '
      lines.push(` ${mark} ${formatPlatform(platformOf(p)).padEnd(16)} ${p.digest}`)
    }
  }
  return `${lines.join('\n')}\n`
}
