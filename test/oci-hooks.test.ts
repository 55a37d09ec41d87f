// OCI hooks as the runtime spec's lifecycle has them: the state each reads on stdin, poststart
// after the command is executed and before `start` returns, poststart and poststop failures
// as warnings (the other hooks and the lifecycle go on), and the failure of any hook before
// the command runs failing the operation with nothing of the container left behind.
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, describe, expect } from 'vitest'

import { alive, isRoot, itNs } from './helpers.js'
import { ociWork, until } from './oci-bundle.js'

const o = ociWork('oci-hooks')
afterAll(() => o.cleanUp())

/** A hook that appends its name and the state it read to `log` (a host path). */
const record = (name: string, log: string) => ({
  path: '/bin/sh',
  args: ['sh', '-c', `s=$(cat); echo "${name} $s" >> ${log}`],
})
const failing = (name: string, log: string) => ({
  path: '/bin/sh',
  args: ['sh', '-c', `cat >/dev/null; echo "${name}" >> ${log}; exit 3`],
})

function lines(log: string): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []
}
function states(log: string): Record<string, any> {
  return Object.fromEntries(
    lines(log)
      .filter((l) => l.includes('{'))
      .map((l) => [l.split(' ')[0], JSON.parse(l.slice(l.indexOf(' ') + 1))]),
  )
}

/** Every folder named `name` under the host's cgroup hierarchies. */
function cgroupFolders(name: string): string[] {
  const out: string[] = []
  const walk = (d: string, depth: number) => {
    let entries: string[] = []
    try {
      entries = readdirSync(d)
    } catch {
      return
    }
    for (const e of entries) {
      const p = join(d, e)
      if (e === name) out.push(p)
      else if (depth < 3 && !e.includes('.')) walk(p, depth + 1)
    }
  }
  walk('/sys/fs/cgroup', 0)
  return out
}

describe('hooks: the state they are told', () => {
  itNs(
    'prestart, createRuntime, createContainer and startContainer see created; poststart running; poststop stopped',
    async () => {
      const id = `hstate-${process.pid}`
      const log = join(o.work, `${id}.log`)
      const dir = o.bundle(['sh', '-c', 'exit 0'], (c) => {
        c.mounts.push({ destination: '/data', type: 'bind', source: o.work, options: ['rbind'] })
        c.hooks = {
          prestart: [record('prestart', log)],
          createRuntime: [record('createRuntime', log)],
          createContainer: [record('createContainer', log)],
          startContainer: [record('startContainer', `/data/${id}.log`)],
          poststart: [record('poststart', log)],
          poststop: [record('poststop', log)],
        }
      })
      expect(o.run(['create', '--bundle', dir, id]).code).toBe(0)
      const pid = o.state(id).pid
      expect(o.run(['start', id]).code).toBe(0)
      await until(() => o.state(id).status === 'stopped')
      expect(o.run(['delete', id]).code).toBe(0)
      const s = states(log)
      for (const k of ['prestart', 'createRuntime', 'createContainer', 'startContainer'])
        expect(s[k], k).toMatchObject({ ociVersion: '1.2.0', id, status: 'created', pid, bundle: dir })
      expect(s.poststart).toMatchObject({ id, status: 'running', pid })
      expect(s.poststop).toMatchObject({ id, status: 'stopped' })
    },
  )
})

describe('hooks: poststart', () => {
  itNs('runs once the command is executed and before start returns', () => {
    const id = `hpost-${process.pid}`
    const log = join(o.work, `${id}.log`)
    const dir = o.bundle(['sleep', '30'], (c) => {
      // The hook reads what the container's process is running now.
      c.hooks = {
        poststart: [
          {
            path: '/bin/sh',
            args: ['sh', '-c', `pid=$(cat | sed 's/.*"pid":\\([0-9]*\\).*/\\1/'); cat /proc/$pid/comm >> ${log}`],
          },
        ],
      }
    })
    expect(o.run(['create', '--bundle', dir, id]).code).toBe(0)
    expect(existsSync(log)).toBe(false)
    expect(o.run(['start', id]).code).toBe(0)
    // Read as soon as start has returned: the hook has run, and saw the command, not the runtime.
    expect(lines(log)).toEqual(['sleep'])
    expect(o.run(['delete', '--force', id]).code).toBe(0)
  })

  itNs('a failing poststart hook is a warning: the next one runs, start succeeds, the container runs', () => {
    const id = `hpostfail-${process.pid}`
    const log = join(o.work, `${id}.log`)
    const engineLog = join(o.work, `${id}.json`)
    const dir = o.bundle(['sleep', '30'], (c) => {
      c.hooks = { poststart: [failing('first', log), record('second', log)] }
    })
    expect(o.run(['create', '--bundle', dir, id]).code).toBe(0)
    const r = o.run(['--log', engineLog, '--log-format', 'json', 'start', id])
    expect(r.code).toBe(0)
    expect(r.stderr).toContain('ns-oci: warning: hook hooks.poststart[0] (/bin/sh) failed')
    const logged = readFileSync(engineLog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(logged).toEqual([
      expect.objectContaining({ level: 'warning', msg: expect.stringContaining('hooks.poststart[0]') }),
    ])
    expect(lines(log).map((l) => l.split(' ')[0])).toEqual(['first', 'second'])
    expect(o.state(id).status).toBe('running')
    expect(o.run(['delete', '--force', id]).code).toBe(0)
  })

  itNs('in a foreground run too: the warning is printed and the command goes on to its exit code', () => {
    const log = join(o.work, `hfg-${process.pid}.log`)
    const dir = o.bundle(
      ['sh', '-c', 'exit 5'],
      (c) => (c.hooks = { poststart: [failing('fg', log)], poststop: [record('stop', log)] }),
    )
    const r = o.run(['run', '--bundle', dir, `hfg-${process.pid}`])
    expect(r.code).toBe(5)
    expect(r.stderr).toContain('warning: hook hooks.poststart[0] (/bin/sh) failed')
    expect(lines(log).map((l) => l.split(' ')[0])).toEqual(['fg', 'stop'])
  })
})

describe('hooks: poststop', () => {
  itNs('a failing poststop hook is a warning: the next one runs and delete removes the container', async () => {
    const id = `hstop-${process.pid}`
    const log = join(o.work, `${id}.log`)
    const dir = o.bundle(['true'], (c) => (c.hooks = { poststop: [failing('first', log), record('second', log)] }))
    expect(o.run(['run', '--detach', '--bundle', dir, id]).code).toBe(0)
    await until(() => o.state(id).status === 'stopped')
    const r = o.run(['delete', id])
    expect(r.code).toBe(0)
    expect(r.stderr).toContain('ns-oci: warning: hook hooks.poststop[0] (/bin/sh) failed')
    expect(lines(log).map((l) => l.split(' ')[0])).toEqual(['first', 'second'])
    expect(o.ids()).not.toContain(id)
  })
})

describe('hooks: a failure before the command runs', () => {
  for (const point of ['prestart', 'createRuntime', 'createContainer'] as const) {
    itNs(`a failing ${point} hook fails create, leaves no state, process or cgroup, and runs poststop`, () => {
      const id = `hfail-${point}-${process.pid}`
      const log = join(o.work, `${id}.log`)
      const dir = o.bundle(['sleep', '30'], (c) => {
        c.hooks = { [point]: [failing(point, log)], poststop: [record('poststop', log)] }
        // A cgroup of its own (with root: a normal user here has none delegated), to look for afterwards.
        if (isRoot) {
          c.linux.cgroupsPath = `/ns-test-${id}`
          c.linux.resources = { pids: { limit: 32 } }
        }
      })
      const r = o.run(['create', '--bundle', dir, id])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`hook hooks.${point}[0] (/bin/sh) failed`)
      expect(o.ids()).not.toContain(id)
      expect(existsSync(join(o.root, id))).toBe(false)
      if (isRoot) expect(cgroupFolders(`ns-test-${id}`)).toEqual([])
      expect(lines(log).map((l) => l.split(' ')[0])).toEqual([point, 'poststop'])
      expect(states(log).poststop).toMatchObject({ id, status: 'stopped' })
    })
  }

  itNs('a failing startContainer hook fails start: the container stops, delete removes it', async () => {
    const id = `hfail-start-${process.pid}`
    const log = join(o.work, `${id}.log`)
    const dir = o.bundle(['sleep', '30'], (c) => {
      c.mounts.push({ destination: '/data', type: 'bind', source: o.work, options: ['rbind'] })
      c.hooks = {
        startContainer: [failing('startContainer', `/data/${id}.log`)],
        poststart: [record('poststart', log)],
      }
    })
    expect(o.run(['create', '--bundle', dir, id]).code).toBe(0)
    const pid = o.state(id).pid
    const r = o.run(['start', id])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('hook hooks.startContainer[0] (/bin/sh) failed')
    expect(await until(() => !alive(pid))).toBe(true)
    expect(o.state(id).status).toBe('stopped')
    // The command never ran, and neither did poststart.
    expect(lines(log)).toEqual(['startContainer'])
    expect(o.run(['delete', id]).code).toBe(0)
    expect(o.ids()).not.toContain(id)
  })
})
