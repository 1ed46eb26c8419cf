import { parseArgs } from 'node:util'
import { shortDigest } from '../digest.js'
import { OcipullError } from '../errors.js'
import type { PullEvent } from '../events.js'
import { parseImageName } from '../image-name.js'
import { openImageSource } from '../open-image-source.js'
import { parsePlatform } from '../platform.js'
import { unpackImage } from '../unpack-image.js'
import type { CommandIo } from './inspect.js'
import {
  type RegistryFlagValues,
  registryFlags,
  registryFlagsHelp,
  registryOptions,
} from './registry-options.js'

export const unpackHelp = `Usage: ocipull unpack REF --bundle DIR [--platform os/arch[/variant]] [--json]

Unpacks the image into an OCI runtime bundle (DIR/rootfs and DIR/config.json), like
\`umoci unpack\`: every layer is streamed once, checked (digest, size, media type, diff_id) and
applied in order in a staging directory that becomes DIR/rootfs only when all layers passed.
Running it again replaces the rootfs and config.json.

REF: docker://NAME[:TAG|@DIGEST] (the default transport), oci:DIR[:TAG|@DIGEST],
     oci-archive:FILE[:TAG|@DIGEST], docker-archive:FILE[:NAME:TAG]

Options:
  --bundle DIR   the bundle directory (created if missing)
  --platform P   os/arch[/variant] to pick from an index (default: this host)
  --json         print the events as JSON lines (resolved, layer-start, layer-progress,
                 layer-done, warning, committed) instead of progress on stderr

${registryFlagsHelp}`

export async function unpackCommand(args: string[], io: CommandIo): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...registryFlags,
      bundle: { type: 'string' },
      platform: { type: 'string' },
      json: { type: 'boolean' },
    },
  })
  if (positionals.length !== 1) throw new OcipullError('ERR_OPTIONS_INVALID', 'unpack takes exactly one REF')
  if (!values.bundle) throw new OcipullError('ERR_OPTIONS_INVALID', 'unpack needs --bundle DIR')
  const name = parseImageName(positionals[0] as string)
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform)
  const source = openImageSource(name, registryOptions(values as RegistryFlagValues, name, io.env))
  const progress = progressPrinter(io, values.json === true)
  try {
    const result = await unpackImage(source, {
      bundle: values.bundle,
      signal: io.signal,
      ...(platform ? { platform } : {}),
      onEvent: progress,
    })
    if (!values.json)
      io.stdout.write(`unpacked ${result.image.source} (${result.image.digest}) into ${result.bundle}\n`)
  } finally {
    await source.close()
  }
}

const MB = 1e6

/**
 * Shows events: JSON lines on stdout with --json; otherwise one line per layer on stderr,
 * redrawn in place while it downloads when stderr is a terminal.
 */
function progressPrinter(io: CommandIo, json: boolean): (event: PullEvent) => void {
  const tty = (io.stderr as { isTTY?: boolean }).isTTY === true
  let layers = 0
  return (event) => {
    if (json) {
      io.stdout.write(`${JSON.stringify(event)}\n`)
      return
    }
    const layer = (e: { index: number; digest: string }) =>
      `layer ${e.index + 1}/${layers} ${shortDigest(e.digest)}`
    switch (event.type) {
      case 'resolved':
        layers = event.layers
        io.stderr.write(
          `${event.source}: ${event.digest} (${event.platform}), ${layers} layers, ${(event.bytes / MB).toFixed(1)} MB\n`,
        )
        break
      case 'layer-progress':
        if (tty)
          io.stderr.write(
            `\r${layer(event)}: ${(event.bytesIn / MB).toFixed(1)} MB in, ${(event.bytesOut / MB).toFixed(1)} MB out`,
          )
        break
      case 'layer-done':
        io.stderr.write(
          `${tty ? '\r\x1b[K' : ''}${layer(event)}: ${(event.bytesIn / MB).toFixed(1)} MB → ${(event.bytesOut / MB).toFixed(1)} MB, ${event.entries} entries, ${(event.ms / 1000).toFixed(2)} s\n`,
        )
        break
      case 'warning':
        io.stderr.write(`${tty ? '\r\x1b[K' : ''}ocipull: warning: ${event.message}\n`)
        break
      default:
    }
  }
}
