import { parseArgs } from 'node:util'
import { OcipullError } from '../errors.js'
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
  --json         print one JSON line per event (layer applied, warning, done)

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
  const emit = (event: Record<string, unknown>) => {
    if (values.json) io.stdout.write(`${JSON.stringify(event)}\n`)
  }
  try {
    const started = performance.now()
    const result = await unpackImage(source, {
      bundle: values.bundle,
      signal: io.signal,
      ...(platform ? { platform } : {}),
      onWarning: (w) => {
        emit({ event: 'warning', ...w })
        if (!values.json) io.stderr.write(`ocipull: warning: ${w.path}: ${w.message}\n`)
      },
      onLayer: ({ index, digest, stats }) => emit({ event: 'layer', index, digest, ...stats }),
    })
    const done = {
      event: 'done',
      digest: result.image.digest,
      bundle: result.bundle,
      layers: result.image.manifest.layers.length,
      seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
    }
    if (values.json) emit(done)
    else io.stdout.write(`unpacked ${result.image.source} (${result.image.digest}) into ${result.bundle}\n`)
  } finally {
    await source.close()
  }
}
