// linux.resources beyond memory, cpu and pids limits, seen in the container's cgroup files
// from the host: each is applied where the host has the controller for it, and refused with
// an error naming the field where it has not — never dropped.
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, describe, expect } from 'vitest'

import { itRoot } from './helpers.js'
import { ociWork } from './oci-bundle.js'

const o = ociWork('oci-resources')
afterAll(() => o.cleanUp())

const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers')
/** The host's cgroup2 hierarchy: the whole of a v2 host, a hybrid host's unified one. */
const cgroup2 = v2
  ? '/sys/fs/cgroup'
  : existsSync('/sys/fs/cgroup/unified/cgroup.controllers')
    ? '/sys/fs/cgroup/unified'
    : undefined
const hasV1 = (c: string) => !v2 && existsSync(`/sys/fs/cgroup/${c}/cgroup.procs`)
const inUnified = (c: string) =>
  cgroup2 !== undefined && readFileSync(`${cgroup2}/cgroup.controllers`, 'utf8').split(/\s+/).includes(c)

/** The container's folder for `controller` ('' for its cgroup2 folder), from /proc/PID/cgroup. */
function folder(pid: number, controller: string): string {
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [, names, path] = line.split(':') as [string, string, string]
    if (controller === '' && names === '') return join(cgroup2!, path)
    if (names.split(',').includes(controller)) return join('/sys/fs/cgroup', controller, path)
  }
  throw new Error(`no ${controller} cgroup for ${pid}`)
}

/** Run a detached container with `resources`, hand its pid to `look`, remove it. */
function withResources(resources: any, look: (pid: number) => void) {
  const id = `res-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  const dir = o.bundle(['sleep', '30'], (c) => (c.linux.resources = { ...c.linux.resources, ...resources }))
  const r = o.run(['run', '--detach', '--bundle', dir, id])
  expect(r.code, r.stderr).toBe(0)
  try {
    look(o.state(id).pid)
  } finally {
    o.run(['delete', '--force', id])
  }
}

/** The error a run with `resources` gets. */
function refusal(resources: any): string {
  const dir = o.bundle(['true'], (c) => (c.linux.resources = { ...c.linux.resources, ...resources }))
  const r = o.run(['run', '--bundle', dir, `res-bad-${process.pid}`])
  expect(r.code).not.toBe(0)
  return r.stderr
}

const read = (pid: number, controller: string, file: string) =>
  readFileSync(join(folder(pid, controller), file), 'utf8').trim()

describe('linux.resources.memory', () => {
  itRoot(
    v2
      ? 'cgroup v2: swappiness, disableOOMKiller, kernel and kernelTCP are refused naming each'
      : 'cgroup v1: swappiness, disableOOMKiller, kernelTCP and useHierarchy are in the memory cgroup',
    () => {
      if (v2) {
        for (const [k, v] of [
          ['swappiness', 10],
          ['disableOOMKiller', true],
          ['kernel', 1 << 26],
          ['kernelTCP', 1 << 24],
        ] as const)
          expect(refusal({ memory: { [k]: v } })).toContain(`linux.resources.memory.${k}: cgroup v2 has no`)
        return
      }
      withResources(
        { memory: { limit: 1 << 28, swappiness: 10, disableOOMKiller: true, kernelTCP: 1 << 24, useHierarchy: true } },
        (pid) => {
          expect(read(pid, 'memory', 'memory.swappiness')).toBe('10')
          expect(read(pid, 'memory', 'memory.oom_control')).toMatch(/^oom_kill_disable 1$/m)
          expect(read(pid, 'memory', 'memory.kmem.tcp.limit_in_bytes')).toBe(String(1 << 24))
          expect(read(pid, 'memory', 'memory.use_hierarchy')).toBe('1')
        },
      )
    },
  )

  itRoot('memory.kernel: applied where the kernel enforces it, and otherwise refused naming it', () => {
    const kmem = !v2 && hasV1('memory')
    if (!kmem) {
      expect(refusal({ memory: { kernel: 1 << 26 } })).toContain('linux.resources.memory.kernel:')
      return
    }
    // Linux 5.16 and later take the value and ignore it; before, it is the limit.
    const dir = o.bundle(['true'], (c) => (c.linux.resources.memory = { kernel: 1 << 26 }))
    const r = o.run(['run', '--bundle', dir, `kmem-${process.pid}`])
    if (r.code === 0) return
    expect(r.stderr).toContain('linux.resources.memory.kernel: this kernel does not enforce kernel memory limits')
  })
})

describe('linux.resources.cpu', () => {
  itRoot('idle, burst and (v1) the realtime budget are in the cpu cgroup', () => {
    const cpu: any = { idle: 1, burst: 1000, quota: 50000, period: 100000 }
    if (!v2) Object.assign(cpu, { realtimeRuntime: 20000, realtimePeriod: 1000000 })
    withResources({ cpu }, (pid) => {
      const c = v2 ? '' : 'cpu'
      expect(read(pid, c, 'cpu.idle')).toBe('1')
      expect(read(pid, c, v2 ? 'cpu.max.burst' : 'cpu.cfs_burst_us')).toBe('1000')
      if (!v2) {
        expect(read(pid, c, 'cpu.rt_runtime_us')).toBe('20000')
        expect(read(pid, c, 'cpu.rt_period_us')).toBe('1000000')
      }
    })
    if (v2)
      expect(refusal({ cpu: { realtimeRuntime: 1000 } })).toContain(
        'linux.resources.cpu.realtimeRuntime: cgroup v2 has no',
      )
  })
})

describe('linux.resources.hugepageLimits', () => {
  itRoot('a limit per page size, in the hugetlb cgroup (on a hybrid host, its cgroup2 folder)', () => {
    const where = hasV1('hugetlb') ? 'v1' : inUnified('hugetlb') ? 'cgroup2' : undefined
    if (!where) {
      expect(refusal({ hugepageLimits: [{ pageSize: '2MB', limit: 4 << 20 }] })).toContain(
        'linux.resources.hugepageLimits[0]:',
      )
      return
    }
    withResources({ hugepageLimits: [{ pageSize: '2MB', limit: 4 << 20 }] }, (pid) => {
      if (where === 'v1') expect(read(pid, 'hugetlb', 'hugetlb.2MB.limit_in_bytes')).toBe(String(4 << 20))
      else expect(read(pid, '', 'hugetlb.2MB.max')).toBe(String(4 << 20))
    })
    expect(refusal({ hugepageLimits: [{ pageSize: '2M', limit: 1 }] })).toContain(
      'linux.resources.hugepageLimits[0].pageSize:',
    )
  })
})

describe('linux.resources.unified', () => {
  itRoot('cgroup v2 files written as they are (on a hybrid host in its cgroup2 folder); bad keys refused', () => {
    if (!cgroup2) {
      expect(refusal({ unified: { 'cgroup.max.descendants': '3' } })).toContain(
        'linux.resources.unified.cgroup.max.descendants:',
      )
      return
    }
    withResources({ unified: { 'cgroup.max.descendants': '3', 'cgroup.max.depth': '2' } }, (pid) => {
      expect(read(pid, '', 'cgroup.max.descendants')).toBe('3')
      expect(read(pid, '', 'cgroup.max.depth')).toBe('2')
    })
    expect(refusal({ unified: { 'cgroup.procs': '1' } })).toContain(
      'linux.resources.unified.cgroup.procs: is the runtime',
    )
    expect(refusal({ unified: { '../escape': '1' } })).toContain(
      'linux.resources.unified.../escape: is not a file of a cgroup',
    )
  })
})

describe('linux.resources.network and rdma', () => {
  itRoot('classID and priorities where the host has net_cls and net_prio; otherwise an error naming each', () => {
    if (hasV1('net_cls')) {
      withResources({ network: { classID: 0x100001 } }, (pid) =>
        expect(read(pid, 'net_cls', 'net_cls.classid')).toBe(String(0x100001)),
      )
    } else {
      expect(refusal({ network: { classID: 0x100001 } })).toContain('linux.resources.network.classID:')
    }
    if (!hasV1('net_prio')) {
      expect(refusal({ network: { priorities: [{ name: 'lo', priority: 3 }] } })).toContain(
        'linux.resources.network.priorities[0]:',
      )
    }
  })

  itRoot('rdma limits where the host has the rdma controller; otherwise an error naming the device', () => {
    if (hasV1('rdma') || inUnified('rdma')) return
    expect(refusal({ rdma: { mlx5_1: { hcaHandles: 3, hcaObjects: 1000 } } })).toContain('linux.resources.rdma.mlx5_1:')
  })
})

describe('linux.resources.blockIO', () => {
  itRoot('a read throttle on the disk of the root filesystem', () => {
    const dev = statSync('/').dev
    const major = Math.floor(dev / 256) & 0xfff
    const minor = (dev & 0xff) | ((Math.floor(dev / 4096) & 0xfff00) >>> 0)
    const throttle = { throttleReadBpsDevice: [{ major, minor, rate: 1 << 20 }] }
    withResources({ blockIO: throttle }, (pid) => {
      if (v2) expect(read(pid, '', 'io.max')).toContain(`${major}:${minor} rbps=${1 << 20}`)
      else expect(read(pid, 'blkio', 'blkio.throttle.read_bps_device')).toBe(`${major}:${minor} ${1 << 20}`)
    })
  })
})
