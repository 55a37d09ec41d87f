// The machine tools/bench.mjs runs on, for its report and its JSON: kernel, CPUs, memory,
// cgroup layout, and the versions of node, @ns/core and every tool it measures.

import { existsSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { hostFigures, isRoot, repoRoot, versionOf } from '../bench-common.mjs'
import { HYBRID_CONTROLLERS } from './oci.mjs'

export function describeMachine(nsOciBin) {
  return {
    kernel: `${os.type()} ${os.release()} (${os.version()})`,
    arch: os.arch(),
    ...hostFigures(),
    node: process.version,
    nsCore: (() => {
      try {
        return JSON.parse(readFileSync(path.join(repoRoot, 'packages', 'core', 'package.json'), 'utf8')).version
      } catch {
        return 'unknown'
      }
    })(),
    runc: versionOf('runc'),
    crun: versionOf('crun'),
    bwrap: versionOf('bwrap'),
    unshare: versionOf('unshare'),
    nsOci: nsOciBin ? versionOf(nsOciBin) : 'not built',
    cgroups: existsSync('/sys/fs/cgroup/cgroup.controllers')
      ? 'cgroup v2 (unified)'
      : existsSync(HYBRID_CONTROLLERS)
        ? 'hybrid (cgroup v1 controllers + cgroup2 at /sys/fs/cgroup/unified)'
        : 'cgroup v1',
    user: isRoot ? 'root' : `uid ${process.getuid?.()}`,
  }
}

export function printMachine(machine) {
  console.log('')
  console.log('machine:')
  console.log(`  kernel   ${machine.kernel} ${machine.arch}`)
  console.log(`  cpus     ${machine.cpus} x ${machine.cpuModel}, ${machine.memory}`)
  console.log(`  cgroups  ${machine.cgroups}`)
  console.log(`  node     ${machine.node}, @ns/core ${machine.nsCore}, running as ${machine.user}`)
  console.log(`  runc     ${machine.runc}`)
  console.log(`  crun     ${machine.crun}`)
  console.log(`  bwrap    ${machine.bwrap}`)
  console.log(`  unshare  ${machine.unshare}`)
  console.log(`  ns-oci   ${machine.nsOci}`)
}
