import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { it } from 'vitest'

import { hostInfo } from '@ns/core'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..')
export const fixtureRootfs = join(repoRoot, 'test', 'fixtures', 'rootfs')
export const cli = join(repoRoot, 'packages', 'cli', 'bin', 'ns.js')

export const isRoot = process.geteuid?.() === 0
const block = hostInfo().usernsBlock
/** Why containers cannot run here at all, if they cannot. */
export const usernsSkipReason = block ? `${block.reason} (fix: ${block.fix})` : undefined

/** A test that runs only when `reason` is undefined; otherwise it is skipped and the reason printed. */
export function itWhen(reason: string | undefined) {
  return (name: string, fn: () => Promise<void> | void, timeout?: number) => {
    if (reason) {
      console.warn(`SKIP "${name}": ${reason}`)
      it.skip(name, fn)
    } else {
      it(name, fn, timeout)
    }
  }
}

/** Runs only where user namespaces work. */
export const itNs = itWhen(usernsSkipReason)
/** Runs only as root (and where user namespaces work). */
export const itRoot = itWhen(usernsSkipReason ?? (isRoot ? undefined : 'needs root'))
/** Runs only as an unprivileged user. */
export const itRootless = itWhen(usernsSkipReason ?? (isRoot ? 'runs only as an unprivileged user' : undefined))

/** The inode of one of this process's namespaces, as `net:[4026531840]`. */
export function hostNs(name: string): string {
  return readlinkSync(`/proc/self/ns/${name}`)
}

/** The parent of `pid` (throws if it is gone). */
export function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
}

function childrenOf(parent: number): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      if (ppidOf(Number(d)) === parent) out.push(Number(d))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

function isZygote(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, 2).join(' ') === 'ns-oci zygote'
  } catch {
    return false
  }
}

/** This process's zygotes (`ns-oci zygote`, which fork the helpers from the second one on). */
export function zygotePids(): number[] {
  return childrenOf(process.pid).filter(isZygote)
}

/**
 * PIDs of this process's living children, and of its zygote's (helpers left behind would show
 * up here); the zygote itself, which lives as long as this process, is left out.
 */
export function childPids(): number[] {
  return childrenOf(process.pid).flatMap((pid) => (isZygote(pid) ? childrenOf(pid) : [pid]))
}

export function hostMountinfo(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8')
}

/** Is `pid` a living process (not a zombie)? */
export function alive(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return s.slice(s.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

/**
 * The container's command: the first child of its PID 1 (the init). PID 1 is not dumpable, so
 * its namespaces are not its user's to open; those of its command are.
 */
export function commandPid(init: number): number {
  for (let i = 0; i < 200; i++) {
    const first = readFileSync(`/proc/${init}/task/${init}/children`, 'utf8').trim().split(' ')[0]
    if (first) return Number(first)
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10)
  }
  throw new Error(`pid ${init} has no child`)
}
