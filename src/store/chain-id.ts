import { createHash } from 'node:crypto'
import type { Digest } from '../digest.js'

/**
 * The ChainIDs of a stack of layers (OCI image spec, config.md): the first is its diff_id, each
 * next one is sha256 of `parentChainID + " " + diffID`. A ChainID names a layer together with
 * everything below it, which is what an unpacked layer depends on.
 */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = []
  for (const diffId of diffIds) {
    const parent = out.at(-1)
    out.push(
      parent === undefined
        ? diffId
        : `sha256:${createHash('sha256').update(`${parent} ${diffId}`).digest('hex')}`,
    )
  }
  return out
}
