import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from '../rig/exec.js'

/**
 * Image-building steps with umoci and skopeo. Gate suites on the tools with the rig's
 * `requireTool('umoci', 'skopeo')` (skips without them, fails under CI=true).
 */

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
  const { stdout } = await run('skopeo', ['inspect', ...(config ? ['--config'] : []), '--raw', reference])
  return Buffer.from(stdout)
}
