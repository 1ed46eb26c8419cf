import { homedir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { OcipullError } from '../errors.js'
import { parseImageName } from '../image-name.js'
import { openImageSource } from '../open-image-source.js'
import { parsePlatform } from '../platform.js'
import { loadPolicy } from '../policy/parse-policy.js'
import { containersPolicyVerifier } from '../policy/policy-verifier.js'
import { pullImage } from '../pull-image.js'
import { RegistryClient } from '../registry/registry-client.js'
import type { CommandIo } from './inspect.js'
import { createProgressDisplay, type ProgressDisplay } from './progress-display.js'
import {
  type RegistryFlagValues,
  registryFlags,
  registryFlagsHelp,
  registryOptions,
} from './registry-options.js'
import { registriesDFor } from './verify.js'

export const pullHelp = `Usage: ocipull pull REF --bundle DIR [--work-dir D] [--snapshotter dir|overlay]
                    [--platform os/arch[/variant]] [--concurrency N] [--json]

Pulls the image into the layer store and makes an OCI runtime bundle of it (DIR/rootfs and
DIR/config.json) that runc or crun can run. Layers missing from the store are downloaded up to
N at a time, each streamed once through its checks (digest, size, media type, diff_id) into a
staging directory, and committed in order only when they passed; layers already in the store are
not downloaded again. Exit code 0 only when the bundle is complete.

REF: docker://NAME[:TAG|@DIGEST] (the default transport), oci:DIR[:TAG|@DIGEST],
     oci-archive:FILE[:TAG|@DIGEST], docker-archive:FILE[:NAME:TAG]

Options:
  --bundle DIR         the bundle directory (created if missing; a second pull replaces it)
  --work-dir D         the layer store (default: /var/lib/ocipull as root, else
                       $XDG_DATA_HOME/ocipull or ~/.local/share/ocipull)
  --snapshotter S      dir (default: a flattened copy) or overlay (an overlayfs mount; root)
  --platform P         os/arch[/variant] to pick from an index (default: this host)
  --concurrency N      layers downloaded at once (default 3)
  --json               print the events as JSON lines instead of progress on stderr
  --policy FILE        a signature policy (containers-policy.json) checked before any layer
                       is fetched (also for layers already in the store); exit 7 on reject
  --registries.d DIR   lookaside and sigstore-attachment settings for --policy (default:
                       ~/.config/containers/registries.d, else /etc/containers/registries.d)
  --accept-index-signatures
                       with --policy, also accept signatures over the index digest

${registryFlagsHelp}`

export async function pullCommand(args: string[], io: CommandIo): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...registryFlags,
      bundle: { type: 'string' },
      'work-dir': { type: 'string' },
      snapshotter: { type: 'string' },
      platform: { type: 'string' },
      concurrency: { type: 'string' },
      json: { type: 'boolean' },
      policy: { type: 'string' },
      'registries.d': { type: 'string' },
      'accept-index-signatures': { type: 'boolean' },
    },
  })
  if (positionals.length !== 1) throw new OcipullError('ERR_OPTIONS_INVALID', 'pull takes exactly one REF')
  if (!values.bundle) throw new OcipullError('ERR_OPTIONS_INVALID', 'pull needs --bundle DIR')
  const snapshotter = values.snapshotter ?? 'dir'
  if (snapshotter !== 'dir' && snapshotter !== 'overlay') {
    throw new OcipullError(
      'ERR_OPTIONS_INVALID',
      `--snapshotter must be dir or overlay, not ${JSON.stringify(snapshotter)}`,
    )
  }
  const concurrency = values.concurrency === undefined ? 3 : Number(values.concurrency)
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new OcipullError('ERR_OPTIONS_INVALID', '--concurrency must be an integer from 1 to 64')
  }
  const name = parseImageName(positionals[0] as string)
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform)
  const sourceOptions = registryOptions(values as RegistryFlagValues, name, io.env, {
    input: positionals[0] as string,
    onWarning: (m) => io.stderr.write(`ocipull: warning: ${m}\n`),
  })
  // One client for the image and its signatures (sigstore attachments live in the same registry).
  const client = name.transport === 'docker' ? new RegistryClient(sourceOptions) : undefined
  const policy =
    values.policy === undefined
      ? undefined
      : containersPolicyVerifier({
          policy: await loadPolicy(values.policy, { signal: io.signal }),
          reference: name,
          registriesD: await registriesDFor(values['registries.d'], io),
          ...(client === undefined ? {} : { registry: { client } }),
          acceptIndexSignatures: values['accept-index-signatures'] === true,
        })
  const source = openImageSource(name, client === undefined ? sourceOptions : { ...sourceOptions, client })
  const progress: ProgressDisplay = values.json
    ? { onEvent: (event) => io.stdout.write(`${JSON.stringify(event)}\n`), close: () => {} }
    : createProgressDisplay({ stream: io.stderr })
  try {
    const result = await pullImage(source, {
      bundle: values.bundle,
      workDir: values['work-dir'] ?? defaultWorkDir(io.env),
      snapshotter,
      concurrency,
      signal: io.signal,
      ...(policy ? { policy } : {}),
      ...(platform ? { platform } : {}),
      onEvent: progress.onEvent,
    })
    progress.close()
    if (!values.json) {
      io.stdout.write(`pulled ${result.image.source} (${result.image.digest}) into ${result.bundle}\n`)
    }
  } finally {
    progress.close()
    await source.close()
    await client?.close()
  }
}

/** Where the layer store lives when --work-dir is not given. */
export function defaultWorkDir(env: NodeJS.ProcessEnv): string {
  if (process.getuid?.() === 0) return '/var/lib/ocipull'
  const data = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share')
  return join(data, 'ocipull')
}
