import { parseReference } from '../reference.js'

/**
 * A Docker reference as signatures and policies use it: the normalized name
 * (`docker.io/library/busybox`), and a tag and a digest only when the text had them. Unlike
 * `parseReference`, no `latest` is filled in, because "name only" matters for identity rules.
 */
export interface DockerNamed {
  /** `registry/repository`, normalized. */
  name: string
  tag?: string
  digest?: string
}

/** Parses with Docker's normalization; returns undefined when the text is not a valid reference. */
export function parseDockerNamed(text: string): DockerNamed | undefined {
  let ref: ReturnType<typeof parseReference>
  try {
    ref = parseReference(text)
  } catch {
    return undefined
  }
  const at = text.indexOf('@')
  const beforeDigest = at < 0 ? text : text.slice(0, at)
  const explicitTag = beforeDigest.indexOf(':', beforeDigest.lastIndexOf('/') + 1) >= 0
  const out: DockerNamed = { name: `${ref.registry}/${ref.repository}` }
  if (explicitTag && ref.tag !== undefined) out.tag = ref.tag
  if (ref.digest !== undefined) out.digest = ref.digest
  return out
}

/** `name[:tag][@digest]`, Docker's canonical string. */
export function formatDockerNamed(n: DockerNamed): string {
  return `${n.name}${n.tag === undefined ? '' : `:${n.tag}`}${n.digest === undefined ? '' : `@${n.digest}`}`
}

export function isNameOnly(n: DockerNamed): boolean {
  return n.tag === undefined && n.digest === undefined
}
