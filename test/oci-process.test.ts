// The container's process as the runtime spec describes it beyond its command: I/O priority,
// CPU scheduling, execution domain (personality), umask and domainname — seen from inside and,
// where the kernel shows them only there, from the host — and a config without a process.
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

import { afterAll, describe, expect } from 'vitest'

import { itNs, itRoot } from './helpers.js'
import { ociWork } from './oci-bundle.js'

const o = ociWork('oci-process')
afterAll(() => o.cleanUp())

const host = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' }).stdout.trim()

/** Run `edit`'s bundle detached (the command sleeps), look at its process from the host, remove it. */
function detached(edit: (c: any) => void, look: (pid: number, id: string) => void) {
  const id = `proc-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  const r = o.run(['run', '--detach', '--bundle', o.bundle(['sleep', '30'], edit), id])
  expect(r.code, r.stderr).toBe(0)
  try {
    look(o.state(id).pid, id)
  } finally {
    o.run(['delete', '--force', id])
  }
}

describe('process.ioPriority', () => {
  itNs('the best-effort class at priority 6 is what the host sees of the container process', () => {
    detached(
      (c) => (c.process.ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 6 }),
      (pid) => expect(host('ionice', '-p', String(pid))).toBe('best-effort: prio 6'),
    )
  })

  itRoot('the realtime class, which needs the host privilege root has', () => {
    detached(
      (c) => (c.process.ioPriority = { class: 'IOPRIO_CLASS_RT', priority: 2 }),
      (pid) => expect(host('ionice', '-p', String(pid))).toBe('realtime: prio 2'),
    )
  })

  itNs('an exec --process gets its own', () => {
    detached(
      () => {},
      (_pid, id) => {
        const proc = join(o.work, 'exec-io.json')
        writeFileSync(
          proc,
          JSON.stringify({
            args: ['sleep', '30'],
            cwd: '/',
            env: ['PATH=/bin'],
            ioPriority: { class: 'IOPRIO_CLASS_IDLE', priority: 0 },
          }),
        )
        const pidFile = join(o.work, 'exec-io.pid')
        const r = o.run(['exec', '--detach', '--pid-file', pidFile, '--process', proc, id])
        expect(r.code, r.stderr).toBe(0)
        const execPid = spawnSync('cat', [pidFile], { encoding: 'utf8' }).stdout.trim()
        expect(host('ionice', '-p', execPid)).toBe('idle')
      },
    )
  })
})

describe('process.scheduler', () => {
  itNs('SCHED_BATCH with nice 5: the policy and the nice value of the container process', () => {
    detached(
      (c) => (c.process.scheduler = { policy: 'SCHED_BATCH', nice: 5 }),
      (pid) => {
        expect(host('chrt', '-p', String(pid))).toContain('SCHED_BATCH')
        expect(host('ps', '-o', 'ni=', '-p', String(pid))).toBe('5')
      },
    )
  })

  itRoot('SCHED_FIFO at priority 10, which needs the host privilege root has', () => {
    detached(
      (c) => {
        c.process.scheduler = { policy: 'SCHED_FIFO', priority: 10 }
        // In a v1 cpu cgroup a realtime task needs a realtime budget (v2 has none to give).
        if (!existsSync('/sys/fs/cgroup/cgroup.controllers')) c.linux.resources.cpu = { realtimeRuntime: 10000 }
      },
      (pid) => {
        const out = host('chrt', '-p', String(pid))
        expect(out).toContain('SCHED_FIFO')
        expect(out).toContain('priority: 10')
      },
    )
  })

  itNs('a bad policy or priority is refused naming the field', () => {
    for (const [sched, field] of [
      [{ policy: 'SCHED_NOPE' }, 'process.scheduler.policy'],
      [{ policy: 'SCHED_RR', priority: 0 }, 'process.scheduler.priority'],
    ] as const) {
      const r = o.run(['run', '--bundle', o.bundle(['true'], (c) => (c.process.scheduler = sched)), 'bad-sched'])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`${field}:`)
    }
  })
})

describe('linux.personality', () => {
  itNs('LINUX32: uname says i686 inside, and /proc/self/personality is PER_LINUX32', () => {
    const dir = o.bundle(
      ['sh', '-c', 'uname -m; cat /proc/self/personality'],
      (c) => (c.linux.personality = { domain: 'LINUX32' }),
    )
    const r = o.run(['run', '--bundle', dir, `pers-${process.pid}`])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('i686\n00000008\n')
    const bad = o.run([
      'run',
      '--bundle',
      o.bundle(['true'], (c) => (c.linux.personality = { domain: 'LINUX', flags: ['X'] })),
      'p2',
    ])
    expect(bad.stderr).toContain('linux.personality.flags:')
  })
})

describe('linux.intelRdt', () => {
  const resctrl = existsSync('/sys/fs/resctrl/schemata')
  itNs(
    resctrl
      ? 'with resctrl: the container runs in a group of its own'
      : 'without resctrl on the host: a clear error naming linux.intelRdt, nothing left',
    () => {
      const id = `rdt-${process.pid}`
      const dir = o.bundle(['true'], (c) => (c.linux.intelRdt = { closID: id, l3CacheSchema: '' }))
      const r = o.run(['run', '--bundle', dir, id])
      if (resctrl) {
        expect(r.code, r.stderr).toBe(0)
        expect(existsSync(`/sys/fs/resctrl/${id}`)).toBe(false)
        return
      }
      expect(r.code).toBe(1)
      expect(r.stderr).toContain('linux.intelRdt: this host has no resctrl filesystem at /sys/fs/resctrl')
      expect(o.ids()).not.toContain(id)
    },
  )
})

describe('process.user.umask and domainname', () => {
  itNs('the umask is the process one and what new files get; the domainname is the UTS one', () => {
    const dir = o.bundle(
      ['sh', '-c', 'umask; touch /tmp/f; stat -c %a /tmp/f; cat /proc/sys/kernel/domainname'],
      (c) => {
        c.process.user.umask = 0o27
        c.domainname = 'example.org'
        c.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid'] })
      },
    )
    const r = o.run(['run', '--bundle', dir, `umask-${process.pid}`])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('0027\n640\nexample.org\n')
  })
})

describe('a config without process', () => {
  itNs('create refuses it as runc does, naming process, and leaves nothing', () => {
    const id = `noproc-${process.pid}`
    const dir = o.bundle(['true'], (c) => delete c.process)
    const r = o.run(['create', '--bundle', dir, id])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('process: must not be empty')
    expect(o.ids()).not.toContain(id)
    expect(existsSync(join(o.root, id))).toBe(false)
  })
})
