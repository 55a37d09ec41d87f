// Platforms (`os/architecture[/variant]`) and the choice of one manifest from an image index,
// with the aliases and variant defaults the OCI world uses (containerd's normalisation).
import { imageError } from './errors.js'
import type { Descriptor, Platform } from './media.js'

export interface PlatformSpec {
  os: string
  architecture: string
  variant?: string | undefined
}

const archAliases: Record<string, PlatformSpec> = {
  x86_64: { os: '', architecture: 'amd64' },
  'x86-64': { os: '', architecture: 'amd64' },
  aarch64: { os: '', architecture: 'arm64' },
  armhf: { os: '', architecture: 'arm', variant: 'v7' },
  armel: { os: '', architecture: 'arm', variant: 'v6' },
  i386: { os: '', architecture: '386' },
  i686: { os: '', architecture: '386' },
}

/** Normalises architecture and variant: `aarch64` is `arm64`, arm64's `v8` is no variant, arm's default is v7. */
export function normalizePlatform(p: PlatformSpec): PlatformSpec {
  const os = p.os.toLowerCase()
  let architecture = p.architecture.toLowerCase()
  let variant = p.variant?.toLowerCase() || undefined
  const alias = archAliases[architecture]
  if (alias) {
    architecture = alias.architecture
    variant ??= alias.variant
  }
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = undefined
  if (architecture === 'arm') {
    variant ??= 'v7'
    if (/^[0-9]$/.test(variant)) variant = `v${variant}`
  }
  if (architecture === 'amd64' && variant === 'v1') variant = undefined
  return variant ? { os, architecture, variant } : { os, architecture }
}

/** Reads `os/arch[/variant]` (`linux/arm64`, `linux/arm/v7`); a missing os is linux. */
export function parsePlatform(s: string, field = 'platform'): PlatformSpec {
  const parts = s.split('/')
  if (parts.length < 1 || parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p))) {
    throw imageError('EINVAL', `${field}: ${JSON.stringify(s)} is not os/architecture[/variant]`, { field })
  }
  const [a, b, c] = parts as [string, string?, string?]
  const p = b === undefined ? { os: 'linux', architecture: a } : { os: a, architecture: b, variant: c }
  return normalizePlatform(p)
}

export function formatPlatform(p: PlatformSpec): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`
}

function hostArmVariant(): string {
  const v = (process.config.variables as unknown as Record<string, unknown>).arm_version
  return typeof v === 'string' || typeof v === 'number' ? `v${v}` : 'v7'
}

/** The platform of this host, as images name it. */
export function hostPlatform(): PlatformSpec {
  const arch: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
    loong64: 'loong64',
    mips64el: 'mips64le',
  }
  const architecture = arch[process.arch] ?? process.arch
  return normalizePlatform({
    os: process.platform === 'linux' ? 'linux' : process.platform,
    architecture,
    variant: architecture === 'arm' ? hostArmVariant() : undefined,
  })
}

/** How well `have` serves `want`: 0 is no match, higher is better (arm v7 runs v6 and v5 images). */
export function platformScore(want: PlatformSpec, have: Platform | PlatformSpec): number {
  const w = normalizePlatform(want)
  const h = normalizePlatform(have)
  if (w.os !== h.os || w.architecture !== h.architecture) return 0
  if (w.variant === h.variant) return 100
  if (w.architecture === 'arm' && w.variant && h.variant) {
    const wn = Number(w.variant.slice(1))
    const hn = Number(h.variant.slice(1))
    if (hn < wn) return 50 - (wn - hn)
    return 0
  }
  // Asked for no variant: any variant of the architecture will do, the plainest first.
  if (want.variant === undefined) return h.variant === undefined ? 90 : 80
  return 0
}

/** The manifest of an index that fits `want` best, or an error listing what the index offers. */
export function selectManifest(manifests: readonly Descriptor[], want: PlatformSpec, reference: string): Descriptor {
  let best: Descriptor | undefined
  let bestScore = 0
  for (const m of manifests) {
    if (!m.platform) continue
    const s = platformScore(want, m.platform)
    if (s > bestScore) {
      best = m
      bestScore = s
    }
  }
  if (best) return best
  const offered = manifests
    .filter((m) => m.platform && m.platform.os !== 'unknown')
    .map((m) => formatPlatform(normalizePlatform(m.platform!)))
  throw imageError(
    'NO_MATCHING_PLATFORM',
    `${reference}: no image for ${formatPlatform(want)} in the manifest list (it has ${offered.join(', ') || 'none'})`,
    { hint: 'choose one of those with the platform option (--platform os/arch[/variant])', field: 'platform' },
  )
}
