// The memory of idle pooled sandboxes for tools/bench.mjs: a pool of POOL_MEMORY_SIZE made and
// filled, then the Pss and the private memory of every process it added (each sandbox's helper
// and its waiting first process), summed and divided by the sandboxes. The kernel's own
// (namespaces, mounts, page tables) is not in these figures.

import { readdirSync, readFileSync } from 'node:fs'
import { firstLine } from '../bench-common.mjs'
import { ns, nsImportError } from './ns-core.mjs'
import { poolOptions } from './pool.mjs'

const POOL_MEMORY_SIZE = 8

/** The processes descended from this one, by PID. */
function descendants() {
  const parent = new Map()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {
      /* gone meanwhile */
    }
  }
  const out = new Set()
  let grew = true
  while (grew) {
    grew = false
    for (const [pid, pp] of parent) {
      if (!out.has(pid) && (pp === process.pid || out.has(pp))) {
        out.add(pid)
        grew = true
      }
    }
  }
  return out
}

/** A filled pool's memory per sandbox, in KiB (no network namespace, /bin/true's options). */
export async function poolMemory() {
  const out = { size: POOL_MEMORY_SIZE, processes: null, pssKiB: null, privateKiB: null, error: null }
  if (nsImportError) {
    out.error = nsImportError
    return out
  }
  const before = descendants()
  const p = ns.pool({ size: POOL_MEMORY_SIZE, ...poolOptions(false) })
  try {
    await p.warm()
    await new Promise((r) => setTimeout(r, 200))
    const field = (text, name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0)
    let pss = 0
    let priv = 0
    let n = 0
    for (const pid of descendants()) {
      if (before.has(pid)) continue
      try {
        const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
        pss += field(rollup, 'Pss')
        priv += field(rollup, 'Private_Clean') + field(rollup, 'Private_Dirty')
        n++
      } catch {
        /* gone meanwhile */
      }
    }
    if (p.ready !== POOL_MEMORY_SIZE) throw new Error(`${p.ready} of ${POOL_MEMORY_SIZE} sandboxes were ready`)
    out.processes = n
    out.pssKiB = Math.round(pss / POOL_MEMORY_SIZE)
    out.privateKiB = Math.round(priv / POOL_MEMORY_SIZE)
  } catch (err) {
    out.error = firstLine(err?.message ?? err)
  } finally {
    await p.close().catch(() => {})
  }
  return out
}
