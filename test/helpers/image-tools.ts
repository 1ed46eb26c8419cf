import { execFile, spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

/** True when `command --version` runs. */
export function hasCommand(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0
}

const isCI = process.env['CI'] === 'true'

/**
 * Whether suites needing external tools should run: always under CI=true (so a missing tool is
 * a failure there, via `assertCommands`), elsewhere only when the tools are installed.
 */
export function shouldRunWith(...commands: string[]): boolean {
  return isCI || commands.every(hasCommand)
}

/** Throws naming the missing tools; call from beforeAll in suites gated by `shouldRunWith`. */
export function assertCommands(...commands: string[]): void {
  const missing = commands.filter((c) => !hasCommand(c))
  if (missing.length > 0) throw new Error(`missing tools needed by this suite: ${missing.join(', ')}`)
}

/** Runs a command, returning stdout as bytes; rejects with its stderr on failure. */
export async function run(command: string, args: string[], cwd?: string): Promise<Buffer> {
  try {
    const { stdout } = await execFileAsync(command, args, {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
      ...(cwd === undefined ? {} : { cwd }),
    })
    return stdout
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? ''
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr || (err as Error).message}`)
  }
}

/**
 * Builds a one-layer image with umoci: `umoci init`, `umoci new`, an unpack/add files/repack
 * cycle. Returns the layout directory (`<work>/layout`) holding `<tag>`.
 */
export async function buildUmociImage(
  work: string,
  tag: string,
  files: Record<string, string>,
): Promise<string> {
  const layout = join(work, 'layout')
  const bundle = join(work, 'bundle')
  await run('umoci', ['init', '--layout', layout])
  await run('umoci', ['new', '--image', `${layout}:${tag}`])
  await run('umoci', ['unpack', '--rootless', '--image', `${layout}:${tag}`, bundle])
  for (const [path, text] of Object.entries(files)) await writeFile(join(bundle, 'rootfs', path), text)
  await run('umoci', ['repack', '--image', `${layout}:${tag}`, bundle])
  return layout
}

/** `skopeo copy` between two transports (e.g. `oci:D:t` → `oci-archive:X.tar`). */
export async function skopeoCopy(from: string, to: string): Promise<void> {
  await run('skopeo', ['--insecure-policy', 'copy', '--quiet', from, to])
}

/** `skopeo inspect --raw` (the manifest bytes) or, with `config`, `--config --raw` (the config bytes). */
export async function skopeoInspectRaw(reference: string, config = false): Promise<Buffer> {
  return run('skopeo', ['inspect', ...(config ? ['--config'] : []), '--raw', reference])
}
