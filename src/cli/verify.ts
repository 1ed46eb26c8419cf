import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { OcipullError } from '../errors.js'
import { parseImageName } from '../image-name.js'
import { openImageSource } from '../open-image-source.js'
import { parsePlatform } from '../platform.js'
import { evaluatePolicy } from '../policy/evaluate-policy.js'
import { loadPolicy } from '../policy/parse-policy.js'
import { assertPolicyAccepted, formatVerdict } from '../policy/policy-verdict.js'
import { builtinLookaside, loadRegistriesD, type RegistriesD } from '../policy/registries-d.js'
import { isRegistrySource } from '../registry/registry-source.js'
import { resolveImage } from '../resolve-image.js'
import type { CommandIo } from './inspect.js'
import {
  type RegistryFlagValues,
  registryFlags,
  registryFlagsHelp,
  registryOptions,
} from './registry-options.js'

export const verifyHelp = `Usage: ocipull verify REF --policy FILE [--registries.d DIR] [--platform os/arch[/variant]] [--json]

Evaluates the signature policy (containers-policy.json) for REF, as a pull would before fetching
any layer, and prints accepted or rejected with the reason for every requirement of the scope that
applies. Fetches manifests, the config and signatures only, never layers.
Exit code 0 when the policy accepts the image, 7 when it rejects it.

REF: docker://NAME[:TAG|@DIGEST] (the default transport), oci:DIR[:TAG|@DIGEST],
     oci-archive:FILE[:TAG|@DIGEST], docker-archive:FILE[:NAME:TAG]

Options:
  --policy FILE           the policy: a path, file:// URI (required)
  --registries.d DIR      lookaside and sigstore-attachment settings (default:
                          ~/.config/containers/registries.d, else /etc/containers/registries.d)
  --platform P            os/arch[/variant] to pick from an index (default: this host)
  --accept-index-signatures
                          also accept signatures over the index digest (image-rs behaviour)
  --json                  print the verdict as JSON

${registryFlagsHelp}`

export async function verifyCommand(args: string[], io: CommandIo): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...registryFlags,
      policy: { type: 'string' },
      'registries.d': { type: 'string' },
      platform: { type: 'string' },
      'accept-index-signatures': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  })
  if (positionals.length !== 1) throw new OcipullError('ERR_OPTIONS_INVALID', 'verify takes exactly one REF')
  if (values.policy === undefined) throw new OcipullError('ERR_OPTIONS_INVALID', 'verify needs --policy FILE')
  const name = parseImageName(positionals[0] as string)
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform)
  const policy = await loadPolicy(values.policy, { signal: io.signal })
  const registriesD = await registriesDFor(values['registries.d'], io)
  const sourceOptions = registryOptions(values as RegistryFlagValues, name, io.env, {
    input: positionals[0] as string,
    onWarning: (m) => io.stderr.write(`ocipull: warning: ${m}\n`),
  })
  const source = openImageSource(name, sourceOptions)
  try {
    const image = await resolveImage(source, { signal: io.signal, ...(platform ? { platform } : {}) })
    const verdict = await evaluatePolicy({
      policy,
      reference: name,
      manifestDigest: image.digest,
      manifestBytes: image.manifestBytes,
      ...(image.index === undefined ? {} : { indexDigest: image.index.digest }),
      acceptIndexSignatures: values['accept-index-signatures'] === true,
      source,
      ...(isRegistrySource(source) && source.client !== undefined
        ? {
            registry: {
              client: source.client,
              ...(source.location ? { repository: source.location.location } : {}),
            },
          }
        : {}),
      registriesD,
      signal: io.signal,
    })
    io.stdout.write(values.json ? `${JSON.stringify(verdict, null, 2)}\n` : `${formatVerdict(verdict)}\n`)
    assertPolicyAccepted(verdict)
  } finally {
    await source.close()
  }
}

/** The --registries.d directory, else the user's or the system's, else only the built-in lookaside. */
export async function registriesDFor(dir: string | undefined, io: CommandIo): Promise<RegistriesD> {
  if (dir !== undefined) return loadRegistriesD(dir, { signal: io.signal })
  for (const candidate of [
    join(io.env['HOME'] ?? homedir(), '.config/containers/registries.d'),
    '/etc/containers/registries.d',
  ]) {
    if (existsSync(candidate)) return loadRegistriesD(candidate, { signal: io.signal })
  }
  return { docker: new Map(), defaultLookaside: builtinLookaside() }
}
