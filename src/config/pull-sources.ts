import { OcipullError } from '../errors.js'
import { formatReference, parseReference, type Reference } from '../reference.js'
import type { MirrorRule, RegistriesConfig, RegistryRule } from './registries-conf.js'
import { matchPrefix, type ParsedPrefix, parsePrefix } from './registry-prefix.js'
import { shortNameCandidates } from './short-names.js'

/** One place to pull an image from, in the order to try them. */
export interface PullSource {
  /**
   * The logical reference: what the user asked for (or, for a short name, the candidate). It
   * names the image, and the signature policy is evaluated on it, never on the location.
   */
  named: Reference
  /** The reference actually requested: a mirror's, a remapped location's, or `named` itself. */
  location: Reference
  /** `mirror` for a [[registry.mirror]]; `primary` for the rule's location or the reference itself. */
  kind: 'mirror' | 'primary'
  /** Plain HTTP (or TLS without verification) for the location's host. */
  insecure: boolean
  /** The location falls under a `blocked` rule: it is reported, never contacted. */
  blocked: boolean
}

export interface PullSourcesOptions {
  /** The user typed a short name: expand it through aliases and unqualified-search-registries. */
  shortName?: boolean
}

/**
 * Expands a reference into the locations to try, as containers/image does: for each candidate
 * (the reference, or a short name's candidates), the `[[registry]]` with the longest matching
 * prefix decides: its mirrors first (those `pull-from-mirror` / `mirror-by-digest-only` allow
 * for a tag or digest reference), then its location (the prefix replaced), else the reference.
 * Throws ERR_REGISTRY_BLOCKED when every candidate is blocked. Pure: no I/O.
 */
export function pullSources(
  ref: Reference,
  config: RegistriesConfig | undefined,
  options: PullSourcesOptions = {},
): PullSource[] {
  if (config === undefined) {
    return [{ named: ref, location: ref, kind: 'primary', insecure: false, blocked: false }]
  }
  const candidates = options.shortName ? shortNameCandidates(ref, config) : [ref]
  const sources: PullSource[] = []
  const blockedBy: string[] = []
  for (const named of candidates) {
    const text = formatReference(named)
    const found = findRegistryRule(config, text)
    if (found?.rule.blocked) {
      blockedBy.push(`${text} (prefix ${JSON.stringify(found.rule.prefix)})`)
      sources.push({ named, location: named, kind: 'primary', insecure: false, blocked: true })
      continue
    }
    if (found === undefined) {
      sources.push({ named, location: named, kind: 'primary', insecure: false, blocked: false })
      continue
    }
    const { rule, length } = found
    for (const mirror of usableMirrors(rule, named)) {
      sources.push(
        endpoint(config, named, 'mirror', rewrite(text, length, mirror.location, rule), mirror.insecure),
      )
    }
    const location = rule.location === '' ? named : rewrite(text, length, rule.location, rule)
    sources.push(endpoint(config, named, 'primary', location, rule.insecure))
  }
  if (sources.every((s) => s.blocked)) {
    throw new OcipullError(
      'ERR_REGISTRY_BLOCKED',
      `docker://${formatReference(ref)}: blocked by the registry configuration: ${blockedBy.join(', ')}`,
    )
  }
  return sources
}

/** The `[[registry]]` whose prefix matches `ref` (formatted) and is longest; exact beats wildcard on a tie. */
export function findRegistryRule(
  config: RegistriesConfig,
  ref: string,
): { rule: RegistryRule; prefix: ParsedPrefix; length: number } | undefined {
  let best: { rule: RegistryRule; prefix: ParsedPrefix; length: number } | undefined
  for (const rule of config.registries) {
    const prefix = parsePrefix(rule.prefix, 'prefix')
    if (typeof prefix === 'string') continue // checked by the parser; a hand-built config may be wrong
    const length = matchPrefix(ref, prefix)
    if (length < 0) continue
    if (
      best === undefined ||
      rule.prefix.length > best.rule.prefix.length ||
      (rule.prefix.length === best.rule.prefix.length && best.prefix.wildcard && !prefix.wildcard)
    ) {
      best = { rule, prefix, length }
    }
  }
  return best
}

function usableMirrors(rule: RegistryRule, named: Reference): MirrorRule[] {
  const byDigest = named.digest !== undefined
  return rule.mirrors.filter((m) => {
    const mode = rule.mirrorByDigestOnly ? 'digest-only' : (m.pullFromMirror ?? 'all')
    return mode === 'all' || (mode === 'digest-only' ? byDigest : !byDigest)
  })
}

/** A location is blocked or insecure by its own rule too (a mirror on a blocked or insecure host). */
function endpoint(
  config: RegistriesConfig,
  named: Reference,
  kind: 'mirror' | 'primary',
  location: Reference,
  insecure: boolean,
): PullSource {
  const own = findRegistryRule(config, formatReference(location))?.rule
  return {
    named,
    location,
    kind,
    insecure: insecure || own?.insecure === true,
    blocked: own?.blocked === true,
  }
}

function rewrite(ref: string, length: number, location: string, rule: RegistryRule): Reference {
  const text = `${location}${ref.slice(length)}`
  try {
    return parseReference(text)
  } catch (err) {
    throw new OcipullError(
      'ERR_CONFIG_FILE_INVALID',
      `registry prefix ${JSON.stringify(rule.prefix)}: rewriting ${ref} with location ${JSON.stringify(location)} gives an invalid reference: ${(err as Error).message}`,
      { cause: err },
    )
  }
}
