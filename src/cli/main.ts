#!/usr/bin/env node
import { readFileSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { isOcipullError } from '../errors.js'
import { ExitCode, exitCodeFor } from './exit-codes.js'
import { type CommandIo, inspectCommand, inspectHelp } from './inspect.js'
import { pullCommand, pullHelp } from './pull.js'
import { unpackCommand, unpackHelp } from './unpack.js'

const usage = `Usage: ocipull COMMAND [OPTIONS]

Commands:
  inspect REF     show the manifest, config and platforms of an image
  pull REF --bundle DIR [--work-dir D] [--snapshotter dir|overlay]
                  pull an image into the layer store and make an OCI runtime bundle of it
  unpack REF --bundle DIR
                  unpack an image into an OCI runtime bundle (rootfs + config.json)

Global options:
  --debug         print stack traces and error causes
  --help, -h      show help (also: ocipull COMMAND --help)
  --version       print the version

Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 authentication, 5 integrity
(digest, size or malformed content), 6 network or registry, 7 rejected by policy
or configuration, 8 decryption key unavailable, 130 interrupted.
`

const commands: Record<string, { run: (args: string[], io: CommandIo) => Promise<void>; help: string }> = {
  inspect: { run: inspectCommand, help: inspectHelp },
  pull: { run: pullCommand, help: pullHelp },
  unpack: { run: unpackCommand, help: unpackHelp },
}

/** Runs the CLI; returns the exit code. Exported for tests. */
export async function main(
  argv: string[],
  io: CommandIo & { stderr: NodeJS.WritableStream },
): Promise<number> {
  const debug = argv.includes('--debug')
  const args = argv.filter((a) => a !== '--debug')
  const [name, ...rest] = args
  if (name === '--version') {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string
    }
    io.stdout.write(`ocipull ${pkg.version}\n`)
    return ExitCode.Ok
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage)
    return name === undefined ? ExitCode.Usage : ExitCode.Ok
  }
  const command = commands[name]
  if (command === undefined) {
    io.stderr.write(`ocipull: unknown command ${JSON.stringify(name)}\n\n${usage}`)
    return ExitCode.Usage
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(`${command.help}\n`)
    return ExitCode.Ok
  }
  try {
    await command.run(rest, io)
    return ExitCode.Ok
  } catch (err) {
    if (isOcipullError(err)) {
      io.stderr.write(`ocipull: ${err.code}: ${err.message}\n`)
      if (debug) io.stderr.write(`${describeCauses(err)}\n`)
      return exitCodeFor(err.code)
    }
    const e = err as { code?: unknown; message?: unknown }
    if (typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`ocipull ${name}: ${String(e.message)}\n`)
      return ExitCode.Usage
    }
    io.stderr.write(`ocipull: internal error: ${err instanceof Error ? err.message : String(err)}\n`)
    if (debug) io.stderr.write(`${describeCauses(err)}\n`)
    return ExitCode.Failure
  }
}

function describeCauses(err: unknown): string {
  const out: string[] = []
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 8; depth++) {
    out.push(e instanceof Error ? (e.stack ?? e.message) : String(e))
    e = e instanceof Error ? e.cause : undefined
    if (e !== undefined) out.push('caused by:')
  }
  return out.join('\n')
}

function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)
  } catch {
    return false
  }
}

if (isEntryPoint()) {
  const controller = new AbortController()
  process.once('SIGINT', () => controller.abort())
  process.once('SIGTERM', () => controller.abort())
  main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: controller.signal,
  }).then((code) => {
    process.exitCode = code
  })
}
