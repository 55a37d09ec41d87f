// The verbs engines call beyond the lifecycle: pause and resume (the freezer), update (the
// limits of a running container), events (figures and OOM kills as runc prints them) — each
// on a real container, seen from the host (its cgroup files, its progress) and in its state.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, describe, expect } from 'vitest'

import { alive, itRoot } from './helpers.js'
import { ociBin, ociWork, until } from './oci-bundle.js'

const o = ociWork('oci-verbs')
afterAll(() => o.cleanUp())

const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers')

/** The container's folder for a v1 controller, or its v2 folder. */
function folder(pid: number, controller: string): string {
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [, names, path] = line.split(':') as [string, string, string]
    if (v2 && names === '') return join('/sys/fs/cgroup', path)
    if (!v2 && names.split(',').includes(controller)) return join('/sys/fs/cgroup', controller, path)
  }
  throw new Error(`no ${controller} cgroup for ${pid}`)
}

/** A detached container that writes a counter to the host's folder of the test every 20 ms. */
function ticking(id: string, edit: (c: any) => void = () => {}): { pid: number; ticks: () => string } {
  const file = join(o.work, `${id}.ticks`)
  const dir = o.bundle(
    ['sh', '-c', `i=0; while :; do i=$((i+1)); echo $i > /data/${id}.ticks; usleep 20000; done`],
    (c) => {
      c.mounts.push({ destination: '/data', type: 'bind', source: o.work, options: ['rbind'] })
      edit(c)
    },
  )
  const r = o.run(['run', '--detach', '--bundle', dir, id])
  expect(r.code, r.stderr).toBe(0)
  return { pid: o.state(id).pid, ticks: () => (existsSync(file) ? readFileSync(file, 'utf8').trim() : '') }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('pause and resume', () => {
  itRoot('pause freezes every process (the state says paused, nothing moves); resume thaws them', async () => {
    const id = `pause-${process.pid}`
    const { pid, ticks } = ticking(id)
    expect(await until(() => ticks() !== '')).toBe(true)
    expect(o.run(['pause', id]).code).toBe(0)
    expect(o.state(id).status).toBe('paused')
    if (!v2) expect(readFileSync(join(folder(pid, 'freezer'), 'freezer.state'), 'utf8').trim()).toBe('FROZEN')
    else expect(readFileSync(join(folder(pid, ''), 'cgroup.events'), 'utf8')).toMatch(/^frozen 1$/m)
    const frozenAt = ticks()
    await sleep(300)
    expect(ticks()).toBe(frozenAt)
    // Nothing runs in a paused container, nor may be started in it.
    const ex = o.run(['exec', id, 'true'])
    expect(ex.code).toBe(1)
    expect(ex.stderr).toContain('it is paused')
    expect(o.run(['pause', id]).stderr).toContain(`cannot pause container "${id}": it is paused`)
    expect(o.run(['delete', id]).stderr).toContain('it is paused')
    expect(o.run(['resume', id]).code).toBe(0)
    expect(o.state(id).status).toBe('running')
    expect(await until(() => ticks() !== frozenAt)).toBe(true)
    expect(o.run(['resume', id]).stderr).toContain(`cannot resume container "${id}": it is running`)
    // A paused container killed with SIGKILL dies (it is thawed for it).
    expect(o.run(['pause', id]).code).toBe(0)
    expect(o.run(['kill', id, 'KILL']).code).toBe(0)
    expect(await until(() => !alive(pid))).toBe(true)
    expect(o.state(id).status).toBe('stopped')
    expect(o.run(['pause', id]).stderr).toContain('it is stopped')
    expect(o.run(['delete', id]).code).toBe(0)
  })

  itRoot('delete --force of a paused container removes it and its cgroup', async () => {
    const id = `pause-del-${process.pid}`
    const { pid } = ticking(id)
    const cg = folder(pid, 'freezer')
    expect(o.run(['pause', id]).code).toBe(0)
    expect(o.run(['delete', '--force', id]).code).toBe(0)
    expect(alive(pid)).toBe(false)
    expect(existsSync(cg)).toBe(false)
  })
})

describe('update', () => {
  itRoot('flags and --resources from stdin change the limits of the running container', () => {
    const id = `upd-${process.pid}`
    const { pid } = ticking(id, (c) => (c.linux.resources.memory = { limit: 128 << 20, swap: 128 << 20 }))
    const mem = (v1: string, v2file: string) =>
      readFileSync(join(folder(pid, 'memory'), v2 ? v2file : v1), 'utf8').trim()
    // Memory and memory-plus-swap raised together (swap first, as the kernel needs on v1).
    let r = o.run(['update', '--memory', '256m', '--memory-swap', '512m', id])
    expect(r.code, r.stderr).toBe(0)
    expect(mem('memory.limit_in_bytes', 'memory.max')).toBe(String(256 << 20))
    expect(mem('memory.memsw.limit_in_bytes', 'memory.swap.max')).toBe(String(v2 ? 256 << 20 : 512 << 20))
    // containerd's way: linux.resources on stdin.
    r = o.run(['update', '--resources', '-', id], {
      input: JSON.stringify({ pids: { limit: 77 }, cpu: { shares: 512 } }),
    })
    expect(r.code, r.stderr).toBe(0)
    expect(readFileSync(join(folder(pid, 'pids'), 'pids.max'), 'utf8').trim()).toBe('77')
    const kept = JSON.parse(readFileSync(join(o.root, id, 'config.json'), 'utf8')).linux.resources
    expect(kept.pids.limit).toBe(77)
    expect(kept.memory.limit).toBe(256 << 20)
    // What cannot be: a bad value, nothing to do, a stopped container.
    expect(o.run(['update', '--memory', '1k', id]).stderr).toContain('linux.resources.memory.limit: must be at least')
    expect(o.run(['update', id]).stderr).toContain('resources: nothing to update')
    expect(o.run(['update', '--resources', '-', id], { input: '{"memory": 3}' }).stderr).toContain(
      'resources: is not a runtime spec',
    )
    expect(o.run(['delete', '--force', id]).code).toBe(0)
  })
})

describe('events', () => {
  itRoot('--stats prints one line of runc’s figures: cpu, memory, pids', async () => {
    const id = `ev-${process.pid}`
    ticking(id)
    await sleep(100)
    const r = o.run(['events', '--stats', id])
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines).toHaveLength(1)
    const ev = JSON.parse(lines[0]!)
    expect(ev).toMatchObject({ type: 'stats', id })
    expect(ev.data.cpu.usage.total).toBeGreaterThan(0)
    expect(ev.data.memory.usage.usage).toBeGreaterThan(0)
    expect(ev.data.pids.current).toBeGreaterThanOrEqual(2)
    expect(o.run(['delete', '--force', id]).code).toBe(0)
  })

  itRoot(
    'streaming: figures every interval and an oom line when the OOM killer kills in it; it ends with the container',
    async () => {
      const id = `ev-oom-${process.pid}`
      const dir = o.bundle(['sh', '-c', 'sleep 0.5; head -c 200m /dev/zero | tail > /dev/null; sleep 0.5'], (c) => {
        c.linux.resources.memory = { limit: 32 << 20, swap: 32 << 20 }
      })
      expect(o.run(['run', '--detach', '--bundle', dir, id]).code).toBe(0)
      const ev = spawn(ociBin, ['--root', o.root, 'events', '--interval', '200ms', id], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let out = ''
      ev.stdout.on('data', (d: Buffer) => (out += d.toString()))
      const code = await new Promise<number | null>((res) => ev.on('exit', res))
      expect(code).toBe(0)
      const events = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
      expect(events.filter((e) => e.type === 'stats').length).toBeGreaterThanOrEqual(2)
      expect(events).toContainEqual({ type: 'oom', id })
      expect(o.run(['delete', id]).code).toBe(0)
    },
  )
})
