// CPU accounting of tools/bench-server.mjs: the CPU time of the server, of its ns-oci helpers
// (reaped by it or by its zygotes), of this client and of the whole machine, per container.

import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { firstLine, round } from '../../bench-common.mjs'
import { processTable } from './processes.mjs'

export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
  const n = Number(firstLine(r.stdout))
  return Number.isInteger(n) && n > 0 ? n : 100
})()

/** CPU time of a process and of its reaped children (the ns-oci helpers of POST /v1/run), in ms. */
export function processCpu(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = st
      .slice(st.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number)
    // After the comm: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
    return { self: ((f[11] + f[12]) * 1000) / CLK_TCK, children: ((f[13] + f[14]) * 1000) / CLK_TCK }
  } catch {
    return { self: NaN, children: NaN }
  }
}

/** CPU time spent by the whole machine, all CPUs, in ms: user, nice, system, irq, softirq, steal. */
export function machineBusy() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    return ((f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0)) * 1000) / CLK_TCK
  } catch {
    return NaN
  }
}

/**
 * The zygotes of a server: its children running `ns-oci zygote`, which fork its helpers (and
 * reap them, so the helpers' CPU time is theirs, not the server's).
 */
export function zygotesOf(serverPid) {
  const found = []
  for (const [pid, p] of processTable()) {
    if (p.ppid !== serverPid || p.comm !== 'ns-oci') continue
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1] === 'zygote') found.push(pid)
    } catch {
      /* gone */
    }
  }
  return found
}

/** The server's CPU: its own, and that of its helpers (reaped by it, or by its zygotes). */
export function serverCpu(serverPid) {
  const cpu = processCpu(serverPid)
  for (const z of zygotesOf(serverPid)) {
    const zc = processCpu(z)
    cpu.children += zc.self + zc.children
  }
  return cpu
}

export function cpuMark(serverPid) {
  return { machine: machineBusy(), server: serverCpu(serverPid), client: process.cpuUsage() }
}

/** CPU per container between two marks, in ms: the server's node, its helpers, us, the rest. */
export function cpuPerContainer(a, b, n) {
  if (!n) return null
  const machine = b.machine - a.machine
  const serverNode = b.server.self - a.server.self
  const helpers = b.server.children - a.server.children
  const cu = process.cpuUsage(a.client)
  const client = (cu.user + cu.system) / 1000
  const other = machine - serverNode - helpers - client
  const per = (x) => round(x / n)
  return {
    totalMs: per(machine),
    serverNodeMs: per(serverNode),
    helpersMs: per(helpers),
    clientMs: per(client),
    otherMs: per(other),
  }
}
