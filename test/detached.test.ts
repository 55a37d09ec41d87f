// Containers that live on their own: the monitor keeps the log and exit status whatever happens
// to the process that started them; delete gives back everything.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect } from 'vitest'

import {
  buildSpec,
  create,
  createSpec,
  get,
  labelsOf,
  list,
  NsError,
  parseRunOptions,
  runDetached,
  spawnSpec,
} from '@ns/core'

import { alive, cli, hostNs, itNs, itRoot, repoRoot } from './helpers.js'

const root = mkdtempSync(join(tmpdir(), 'ns-detached-'))
afterAll(async () => {
  for (const s of list(root)) await get(s.id, root).delete({ force: true })
  rmSync(root, { recursive: true, force: true })
})

const sh = (script: string) => ['sh', '-c', script]
const monitorPid = (id: string) => JSON.parse(readFileSync(join(root, id, 'state.json'), 'utf8')).monitorPid as number

describe('detached containers', () => {
  itNs('create waits for start; the monitor logs stdout and stderr apart and records the exit code', async () => {
    const c = await create({ command: sh('echo out; echo err >&2; exit 4'), root, name: 'life' })
    expect(c.state().status).toBe('created')
    expect(c.logs()).toEqual([])
    await c.start()
    const exit = await c.wait()
    expect(exit).toMatchObject({ exitCode: 4, signal: null })
    expect(c.state().status).toBe('stopped')
    expect(c.logs().map((e) => [e.stream, e.log])).toEqual([
      ['stdout', 'out\n'],
      ['stderr', 'err\n'],
    ])
    expect(c.logs({ tail: 1 }).map((e) => e.log)).toEqual(['err\n'])
    expect(c.logs({ since: new Date(Date.now() + 60_000) })).toEqual([])
    await c.delete()
    expect(existsSync(join(root, 'life'))).toBe(false)
    expect(() => get('life', root)).toThrow('container "life" does not exist')
  })

  itNs('the log and the exit code survive the starting process being killed with SIGKILL', async () => {
    const script = `
      import { runDetached } from '@ns/core'
      const c = await runDetached({ command: ['sh', '-c', 'sleep 0.4; echo finished; exit 3'], root: ${JSON.stringify(root)}, name: 'orphaned' })
      console.log(c.id)
      setInterval(() => {}, 1000)
    `
    const starter = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const id = await new Promise<string>((res) => starter.stdout.once('data', (d: Buffer) => res(d.toString().trim())))
    starter.kill('SIGKILL')
    await new Promise((res) => starter.on('exit', res))
    const c = get(id, root)
    expect(c.state().status).toBe('running')
    expect(await c.wait()).toMatchObject({ exitCode: 3 })
    expect(c.logs().map((e) => e.log)).toEqual(['finished\n'])
    await c.delete()
  })

  itNs('stop sends SIGTERM, then SIGKILL to every process after the grace period', async () => {
    const c = await runDetached({
      command: sh('trap "" TERM; sleep 30 & sleep 30 & wait'),
      root,
      name: 'stubborn',
      init: false,
    })
    const pid = c.state().pid!
    const t0 = Date.now()
    const exit = await c.stop(300)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250)
    expect(exit.signal).toBe(9)
    expect(alive(pid)).toBe(false)
    await c.delete()
  })

  itNs('delete --force of a running container kills it, its monitor ends, nothing is left', async () => {
    const c = await runDetached({ command: ['sleep', '30'], root, name: 'forced' })
    const s = c.state()
    const mon = monitorPid('forced')
    expect(alive(mon)).toBe(true)
    await expect(c.delete()).rejects.toThrow('cannot delete container "forced": it is running')
    await c.delete({ force: true })
    expect(alive(s.pid!)).toBe(false)
    for (let i = 0; i < 100 && alive(mon); i++) await new Promise((r) => setTimeout(r, 20))
    expect(alive(mon)).toBe(false)
    expect(readdirSync(root)).not.toContain('forced')
  })

  itNs('remove: the folder goes away by itself once the container ends', async () => {
    await runDetached({ command: ['true'], root, name: 'ephemeral', remove: true })
    for (let i = 0; i < 100 && existsSync(join(root, 'ephemeral')); i++) await new Promise((r) => setTimeout(r, 20))
    expect(existsSync(join(root, 'ephemeral'))).toBe(false)
  })

  itNs("inspect shows the namespaces against the host's, the processes and the mounts", async () => {
    const c = await runDetached({ command: sh('sleep 30 & exec sleep 31'), root, name: 'inspected' })
    await new Promise((r) => setTimeout(r, 100))
    const i = c.inspect()
    expect(i.namespaces.net!.container).not.toBe(hostNs('net'))
    expect(i.namespaces.net!.host).toBe(hostNs('net'))
    expect(i.namespaces.pid!.shared).toBe(false)
    expect(i.pids.length).toBe(3) // init and two sleeps
    expect(i.mounts[0]).toBe('/')
    expect(i.config?.process.args).toEqual(sh('sleep 30 & exec sleep 31'))
    await c.delete({ force: true })
  })

  itNs('labels are kept as annotations; a full OCI runtime spec can be created as is', async () => {
    const c = await create({ command: ['true'], root, name: 'labelled', labels: { app: 'web', tier: 'front' } })
    expect(labelsOf(c.state().annotations)).toEqual({ app: 'web', tier: 'front' })
    await c.delete()
    const { spec } = buildSpec(parseRunOptions({ command: ['sh', '-c', 'echo from-spec'] }), 'fromspec')
    const s = await createSpec(spec, { id: 'fromspec', root })
    await s.start()
    expect((await s.wait()).exitCode).toBe(0)
    expect(s.logs().map((e) => e.log)).toEqual(['from-spec\n'])
    await s.delete()
    await expect(createSpec({ ...spec, process: { ...spec.process, args: [] } }, { root })).rejects.toThrow(
      'process.args: must not be empty',
    )
  })

  itNs('errors: a taken id, and a command that does not exist, are refused at create', async () => {
    const c = await create({ command: ['true'], root, name: 'taken' })
    await expect(create({ command: ['true'], root, name: 'taken' })).rejects.toThrow('container "taken" already exists')
    await c.delete()
    const e = await create({ command: ['no-such-command-here'], root, name: 'nocmd' }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(NsError)
    expect((e as NsError).message).toBe('exec "no-such-command-here": executable file not found in $PATH')
    expect(existsSync(join(root, 'nocmd'))).toBe(false)
  })

  itRoot(
    'a container that fails to start gives back its cgroup: a missing command (detached), a failing hook (foreground)',
    async () => {
      const cgroupsNamed = (name: string) =>
        readdirSync('/sys/fs/cgroup')
          .map((c) => [join('/sys/fs/cgroup', c, 'ns', name), join('/sys/fs/cgroup', 'ns', name)])
          .flat()
          .filter((p) => existsSync(p))
      await expect(
        create({ command: ['no-such-command-here'], root, name: 'nocmd-limited', memory: '64m', pidsLimit: 50 }),
      ).rejects.toThrow(/not found/)
      expect(cgroupsNamed('nocmd-limited')).toEqual([])
      const { spec } = buildSpec(parseRunOptions({ command: ['true'], memory: '64m' }), 'hookfail-limited')
      const withHook = { ...spec, hooks: { createRuntime: [{ path: '/bin/false' }] } }
      await expect(spawnSpec(withHook, { id: 'hookfail-limited' }).exited).rejects.toThrow(/createRuntime/)
      expect(cgroupsNamed('hookfail-limited')).toEqual([])
    },
  )

  itNs('the monitor stays small: its memory is reported', async () => {
    const c = await runDetached({ command: ['sleep', '30'], root, name: 'small' })
    const mon = monitorPid('small')
    const status = readFileSync(`/proc/${mon}/status`, 'utf8')
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)![1])
    const pss = Number(/Pss:\s+(\d+)/.exec(readFileSync(`/proc/${mon}/smaps_rollup`, 'utf8'))![1])
    console.log(
      `monitor memory: VmRSS ${kb('VmRSS')} KiB (private ${kb('RssAnon')} KiB, shared files ${kb('RssFile')} KiB), PSS ${pss} KiB`,
    )
    expect(kb('RssAnon')).toBeGreaterThan(0)
    expect(readlinkSync(`/proc/${mon}/exe`)).toMatch(/ns-oci/)
    await c.delete({ force: true })
  })
})

describe('exec into a running container', () => {
  itNs('exec joins every namespace of the container and sees what it sees', async () => {
    const c = await runDetached({
      command: ['sleep', '30'],
      root,
      name: 'execd',
      hostname: 'execbox',
      env: { FROM: 'container' },
    })
    const inside = c.inspect().namespaces
    const r = await c.execRun({
      command: sh(
        'hostname; echo "$FROM $EXTRA"; pwd; cat /proc/1/comm; for n in net pid mnt uts ipc user cgroup; do readlink /proc/self/ns/$n; done',
      ),
      env: { EXTRA: 'exec' },
      cwd: '/tmp',
    })
    expect(r.exitCode, r.stderr).toBe(0)
    const [host, env, cwd, pid1, ...ns] = r.stdout.trim().split('\n')
    expect(host).toBe('execbox')
    expect(env).toBe('container exec')
    expect(cwd).toBe('/tmp')
    expect(pid1).toBe('ns-oci')
    expect(ns).toEqual(['net', 'pid', 'mnt', 'uts', 'ipc', 'user', 'cgroup'].map((n) => inside[n]!.container))
    expect(ns[0]).not.toBe(hostNs('net'))
    const failed = await c.execRun({ command: sh('exit 6') })
    expect(failed.exitCode).toBe(6)
    await expect(c.execRun({ command: ['no-such-command-here'] })).rejects.toThrow('executable file not found')
    await c.delete({ force: true })
    await expect(c.execRun({ command: ['true'] })).rejects.toThrow('container "execd" does not exist')
  })

  itRoot("exec lands in the container's cgroup, under its limits", async () => {
    const c = await runDetached({ command: ['sleep', '30'], root, name: 'limited', pidsLimit: 5 })
    const inside = (await c.execRun({ command: ['cat', '/proc/self/cgroup'] })).stdout
    expect(
      inside
        .split('\n')
        .filter(Boolean)
        .every((l) => l.endsWith(':/')),
    ).toBe(true)
    const bomb = await c.execRun({
      command: sh('for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1 | head -1; echo done'),
    })
    expect(bomb.stdout + bomb.stderr).toMatch(/fork|Resource temporarily unavailable/i)
    expect(c.stats().pidsLimit).toBe(5)
    await c.delete({ force: true })
  })

  itNs('exec into a stopped container is refused', async () => {
    const c = await runDetached({ command: ['true'], root, name: 'done' })
    await c.wait()
    await expect(c.execRun({ command: ['true'] })).rejects.toThrow('cannot exec in container "done": it is stopped')
    await c.delete()
  })
})

describe('ns for detached containers', () => {
  const ns = (...args: string[]) => {
    const r = spawnSync(process.execPath, [cli, '--root', root, ...args], { encoding: 'utf8', timeout: 20_000 })
    return { code: r.status, stdout: r.stdout, stderr: r.stderr }
  }

  itNs('run -d, ps, logs, stop, wait, rm: as docker users type them', async () => {
    const r = ns(
      'run',
      '-d',
      '--name',
      'web',
      '--',
      'sh',
      '-c',
      'echo hello; trap "echo bye; exit 0" TERM; while :; do sleep 0.05; done',
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('web\n')
    expect(ns('ps').stdout).toMatch(/^web\s+running\s+\d+\s+\S+ \S+\s+sh -c echo hello/m)
    for (let i = 0; i < 50 && !ns('logs', 'web').stdout; i++) await new Promise((res) => setTimeout(res, 20))
    expect(ns('logs', 'web').stdout).toBe('hello\n')
    expect(ns('stop', '-t', '5', 'web').stdout).toBe('web\n')
    expect(ns('ps').stdout).not.toMatch(/^web/m)
    expect(ns('ps', '-a').stdout).toMatch(/^web\s+exited \(0\)/m)
    expect(ns('logs', 'web').stdout).toBe('hello\nbye\n')
    expect(ns('wait', 'web').stdout).toBe('0\n')
    expect(ns('rm', 'web').stdout).toBe('web\n')
    expect(ns('ps', '-a', '-q').stdout).toBe('')
    const missing = ns('logs', 'web')
    expect(missing.code).toBe(125)
    expect(missing.stderr).toBe('ns: container "web" does not exist\n')
  })

  itNs('ns exec runs a command in the container with its exit code', () => {
    expect(ns('run', '-d', '--name', 'box', '--hostname', 'inbox', '--', 'sleep', '30').code).toBe(0)
    const r = ns('exec', '-e', 'A=1', '-w', '/tmp', 'box', '--', 'sh', '-c', 'echo "$(hostname) $A $(pwd)"; exit 4')
    expect(r.stdout).toBe('inbox 1 /tmp\n')
    expect(r.code).toBe(4)
    expect(ns('exec', 'box', '--', 'no-such-command-here').code).toBe(127)
    expect(ns('rm', '-f', 'box').code).toBe(0)
  })

  itNs('logs -f follows until the container ends; kill -s sends the signal asked for', async () => {
    expect(
      ns(
        'run',
        '-d',
        '--name',
        'talker',
        '--',
        'sh',
        '-c',
        'trap "echo usr1; exit 5" USR1; echo up; while :; do sleep 0.05; done',
      ).code,
    ).toBe(0)
    const follow = spawn(process.execPath, [cli, '--root', root, 'logs', '-f', 'talker'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    follow.stdout.on('data', (d: Buffer) => (out += d.toString()))
    for (let i = 0; i < 100 && !out.includes('up'); i++) await new Promise((res) => setTimeout(res, 20))
    expect(ns('kill', '-s', 'USR1', 'talker').code).toBe(0)
    const code = await new Promise<number | null>((res) => follow.on('close', res))
    expect(code).toBe(0)
    expect(out).toBe('up\nusr1\n')
    expect(ns('wait', 'talker').stdout).toBe('5\n')
    expect(ns('rm', 'talker').code).toBe(0)
  })
})
