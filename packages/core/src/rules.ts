// Rules of the friendly options that need more than a type: sizes the kernel takes, where a
// volume may go, what a container may be named and the hostname it gets. Plain functions, shared
// by the schema of the options and by what builds the spec.
import { createHash } from 'node:crypto'

/** The largest size (bytes) or count ns passes on: beyond it a JavaScript number is not exact. */
export const MAX_EXACT = Number.MAX_SAFE_INTEGER
/** The most processes a pids limit can name (the kernel's PID_MAX_LIMIT). */
export const MAX_PIDS = 4 * 1024 * 1024
/** The longest timeout a Node timer keeps (ms). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1

const sizeForm = /^(\d+)([kmg]?)$/i
const units = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as const

/** `64m` -> 67108864 (a number is taken as bytes). */
export function parseSize(v: number | string): number {
  if (typeof v === 'number') return v
  const m = sizeForm.exec(v)!
  return Number(m[1]) * units[m[2]!.toLowerCase() as keyof typeof units]
}

export const SIZE_TOO_LARGE = `must be at most ${MAX_EXACT} bytes`

/** The smallest memory limit a container can start under (docker's minimum too). */
export const MIN_MEMORY = 6 * 1024 * 1024
export const MEMORY_TOO_SMALL = 'must be at least 6m (6 MiB): less cannot start a process'
/** False for a memory size below MIN_MEMORY; true otherwise (what is not a size is another rule's). */
export const memoryFits = (v: number | string): boolean =>
  typeof v === 'number' ? v >= MIN_MEMORY : !sizeForm.test(v) || parseSize(v) >= MIN_MEMORY

/** False for a size like `99999999999999999999` (more than ns can pass on exactly); true otherwise. */
export function sizeFits(v: string): boolean {
  return !sizeForm.test(v) || parseSize(v) <= MAX_EXACT
}

/**
 * What is wrong with a mount target inside the container, if anything: it must be absolute, name
 * no `..`, and not be the root itself (a volume adds to the root filesystem; `--rootfs` replaces it).
 */
export function targetProblem(target: string): string | undefined {
  if (!target.startsWith('/')) return 'must be an absolute path'
  const parts = target.split('/').filter((p) => p !== '' && p !== '.')
  if (parts.includes('..')) return "must not contain '..'"
  if (parts.length === 0) return "must not be / (a mount cannot replace the container's root; use rootfs)"
  return undefined
}

/** The target of a `SRC:DST[:OPTS]` volume. */
export function volumeTarget(v: string): string {
  return v.split(':')[1] ?? ''
}

/** Container names, as docker's: a letter or digit, then letters, digits, `_`, `.`, `-`. */
export const NAME_FORM = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/
/** A name is a directory of the state root and of each cgroup hierarchy. */
export const NAME_MAX = 255
export const NAME_PROBLEM = `must be a letter or digit, then letters, digits, _ . or - (at most ${NAME_MAX} characters)`

export function nameFits(name: string): boolean {
  return NAME_FORM.test(name) && name.length <= NAME_MAX
}

/** Hostnames, as the options take them (the kernel's limit is 64 bytes). */
export const HOSTNAME_FORM = /^[A-Za-z0-9][A-Za-z0-9.-]*$/
export const HOSTNAME_MAX = 64

/**
 * The hostname a container gets when none is given: its id when that is a hostname, otherwise
 * (a long name, one with `_`) 12 hex digits of the id's SHA-256, as stable as the name.
 */
export function hostnameFor(id: string): string {
  if (id.length <= HOSTNAME_MAX && HOSTNAME_FORM.test(id)) return id
  return createHash('sha256').update(id).digest('hex').slice(0, 12)
}

/** A user as `-u` takes it: a name or a number, and a group the same way (names need an image). */
export const USER_FORM = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/
export const USER_PROBLEM = 'must be USER[:GROUP], names or numbers (UID, UID:GID)'
/** When a run pulls its image. */
export const pullPolicies = ['missing', 'always', 'never'] as const
export type PullPolicy = (typeof pullPolicies)[number]
export const FUNCTION_PROBLEM = 'must be a function'
export const IMAGES_PROBLEM = 'must be an image store handle (openImages())'
/** Is `v` an `Images` handle (what `openImages()` returns)? */
export function isImages(v: unknown): boolean {
  const o = v as { store?: unknown; pull?: unknown } | null
  return typeof o === 'object' && o !== null && typeof o.store === 'string' && typeof o.pull === 'function'
}
