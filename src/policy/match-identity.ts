import { type DockerNamed, formatDockerNamed, isNameOnly, parseDockerNamed } from './docker-name.js'
import type { SignedIdentity } from './policy-types.js'

/**
 * Whether the identity a verified signature claims (`signedReference`, the payload's
 * `docker-reference`) is acceptable for an image pulled as `image` (the reference the user asked
 * for; undefined for transports without a Docker reference), under `rule`. containers/image's
 * semantics (signature.PolicyReferenceMatch); both sides are Docker-normalized, and a signed
 * reference that does not parse never matches. Digests are not compared here: the payload's
 * manifest digest is checked against the manifest separately.
 */
export function matchSignedIdentity(
  rule: SignedIdentity,
  image: DockerNamed | undefined,
  signedReference: string,
): boolean {
  const signed = parseDockerNamed(signedReference)
  if (signed === undefined) return false
  switch (rule.type) {
    case 'matchExact':
      return image !== undefined && exact(image, signed)
    case 'matchRepoDigestOrExact':
      return image !== undefined && repoDigestOrExact(image, signed)
    case 'matchRepository':
      return image !== undefined && image.name === signed.name
    case 'exactReference': {
      const wanted = parseDockerNamed(rule.dockerReference)
      return wanted !== undefined && exact(wanted, signed)
    }
    case 'exactRepository': {
      const wanted = parseDockerNamed(rule.dockerRepository)
      return wanted !== undefined && wanted.name === signed.name
    }
    case 'remapIdentity': {
      if (image === undefined) return false
      let intended = image
      if (matchesPrefix(image.name, rule.prefix)) {
        const text = formatDockerNamed(image).replace(rule.prefix, rule.signedPrefix)
        const remapped = parseDockerNamed(text)
        // Like containers/image (reference.ParseNamed), the result must already be canonical.
        if (remapped === undefined || formatDockerNamed(remapped) !== text) return false
        intended = remapped
      }
      return repoDigestOrExact(intended, signed)
    }
  }
}

function exact(a: DockerNamed, b: DockerNamed): boolean {
  return !isNameOnly(a) && !isNameOnly(b) && formatDockerNamed(a) === formatDockerNamed(b)
}

/** A tagged image needs the exact reference; a digest-only image needs the same repository. */
function repoDigestOrExact(image: DockerNamed, signed: DockerNamed): boolean {
  if (image.tag !== undefined) return formatDockerNamed(image) === formatDockerNamed(signed)
  if (image.digest !== undefined) return image.name === signed.name
  return false
}

/** `name` is `prefix` or lies under it at a `/` boundary (never `quay.io/ns` for `quay.io/n`). */
function matchesPrefix(name: string, prefix: string): boolean {
  if (name.length === prefix.length) return name === prefix
  return name.length > prefix.length && name.startsWith(prefix) && name[prefix.length] === '/'
}
