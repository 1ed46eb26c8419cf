import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { OcipullError } from '../errors.js'
import { decodeInitDataAnnotation } from '../initdata/kata-annotation.js'
import { kbsSettingsFromInitData } from '../initdata/kbs-settings.js'
import { MAX_INITDATA_BYTES, parseInitData } from '../initdata/parse-initdata.js'
import type { KbsClientOptions } from '../kbs/kbs-client.js'
import { type ResourcePolicy, startDevKbs } from '../kbs/server/dev-kbs.js'
import { type TeeKeyAlgorithm, TeeKeyAlgorithms } from '../kbs/tee-key.js'
import { type OpenKeySourceOptions, openKeySource } from '../keys/open-key-source.js'
import type { CommandIo } from './inspect.js'

export const kbsHelp = `Usage: ocipull kbs serve --repository DIR [--port N] [--host ADDR] [options]
       ocipull kbs get-resource URI (--kbs URL [--kbs-cert PEM] | --initdata FILE)

serve         run the development KBS (Trustee RCAR 0.4.0, sample verifier only: for tests and
              development, never for real secrets) until interrupted; prints its URL on stdout.
  --repository DIR      resources are the files DIR/<repository>/<type>/<tag>
  --port N              default 0 (any free port); --host ADDR default 127.0.0.1
  --tls-cert PEM --tls-key PEM
                        serve HTTPS
  --admin-token-file F  enable the admin routes (upload/delete resources, resource policy) with
                        the bearer token in F; F is created with a random token when missing
  --policy P            allow-all (default) or deny
  --missing-resource S  status for a missing resource: 401 (Trustee, default) or 404

get-resource  attest to a KBS with the sample attester and write the resource's bytes to stdout.
  URI                   kbs:///repository/type/tag or kbs+<plugin>:///a/b/c
${kbsFlagsHelpText()}`

function kbsFlagsHelpText(): string {
  return `KBS options:
  --kbs URL             the KBS base URL (http:// or https://)
  --kbs-cert PEM        trust this certificate (PEM file) for the KBS's HTTPS, besides the system roots
  --initdata FILE       Init-Data TOML (or its Kata annotation form, base64 of gzip): sent with the
                        attestation; gives the KBS URL and certificate (aa.toml, cdh.toml) unless
                        --kbs and --kbs-cert are given
  --tee-key-algorithm A ECDH-ES+A256KW-P256 (default), ECDH-ES+A256KW-P521 or RSA-OAEP-256`
}

/** The KBS flags of every command that fetches keys (parseArgs option specs). */
export const kbsFlags = {
  kbs: { type: 'string' },
  'kbs-cert': { type: 'string' },
  initdata: { type: 'string' },
  'tee-key-algorithm': { type: 'string' },
} as const

export const kbsFlagsHelp = kbsFlagsHelpText()

export interface KbsFlagValues {
  kbs?: string | undefined
  'kbs-cert'?: string | undefined
  initdata?: string | undefined
  'tee-key-algorithm'?: string | undefined
}

/**
 * Key source options from the KBS flags: a KBS client when `--kbs` or Init-Data names a KBS,
 * offline-fs maps when Init-Data's cdh.toml says `offline_fs_kbc`, nothing when no flag is set.
 * Reads the files named (ERR_OPTIONS_INVALID when unreadable, ERR_INITDATA_INVALID when malformed).
 */
export async function keySourceOptionsFromFlags(
  values: KbsFlagValues,
  io: Pick<CommandIo, 'env'>,
): Promise<OpenKeySourceOptions | undefined> {
  const alg = values['tee-key-algorithm']
  if (alg !== undefined && !(TeeKeyAlgorithms as readonly string[]).includes(alg)) {
    throw new OcipullError(
      'ERR_OPTIONS_INVALID',
      `--tee-key-algorithm: want one of ${TeeKeyAlgorithms.join(', ')}`,
    )
  }
  if (values.kbs === undefined && values.initdata === undefined) {
    if (values['kbs-cert'] !== undefined)
      throw new OcipullError('ERR_OPTIONS_INVALID', '--kbs-cert needs --kbs')
    return undefined
  }
  const initData = values.initdata === undefined ? undefined : await readInitDataFile(values.initdata)
  const settings = initData === undefined ? undefined : kbsSettingsFromInitData(initData)
  const url = values.kbs ?? settings?.url
  if (url === undefined) {
    if (settings?.kbc === 'offline_fs_kbc') return { offlineFs: { env: io.env } }
    throw new OcipullError(
      'ERR_INITDATA_INVALID',
      `${values.initdata}: no KBS URL (want aa.toml [token_configs.kbs] url or cdh.toml [kbc] url), and no --kbs`,
    )
  }
  const cert =
    values['kbs-cert'] === undefined ? settings?.cert : await readOptionFile('--kbs-cert', values['kbs-cert'])
  const teeKeyAlgorithm = (alg as TeeKeyAlgorithm | undefined) ?? settings?.teeKeyAlgorithm
  const kbs: KbsClientOptions = {
    url,
    env: io.env,
    ...(cert === undefined ? {} : { cert }),
    ...(teeKeyAlgorithm === undefined ? {} : { teeKeyAlgorithm }),
    ...(initData === undefined ? {} : { initData }),
  }
  return { kbs }
}

export async function kbsCommand(args: string[], io: CommandIo): Promise<void> {
  const [sub, ...rest] = args
  if (sub === 'serve') return serve(rest, io)
  if (sub === 'get-resource') return getResource(rest, io)
  throw new OcipullError(
    'ERR_OPTIONS_INVALID',
    `kbs: want serve or get-resource, got ${JSON.stringify(sub ?? '')}`,
  )
}

async function getResource(args: string[], io: CommandIo): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: kbsFlags })
  if (positionals.length !== 1)
    throw new OcipullError('ERR_OPTIONS_INVALID', 'kbs get-resource takes exactly one URI')
  const options = await keySourceOptionsFromFlags(values, io)
  if (options === undefined)
    throw new OcipullError('ERR_OPTIONS_INVALID', 'kbs get-resource needs --kbs or --initdata')
  const source = openKeySource({ ...options, file: false })
  try {
    const bytes = await source.getResource(positionals[0] as string, { signal: io.signal })
    await new Promise<void>((resolve, reject) =>
      io.stdout.write(bytes, (err) => (err === null || err === undefined ? resolve() : reject(err))),
    )
  } finally {
    await source.close()
  }
}

async function serve(args: string[], io: CommandIo): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: false,
    options: {
      repository: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'admin-token-file': { type: 'string' },
      policy: { type: 'string' },
      'missing-resource': { type: 'string' },
    },
  })
  void positionals
  if (values.repository === undefined)
    throw new OcipullError('ERR_OPTIONS_INVALID', 'kbs serve needs --repository DIR')
  const port = values.port === undefined ? 0 : Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new OcipullError(
      'ERR_OPTIONS_INVALID',
      `--port: want 0 to 65535, got ${JSON.stringify(values.port)}`,
    )
  }
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) {
    throw new OcipullError('ERR_OPTIONS_INVALID', '--tls-cert and --tls-key go together')
  }
  const policy = values.policy ?? 'allow-all'
  if (policy !== 'allow-all' && policy !== 'deny') {
    throw new OcipullError('ERR_OPTIONS_INVALID', '--policy: want allow-all or deny')
  }
  const missing = values['missing-resource'] ?? '401'
  if (missing !== '401' && missing !== '404') {
    throw new OcipullError('ERR_OPTIONS_INVALID', '--missing-resource: want 401 or 404')
  }
  const tls =
    values['tls-cert'] === undefined
      ? undefined
      : {
          cert: await readOptionFile('--tls-cert', values['tls-cert']),
          key: await readOptionFile('--tls-key', values['tls-key'] as string),
        }
  const adminToken =
    values['admin-token-file'] === undefined ? undefined : await adminTokenFile(values['admin-token-file'])
  const kbs = await startDevKbs({
    repository: values.repository,
    port,
    host: values.host ?? '127.0.0.1',
    policy: policy as ResourcePolicy,
    missingResourceStatus: missing === '404' ? 404 : 401,
    ...(tls === undefined ? {} : { tls }),
    ...(adminToken === undefined ? {} : { adminToken }),
  })
  io.stdout.write(`${kbs.url}\n`)
  io.stderr.write(
    `ocipull kbs: development KBS on ${kbs.url} (sample attestation only; not for real secrets)\n`,
  )
  try {
    if (!io.signal.aborted)
      await new Promise((resolve) => io.signal.addEventListener('abort', resolve, { once: true }))
  } finally {
    await kbs.close()
  }
}

/** The admin token in `file`, or a new random one written there (mode 0600) when it is missing. */
async function adminTokenFile(file: string): Promise<string> {
  try {
    const token = (await readFile(file, 'utf8')).trim()
    if (token.length < 16)
      throw new OcipullError('ERR_OPTIONS_INVALID', `--admin-token-file ${file}: want 16 characters or more`)
    return token
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') {
      if (err instanceof OcipullError) throw err
      throw new OcipullError('ERR_OPTIONS_INVALID', `--admin-token-file ${file}: ${(err as Error).message}`, {
        cause: err,
      })
    }
  }
  const token = randomBytes(32).toString('base64url')
  await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' })
  return token
}

async function readOptionFile(flag: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new OcipullError('ERR_OPTIONS_INVALID', `${flag} ${file}: ${(err as Error).message}`, {
      cause: err,
    })
  }
}

/** Init-Data from a file: TOML, or the Kata annotation form (base64 of gzip, which starts with H4sI). */
async function readInitDataFile(file: string) {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    throw new OcipullError('ERR_OPTIONS_INVALID', `--initdata ${file}: ${(err as Error).message}`, {
      cause: err,
    })
  }
  if (bytes.length > 2 * MAX_INITDATA_BYTES) {
    throw new OcipullError('ERR_INITDATA_INVALID', `${file}: larger than ${2 * MAX_INITDATA_BYTES} bytes`)
  }
  const text = bytes.toString('latin1').trim()
  const raw = text.startsWith('H4sI') ? decodeInitDataAnnotation(text) : bytes
  return parseInitData(raw, file)
}
