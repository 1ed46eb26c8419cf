import { parseArgs } from 'node:util'
import { checkDigest } from '../digest.js'
import { OcipullError } from '../errors.js'
import { LayerStore } from '../store/layer-store.js'
import type { CommandIo } from './inspect.js'
import { defaultWorkDir } from './pull.js'

export const storeHelp = `Usage: ocipull store list [--work-dir D] [--json]
       ocipull store rm DIGEST... [--work-dir D]
       ocipull store gc [--work-dir D] [--json]

Manages the layer store that \`ocipull pull\` fills.
  list   the images pulled into the store: manifest digest, platform, layers, source
  rm     forgets images by manifest digest (their layers stay until gc)
  gc     removes the layers and configs that no image uses

Options:
  --work-dir D   the layer store (default: /var/lib/ocipull as root, else
                 $XDG_DATA_HOME/ocipull or ~/.local/share/ocipull)
  --json         print JSON

A bundle made with --snapshotter overlay mounts layers of the store: unmount it before removing
its image and running gc.`

export async function storeCommand(args: string[], io: CommandIo): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'work-dir': { type: 'string' }, json: { type: 'boolean' } },
  })
  const [sub, ...rest] = positionals
  const store = await LayerStore.open(values['work-dir'] ?? defaultWorkDir(io.env))
  switch (sub) {
    case 'list': {
      if (rest.length > 0) throw new OcipullError('ERR_OPTIONS_INVALID', 'store list takes no arguments')
      const images = await store.listImages()
      if (values.json) {
        io.stdout.write(`${JSON.stringify(images, null, 2)}\n`)
        return
      }
      for (const image of images) {
        const bytes = image.layers.reduce((n, l) => n + l.size, 0)
        io.stdout.write(
          `${image.manifestDigest}  ${image.platform}  ${image.layers.length} layers  ${bytes} bytes  ${image.source}\n`,
        )
      }
      return
    }
    case 'rm': {
      if (rest.length === 0) throw new OcipullError('ERR_OPTIONS_INVALID', 'store rm needs a manifest digest')
      for (const digest of rest) await store.removeImage(checkDigest(digest, 'store rm'))
      return
    }
    case 'gc': {
      if (rest.length > 0) throw new OcipullError('ERR_OPTIONS_INVALID', 'store gc takes no arguments')
      const removed = await store.gc()
      if (values.json) io.stdout.write(`${JSON.stringify(removed)}\n`)
      else io.stdout.write(`removed ${removed.layers.length} layers and ${removed.blobs.length} configs\n`)
      return
    }
    default:
      throw new OcipullError(
        'ERR_OPTIONS_INVALID',
        `store: want list, rm or gc, not ${JSON.stringify(sub ?? '')}`,
      )
  }
}
