#!/usr/bin/env -S node --max-semi-space-size=1
// The flag: a streaming pull allocates many short-lived buffers, and with V8's default young
// generation (semi-spaces up to 16 MiB) they pile up between scavenges; 1 MiB semi-spaces keep the
// peak RSS 30-40 MiB lower at no cost in time (docs/performance.md). It only works on the command
// line (v8.setFlagsFromString is too late). Library users choose their own heap flags.
import { readFileSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { isOcipullError } from '../errors.js'
import { ExitCode, exitCodeFor } from './exit-codes.js'
import type { CommandIo } from './inspect.js'

const usage = `Usage: ocipull COMMAND [OPTIONS]

Commands:
  inspect REF     show the manifest, config and platforms of an image
  pull REF --bundle DIR [--work-dir D] [--snapshotter dir|overlay]
                  pull an image into the layer store and make an OCI runtime bundle of it
  unpack REF --bundle DIR
                  unpack an image into an OCI runtime bundle (rootfs + config.json)
  verify REF --policy FILE [--registries.d DIR]
                  check an image against a signature policy (exit 7 when rejected)
  kbs serve --repository DIR
                  run the development KBS (sample attestation; tests and development only)
  kbs get-resource URI --kbs URL
                  attest to a KBS and print a resource (kbs:///repository/type/tag)
  store list|rm|gc [--work-dir D]
                  list or remove the images of the layer store, remove unused layers

Global options:
  --debug         print stack traces and error causes
  --help, -h      show help (also: ocipull COMMAND --help)
  --version       print the version

Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 authentication, 5 integrity
(digest, size or malformed content), 6 network or registry, 7 rejected by policy
or configuration, 8 decryption key unavailable, 130 interrupted.
`

interface Command {
  run: (args: string[], io: CommandIo) => Promise<void>
  help: string
}

/**
 * Each command is loaded when it runs, so `ocipull inspect` does not load the signature,
 * decryption and KBS code (and their dependencies): it starts faster and uses less memory.
 */
const commands: Record<string, () => Promise<Command>> = {
  inspect: async () => {
    const m = await import('./inspect.js')
    return { run: m.inspectCommand, help: m.inspectHelp }
  },
  pull: async () => {
    const m = await import('./pull.js')
    return { run: m.pullCommand, help: m.pullHelp }
  },
  unpack: async () => {
    const m = await import('./unpack.js')
    return { run: m.unpackCommand, help: m.unpackHelp }
  },
  verify: async () => {
    const m = await import('./verify.js')
    return { run: m.verifyCommand, help: m.verifyHelp }
  },
  kbs: async () => {
    const m = await import('./kbs.js')
    return { run: m.kbsCommand, help: m.kbsHelp }
  },
  store: async () => {
    const m = await import('./store.js')
    return { run: m.storeCommand, help: m.storeHelp }
  },
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
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined
  if (load === undefined) {
    io.stderr.write(`ocipull: unknown command ${JSON.stringify(name)}\n\n${usage}`)
    return ExitCode.Usage
  }
  const command = await load()
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
  let done = false
  // If the event loop empties while the command is still waiting (a stream that stopped without
  // ending or failing: a bug), Node would exit with status 0 and a half-done bundle; say so instead.
  process.on('beforeExit', () => {
    if (done) return
    done = true
    process.stderr.write('ocipull: internal error: the command stopped before it finished\n')
    process.exitCode = ExitCode.Failure
  })
  main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: controller.signal,
  }).then((code) => {
    done = true
    process.exitCode = code
  })
}
