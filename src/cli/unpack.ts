import { parseArgs } from 'node:util'
import { OcipullError } from '../errors.js'
import { parseImageName } from '../image-name.js'
import { openImageSource } from '../open-image-source.js'
import { parsePlatform } from '../platform.js'
import { unpackImage } from '../unpack-image.js'
import type { CommandIo } from './inspect.js'
import { keyFlags, keyFlagsHelp, keysFromFlags } from './key-options.js'
import { progressPrinter } from './progress-display.js'
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

${keyFlagsHelp}

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
      ...keyFlags,
    },
  })
  if (positionals.length !== 1) throw new OcipullError('ERR_OPTIONS_INVALID', 'unpack takes exactly one REF')
  if (!values.bundle) throw new OcipullError('ERR_OPTIONS_INVALID', 'unpack needs --bundle DIR')
  const name = parseImageName(positionals[0] as string)
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform)
  const keys = await keysFromFlags(values, io)
  const source = openImageSource(
    name,
    registryOptions(values as RegistryFlagValues, name, io.env, {
      input: positionals[0] as string,
      onWarning: (m) => io.stderr.write(`ocipull: warning: ${m}\n`),
    }),
  )
  const progress = progressPrinter(io, values.json === true)
  try {
    const result = await unpackImage(source, {
      bundle: values.bundle,
      signal: io.signal,
      ...(platform ? { platform } : {}),
      ...(keys.decryptor ? { decryptor: keys.decryptor } : {}),
      onEvent: progress.onEvent,
    })
    progress.close()
    if (!values.json)
      io.stdout.write(`unpacked ${result.image.source} (${result.image.digest}) into ${result.bundle}\n`)
  } finally {
    progress.close()
    await source.close()
    await keys.close()
  }
}
