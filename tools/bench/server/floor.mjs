// The kernel's floor in tools/bench-server.mjs: tools/bench-floor.c (namespaces, id maps,
// pivot_root, proc, exec; no runtime) compiled and run at the server's concurrency, what no
// runtime can go below on this machine.

import { spawn, spawnSync } from 'node:child_process'
import path from 'node:path'
import { firstLine, FIXTURE, repoRoot, round, which } from '../../bench-common.mjs'
import { now } from './client.mjs'
import { machineBusy } from './cpu.mjs'

/**
 * tools/bench-floor.c, compiled here and run by `workers` processes at once: containers/s and
 * CPU per container on the whole machine, or why it was skipped.
 */
export async function kernelFloor(scratch, containers, workers) {
  const cc = which('cc') ?? which('gcc')
  if (!cc) return { skipped: 'no C compiler (cc) to build tools/bench-floor.c' }
  const bin = path.join(scratch.tmp, 'bench-floor')
  const built = spawnSync(cc, ['-O2', '-o', bin, path.join(repoRoot, 'tools', 'bench-floor.c')], { encoding: 'utf8' })
  if (built.status !== 0) return { skipped: `cc failed: ${firstLine(built.stderr)}` }
  // Root maps the child's root to a host id far above the ranges ns leases; anyone else to itself.
  const hostId = process.getuid() === 0 ? 0x60000000 + 65536 * 4096 : process.getuid()
  const each = Math.ceil(containers / workers)
  const one = () =>
    new Promise((resolve) => {
      const child = spawn(bin, [FIXTURE, String(each), String(hostId)], { stdio: ['ignore', 'ignore', 'pipe'] })
      let err = ''
      child.stderr.on('data', (d) => (err += d))
      child.on('close', (code) => resolve(code === 0 ? null : firstLine(err) || `exit ${code}`))
      child.on('error', (e) => resolve(e.message))
    })
  const busy0 = machineBusy()
  const t0 = now()
  const failures = (await Promise.all(Array.from({ length: workers }, one))).filter(Boolean)
  const wallMs = now() - t0
  if (failures.length) return { skipped: `failed: ${failures[0]}` }
  const n = each * workers
  return {
    containers: n,
    concurrency: workers,
    containersPerSecond: round(n / (wallMs / 1000), 1),
    cpuPerContainerMs: round((machineBusy() - busy0) / n),
  }
}
