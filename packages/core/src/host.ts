// What the host offers a container: the caller's ids and subordinate ranges, and the host
// directories that make up the default sandbox.
import { existsSync, readFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { userInfo } from 'node:os'

import type { IdMapping } from './spec.js'

/** Host directories bound read-only into the default sandbox, when they exist. */
export const sandboxPaths = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/opt'] as const

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, tool)))
}

/** The first range /etc/subuid (or subgid) grants to this user, if any. */
export function subordinateRange(file: string, name: string, id: number): { start: number; count: number } | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':')
    if ((who === name || who === String(id)) && start && count) {
      const s = Number(start)
      const c = Number(count)
      if (Number.isInteger(s) && Number.isInteger(c) && c > 0) return { start: s, count: c }
    }
  }
  return undefined
}

/**
 * Whether this process is in the host's own user namespace (its map is the whole identity).
 * Root of a user namespace (inside a container) has only the ids its map gives it.
 */
export function inInitialUserNamespace(): boolean {
  // A process never changes user namespace once it runs Node: read once.
  if (initialUserns === undefined) {
    try {
      initialUserns = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/).join(' ') === '0 0 4294967295'
    } catch {
      initialUserns = false
    }
  }
  return initialUserns
}
let initialUserns: boolean | undefined

/** How many ids from 0 up this process's user namespace maps (65536 at most). */
function mappedFromZero(file: string): number {
  try {
    for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
      const [inside, , count] = line.trim().split(/\s+/).map(Number)
      if (inside === 0 && count) return Math.min(count, 65536)
    }
  } catch {
    // no map to read: assume the usual size
  }
  return 65536
}

/**
 * Default id maps of a new user namespace when no range is leased. Root of a user namespace: the
 * ids it has, as they are. Anyone else: their own id as root, plus their /etc/subuid range from
 * id 1 when newuidmap is installed.
 */
export function defaultIdMappings(): { uid: IdMapping[]; gid: IdMapping[] } {
  const euid = process.geteuid?.() ?? 0
  const egid = process.getegid?.() ?? 0
  if (euid === 0) {
    // Root of the host gets a leased range instead (see buildSpec); root of a user namespace
    // (ns inside a container) maps what it has, as it is.
    return {
      uid: [{ containerID: 0, hostID: 0, size: mappedFromZero('/proc/self/uid_map') }],
      gid: [{ containerID: 0, hostID: 0, size: mappedFromZero('/proc/self/gid_map') }],
    }
  }
  const uid: IdMapping[] = [{ containerID: 0, hostID: euid, size: 1 }]
  const gid: IdMapping[] = [{ containerID: 0, hostID: egid, size: 1 }]
  let name = ''
  try {
    name = userInfo().username
  } catch {
    // a uid without a passwd entry has no subordinate ranges either
  }
  const subu = name ? subordinateRange('/etc/subuid', name, euid) : undefined
  const subg = name ? subordinateRange('/etc/subgid', name, euid) : undefined
  if (subu && subg && onPath('newuidmap') && onPath('newgidmap')) {
    uid.push({ containerID: 1, hostID: subu.start, size: Math.min(subu.count, 65535) })
    gid.push({ containerID: 1, hostID: subg.start, size: Math.min(subg.count, 65535) })
  }
  return { uid, gid }
}

export function isMapped(maps: IdMapping[], id: number): boolean {
  return maps.some((m) => id >= m.containerID && id < m.containerID + m.size)
}
