// The processes tools/bench-server.mjs starts and watches: stopping a process group (on the
// way out, synchronously; on the normal path, asynchronously), and the table of every
// process on the machine.

import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'

/** SIGTERM a process group we started, SIGKILL it after `graceMs`; synchronous. */
export function stopGroupSync(child, graceMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const alive = () => {
    try {
      process.kill(child.pid, 0)
      // A zombie still answers kill 0: look at its state.
      const st = readFileSync(`/proc/${child.pid}/stat`, 'utf8')
      return !/^\d+ \(.*\) Z /.test(st)
    } catch {
      return false
    }
  }
  try {
    process.kill(-child.pid, 'SIGTERM')
  } catch {
    /* gone */
  }
  const until = Date.now() + graceMs
  while (alive() && Date.now() < until) spawnSync('sleep', ['0.05'])
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    /* gone */
  }
}

/** The same, asynchronously, for the normal path. */
export async function stopGroup(child, graceMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  try {
    process.kill(-child.pid, 'SIGTERM')
  } catch {
    return
  }
  const t = setTimeout(() => {
    try {
      process.kill(-child.pid, 'SIGKILL')
    } catch {
      /* gone */
    }
  }, graceMs)
  await exited
  clearTimeout(t)
  // Whatever else is left in its group.
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    /* gone */
  }
}

/** Every process: pid -> { ppid, state, comm }. */
export function processTable() {
  const table = new Map()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8')
      const close = st.lastIndexOf(')')
      const comm = st.slice(st.indexOf('(') + 1, close)
      const [state, ppid] = st.slice(close + 2).split(' ')
      table.set(Number(d), { ppid: Number(ppid), state, comm })
    } catch {
      /* gone */
    }
  }
  return table
}
