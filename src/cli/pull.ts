import { homedir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseImageOptionsDocument } from '../config/image-options-document.js'
import { resolveImageOptions } from '../config/resolve-image-options.js'
import { OcipullError } from '../errors.js'
import { parseImageName } from '../image-name.js'
import { kbsSettingsFromInitData } from '../initdata/kbs-settings.js'
import { parseInitData } from '../initdata/parse-initdata.js'
import { openImageSource } from '../open-image-source.js'
import { parsePlatform } from '../platform.js'
import { loadPolicy, parsePolicy } from '../policy/parse-policy.js'
import { containersPolicyVerifier } from '../policy/policy-verifier.js'
import { parseRegistriesD } from '../policy/registries-d.js'
import { pullImage } from '../pull-image.js'
import type { CommandIo } from './inspect.js'
import { type CommandKeys, keyFlags, keyFlagsHelp, keysFromFlags } from './key-options.js'
import { progressPrinter } from './progress-display.js'
import {
  type RegistryFlagValues,
  readConfigFile,
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
  --config FILE        (see registry options) also gives work_dir,
                       max_concurrent_layer_downloads_per_image, image_security_policy(_uri) and
                       sigstore_config(_uri) when the flags above are not given; an Init-Data
                       file also configures the KBS for kbs:/// URIs and layer keys

${keyFlagsHelp}

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
      ...keyFlags,
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
  const onWarning = (m: string) => io.stderr.write(`ocipull: warning: ${m}\n`)
  const name = parseImageName(positionals[0] as string)
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform)
  // --config: image-rs/CDH image options. Init-Data also configures the KBS, unless --kbs or
  // --initdata say otherwise.
  const document =
    values.config === undefined
      ? undefined
      : parseImageOptionsDocument(readConfigFile(values.config), { what: values.config, onWarning })
  const initdata =
    values.initdata ??
    (document?.format === 'init-data' && values.kbs === undefined && initDataNamesKbs(values.config as string)
      ? values.config
      : undefined)
  const bundle = values.bundle
  const snapshotterName: 'dir' | 'overlay' = snapshotter
  const keys = await keysFromFlags({ ...values, ...(initdata ? { initdata } : {}) }, io)
  try {
    await pullWithKeys(keys)
  } finally {
    await keys.close()
  }

  async function pullWithKeys(keys: CommandKeys): Promise<void> {
    const settings =
      document === undefined
        ? undefined
        : await resolveImageOptions(document.options, {
            env: io.env,
            what: values.config as string,
            onWarning,
            signal: io.signal,
            ...(keys.keySource ? { keySource: keys.keySource } : {}),
          })
    const concurrency =
      values.concurrency === undefined
        ? (settings?.maxConcurrentLayerDownloads ?? 3)
        : Number(values.concurrency)
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
      throw new OcipullError('ERR_OPTIONS_INVALID', '--concurrency must be an integer from 1 to 64')
    }
    const sourceOptions = registryOptions(values as RegistryFlagValues, name, io.env, {
      input: positionals[0] as string,
      onWarning,
      ...(keys.keySource ? { keySource: keys.keySource } : {}),
      ...(settings ? { imageSettings: settings.source } : {}),
    })
    const keySourceOption = keys.keySource ? { keySource: keys.keySource } : {}
    const policyDocument =
      values.policy !== undefined
        ? await loadPolicy(values.policy, { signal: io.signal, ...keySourceOption })
        : settings?.policy === undefined
          ? undefined
          : parsePolicy(settings.policy.bytes, { origin: settings.policy.from })
    const registriesD =
      values['registries.d'] === undefined && settings?.sigstoreConfig !== undefined
        ? parseRegistriesD([
            {
              name: settings.sigstoreConfig.from,
              text: Buffer.from(settings.sigstoreConfig.bytes).toString('utf8'),
            },
          ])
        : await registriesDFor(values['registries.d'], io)
    const policy =
      policyDocument === undefined
        ? undefined
        : containersPolicyVerifier({
            policy: policyDocument,
            reference: name,
            registriesD,
            ...keySourceOption,
            acceptIndexSignatures: values['accept-index-signatures'] === true,
          })
    // The policy reads sigstore attachments through the source's own client, from the location
    // (mirror or origin) that served the image.
    const source = openImageSource(name, sourceOptions)
    const progress = progressPrinter(io, values.json === true)
    try {
      const result = await pullImage(source, {
        bundle,
        workDir: values['work-dir'] ?? settings?.workDir ?? defaultWorkDir(io.env),
        snapshotter: snapshotterName,
        concurrency,
        signal: io.signal,
        ...(policy ? { policy } : {}),
        ...(keys.decryptor ? { decryptor: keys.decryptor } : {}),
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
    }
  }
}

/** Where the layer store lives when --work-dir is not given. */
export function defaultWorkDir(env: NodeJS.ProcessEnv): string {
  if (process.getuid?.() === 0) return '/var/lib/ocipull'
  const data = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share')
  return join(data, 'ocipull')
}

/** True when the Init-Data file names a KBS (aa.toml / cdh.toml) or offline keys. */
function initDataNamesKbs(path: string): boolean {
  const settings = kbsSettingsFromInitData(parseInitData(readConfigFile(path), path))
  return settings.url !== undefined || settings.kbc === 'offline_fs_kbc'
}
