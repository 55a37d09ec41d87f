// The leak check of tools/bench-server.mjs: what the server and its containers hold
// (processes, mounts, cgroups, state directories, zombies), before and after, compared until
// the teardown settles.

import { existsSync, readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { sleep } from './client.mjs'
import { zygotesOf } from './cpu.mjs'
import { processTable } from './processes.mjs'

const SETTLE_MS = 5_000

export function hasTag(pid, tag) {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(tag)
  } catch {
    return false
  }
}

/** The roots of the cgroup hierarchies: /sys/fs/cgroup itself on v2, one per controller on v1. */
export function cgroupRoots() {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return ['/sys/fs/cgroup']
  try {
    return readdirSync('/sys/fs/cgroup').map((c) => path.join('/sys/fs/cgroup', c))
  } catch {
    return [] // no cgroups
  }
}

/** Every directory below `dir`, at any depth; none when it cannot be read (or is not there). */
export function dirsBelow(dir, out = []) {
  let entries = []
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return out
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue
    const p = path.join(dir, e.name)
    out.push(p)
    dirsBelow(p, out)
  }
  return out
}

/** The cgroup directories where @ns/core puts containers: `<controller>/ns` on v1, `ns` on v2. */
export function nsCgroupDirs() {
  return cgroupRoots()
    .map((r) => path.join(r, 'ns'))
    .filter((d) => existsSync(d))
}

export function cgroupList() {
  return nsCgroupDirs().flatMap((d) => dirsBelow(d))
}

/**
 * What the server and its containers hold now. Processes: every process that carries our tag
 * in its environment (the server passes its environment to the ns-oci helpers and monitors,
 * which leave its process tree) and their descendants, the server itself left out; zombies:
 * those of them, and any ns-oci, in state Z.
 */
export function snapshot(server, stateRoot, tag) {
  const table = processTable()
  const ours = new Set()
  for (const pid of table.keys()) if (pid !== server.pid && hasTag(pid, tag)) ours.add(pid)
  // Descendants of the server and of every tagged process, to a fixed point.
  let grew = true
  while (grew) {
    grew = false
    for (const [pid, p] of table) {
      if (ours.has(pid)) continue
      if (p.ppid === server.pid || ours.has(p.ppid)) {
        ours.add(pid)
        grew = true
      }
    }
  }
  const processes = []
  const zombies = []
  // The server's zygote lives as long as the server: not a container's.
  const zygotes = new Set(zygotesOf(server.pid))
  for (const pid of ours) {
    const p = table.get(pid)
    if (zygotes.has(pid) && p.state !== 'Z') continue
    if (p.state === 'Z') zombies.push(`${pid} ${p.comm}`)
    else processes.push(`${pid} ${p.comm}`)
  }
  for (const [pid, p] of table)
    if (p.state === 'Z' && p.comm === 'ns-oci' && !ours.has(pid)) zombies.push(`${pid} ${p.comm} (parent ${p.ppid})`)
  let mounts = []
  try {
    mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
  } catch {
    /* none */
  }
  let state = []
  try {
    state = readdirSync(stateRoot)
  } catch {
    /* not made yet */
  }
  return { processes, zombies, mounts, cgroups: cgroupList(), state }
}

/** After minus before, as counts and the new items; `zombies` is an absolute count. */
export function compare(before, after) {
  const added = (a, b) => {
    const seen = new Set(a)
    return b.filter((x) => !seen.has(x))
  }
  const d = {
    processes: after.processes.length - before.processes.length,
    mounts: after.mounts.length - before.mounts.length,
    cgroups: after.cgroups.length - before.cgroups.length,
    stateDirs: after.state.length - before.state.length,
    zombies: after.zombies.length,
  }
  const what = []
  if (d.processes > 0)
    what.push(`${d.processes} process(es): ${added(before.processes, after.processes).slice(0, 5).join(', ')}`)
  if (d.mounts > 0)
    what.push(
      `${d.mounts} mount(s): ${added(before.mounts, after.mounts)
        .slice(0, 3)
        .map((l) => l.split(' ').slice(3, 5).join(' '))
        .join('; ')}`,
    )
  if (d.cgroups > 0) what.push(`${d.cgroups} cgroup(s): ${added(before.cgroups, after.cgroups).slice(0, 5).join(', ')}`)
  if (d.stateDirs > 0)
    what.push(`${d.stateDirs} state dir(s): ${added(before.state, after.state).slice(0, 5).join(', ')}`)
  if (d.zombies > 0) what.push(`${d.zombies} zombie(s): ${after.zombies.slice(0, 5).join(', ')}`)
  return { deltas: d, leaked: what }
}

/** Compare, again and again for up to SETTLE_MS while anything is still above the baseline (teardown is partly asynchronous). */
export async function leakCheck(scratch, label, before, take) {
  const t0 = Date.now()
  let c
  let after
  for (;;) {
    after = take()
    c = compare(before, after)
    if (c.leaked.length === 0 || Date.now() - t0 >= SETTLE_MS || scratch.interrupted) break
    await sleep(100)
  }
  return {
    after: label,
    settledMs: Date.now() - t0,
    ...c.deltas,
    before: {
      processes: before.processes.length,
      mounts: before.mounts.length,
      cgroups: before.cgroups.length,
      stateDirs: before.state.length,
      zombies: before.zombies.length,
    },
    afterCounts: {
      processes: after.processes.length,
      mounts: after.mounts.length,
      cgroups: after.cgroups.length,
      stateDirs: after.state.length,
      zombies: after.zombies.length,
    },
    leaked: c.leaked,
  }
}

export function leakLine(l) {
  const sign = (x) => (x >= 0 ? `+${x}` : `${x}`)
  const settled = l.settledMs >= 100 ? ` (after ${(l.settledMs / 1000).toFixed(1)} s for the teardown to settle)` : ''
  return (
    `processes ${sign(l.processes)}, mounts ${sign(l.mounts)}, cgroups ${sign(l.cgroups)}, state dirs ${sign(l.stateDirs)}, zombies ${l.zombies}` +
    ` -> ${l.leaked.length ? `LEAKED: ${l.leaked.join('; ')}` : 'no leaks'}${settled}`
  )
}
