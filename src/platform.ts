import { arch as hostArch } from 'node:os'
import { OcipullError } from './errors.js'
import type { Descriptor, Platform } from './manifest.js'

/** The os/architecture/variant triple the resolver matches on (os.version and os.features are ignored, as in containers/image). */
export interface PlatformSpec {
  os: string
  architecture: string
  variant?: string
}

const archAliases: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  i386: '386',
  i686: '386',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
}

/**
 * Normalizes a platform the way containerd does: x86_64→amd64, aarch64→arm64, arm64's default
 * variant is v8, arm's is v7, armhf→arm/v7, armel→arm/v6, lowercase os and architecture.
 */
export function normalizePlatform(p: PlatformSpec): PlatformSpec {
  const os = p.os.toLowerCase()
  const raw = p.architecture.toLowerCase()
  const architecture = archAliases[raw] ?? raw
  let variant = p.variant?.toLowerCase() || undefined
  if (architecture === 'arm64' && (variant === undefined || variant === '8')) variant = 'v8'
  if (architecture === 'arm') {
    if (variant === undefined) variant = raw === 'armel' ? 'v6' : 'v7'
    if (/^\d$/.test(variant)) variant = `v${variant}`
  }
  if (architecture === 'amd64' && variant === 'v1') variant = undefined
  return variant === undefined ? { os, architecture } : { os, architecture, variant }
}

/** Parses `os/arch[/variant]`, e.g. `linux/arm/v7`. Throws ERR_PLATFORM_INVALID. */
export function parsePlatform(text: string): PlatformSpec {
  const parts = text.split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9._-]+$/.test(p))) {
    throw new OcipullError('ERR_PLATFORM_INVALID', `platform ${JSON.stringify(text)}: want os/arch[/variant]`)
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined]
  return normalizePlatform(variant === undefined ? { os, architecture } : { os, architecture, variant })
}

export function formatPlatform(p: PlatformSpec): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`
}

/** The platform of this process: linux plus Node's architecture (arm's variant from the compiler's target). */
export function hostPlatform(): PlatformSpec {
  const os = process.platform === 'win32' ? 'windows' : process.platform
  const a = hostArch()
  const architecture = a === 'x64' ? 'amd64' : a === 'ia32' ? '386' : a
  const armVersion = (process.config.variables as Record<string, unknown>)['arm_version']
  const variant = architecture === 'arm' && typeof armVersion === 'string' ? `v${armVersion}` : undefined
  return normalizePlatform(variant === undefined ? { os, architecture } : { os, architecture, variant })
}

/**
 * The variants `wanted` can run, best first. arm/v8 runs v8…v5, arm/v7 runs v7, v6, v5, and so on.
 * Other architectures run only their own variant.
 */
function acceptableVariants(wanted: PlatformSpec): (string | undefined)[] {
  if (wanted.architecture === 'arm' && wanted.variant !== undefined) {
    const n = Number(wanted.variant.slice(1))
    if (wanted.variant.startsWith('v') && n >= 5 && n <= 8) {
      const ladder: string[] = []
      for (let v = n; v >= 5; v--) ladder.push(`v${v}`)
      return ladder
    }
  }
  return [wanted.variant]
}

/**
 * Picks the index entry that best matches `wanted`: same os and architecture, and the variant
 * that ranks highest in the compatibility ladder; ties go to the first entry, as in the index.
 * Returns undefined when nothing can run on `wanted`.
 */
export function matchPlatform(
  manifests: readonly Descriptor[],
  wanted: PlatformSpec,
): Descriptor | undefined {
  const want = normalizePlatform(wanted)
  const ladder = acceptableVariants(want)
  let best: Descriptor | undefined
  let bestRank = Number.POSITIVE_INFINITY
  for (const d of manifests) {
    if (d.platform === undefined) continue
    const have = normalizePlatform(d.platform)
    if (have.os !== want.os || have.architecture !== want.architecture) continue
    let rank = ladder.indexOf(have.variant)
    // A wanted platform without a variant (amd64, 386, …) accepts any variant, exact first.
    if (rank < 0 && want.variant === undefined) rank = ladder.length
    if (rank >= 0 && rank < bestRank) {
      best = d
      bestRank = rank
    }
  }
  return best
}

export function platformOf(p: Platform): PlatformSpec {
  return normalizePlatform(p.variant === undefined ? p : { ...p, variant: p.variant })
}
