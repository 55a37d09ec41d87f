// Warm sandboxes (`pool`): containers set up ahead of time that wait for their command. Each
// run must be as isolated as a cold one — nothing of one run is seen by the next — and behave
// as `run` does; a pool that is closed leaves nothing behind.
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { describe, expect } from 'vitest'

import { NsError, pool, run, type RunResult } from '@ns/core'

import native from '@ns/native'

import { launchHelper, type HelperEvent } from '../packages/core/src/container.js'
import { childPids, fixtureRootfs, hostMountinfo, isRoot, itNs, itRoot } from './helpers.js'

const sh = (script: string) => ['sh', '-c', script]
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Until `check` holds, for up to 3 s (a helper ends a moment after its run is reported). */
async function eventually(check: () => boolean): Promise<boolean> {
  for (const until = Date.now() + 3000; Date.now() < until; await sleep(20)) if (check()) return true
  return check()
}

/** The namespaces a run's output names (`readlink /proc/self/ns/*`), by type. */
function namespaces(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .split('\n')
      .filter((l) => /^[a-z]+:\[\d+\]$/.test(l))
      .map((l) => [l.split(':')[0]!, l]),
  )
}

/** Host PIDs of the living processes whose command line is `cmd`. */
function processesRunning(cmd: string): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ').trim() === cmd) {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
        if (stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') out.push(Number(d))
      }
    } catch {
      // gone meanwhile
    }
  }
  return out
}

/** The folders of ns's cgroups: `<controller>/ns/*` on v1, `ns/*` on v2. */
function nsCgroups(): string[] {
  const roots = existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? ['/sys/fs/cgroup']
    : readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c))
  return roots.flatMap((r) => {
    try {
      return readdirSync(join(r, 'ns')).map((d) => join(r, 'ns', d))
    } catch {
      return []
    }
  })
}

/** A result without what differs between two runs of the same command by nature. */
const comparable = ({ warnings: _w, ...r }: RunResult) => r

describe('pool: warm sandboxes, one command each', () => {
  itNs(
    'consecutive runs are isolated: a file, a process and IPC objects left by one are not seen by the next, whose namespaces are all new',
    async () => {
      // The host sandbox: util-linux's ipcmk and ipcs from the host's /usr.
      const p = pool({ size: 2 })
      try {
        await p.warm()
        const first = await p.run(
          sh(
            'echo left > /tmp/left; echo left > /dev/shm/left; touch /dev/mqueue/left; ' +
              'ipcmk -M 4096 >/dev/null; ipcmk -Q >/dev/null; ' +
              'setsid sleep 3141 </dev/null >/dev/null 2>&1 & ' +
              'ls /tmp; ls /dev/shm; ls /dev/mqueue; ipcs -m -q | grep -c "^0x"; readlink /proc/self/ns/*',
          ),
        )
        expect(first.exitCode, first.stderr).toBe(0)
        // It did leave them, as far as it could see.
        expect(first.stdout).toMatch(/^left\nleft\nleft\n2\n/)
        // The process it left died with its sandbox (its PID 1 is gone, and its pid namespace).
        expect(await eventually(() => processesRunning('sleep 3141').length === 0)).toBe(true)
        await p.warm()
        const second = await p.run(
          sh(
            'ls /tmp; ls /dev/shm; ls /dev/mqueue; echo ipc $(ipcs -m -q | grep -c "^0x"); ps -o comm= | sort -u; readlink /proc/self/ns/*',
          ),
        )
        expect(second.exitCode, second.stderr).toBe(0)
        expect(second.stdout).not.toContain('left')
        expect(second.stdout).toContain('ipc 0\n')
        expect(second.stdout).not.toContain('sleep')
        const a = namespaces(first.stdout)
        const b = namespaces(second.stdout)
        for (const n of ['user', 'mnt', 'pid', 'net', 'uts', 'ipc', 'cgroup']) {
          expect(a[n], n).toBeDefined()
          expect(b[n], n).not.toBe(a[n])
          expect(a[n], n).not.toBe(readlinkSync(`/proc/self/ns/${n}`))
        }
        expect(p.stats).toEqual({ warm: 2, cold: 0 })
      } finally {
        await p.close()
      }
    },
  )

  itNs("a run with options of its own, or when no sandbox is ready, starts cold with the pool's others", async () => {
    const p = pool({ size: 1, rootfs: fixtureRootfs, hostname: 'pooled' })
    try {
      await p.warm()
      const own = await p.run(['hostname'], { hostname: 'other' })
      expect(own.stdout).toBe('other\n')
      expect(p.stats).toEqual({ warm: 0, cold: 1 })
      expect(p.ready).toBe(1) // the warm one was not used
      // Two at once with one ready: one warm, one cold, the same answer.
      const both = await Promise.all([p.run(['hostname']), p.run(['hostname'])])
      expect(both.map((r) => r.stdout)).toEqual(['pooled\n', 'pooled\n'])
      expect(p.stats).toEqual({ warm: 1, cold: 2 })
    } finally {
      await p.close()
    }
  })

  itNs(
    "exit code, stdout and stderr, input, environment, cwd, a missing command, timeout, abort and kill behave as run()'s",
    async () => {
      const base = { rootfs: fixtureRootfs, env: { POOL: 'yes' } }
      const p = pool({ size: 2, ...base })
      try {
        const both = async (command: string[], opts: Parameters<typeof p.run>[1] = {}) => {
          await p.warm()
          const warm = p.stats.warm
          const pooled = await p.run(command, opts).catch((e: unknown) => e)
          expect(p.stats.warm).toBe(warm + 1) // it did run warm
          // The pool's environment, with the run's over it.
          const cold = await run({ ...base, ...opts, env: { ...base.env, ...(opts.env as object) }, command }).catch(
            (e: unknown) => e,
          )
          return { pooled, cold }
        }

        const io = await both(sh('echo out; echo err >&2; echo "$POOL $RUN"; pwd; read x; echo "got $x"; exit 3'), {
          env: { RUN: '1' },
          cwd: '/tmp',
          input: 'hello\n',
        })
        expect(comparable(io.pooled as RunResult)).toEqual(comparable(io.cold as RunResult))
        expect(io.pooled).toMatchObject({ exitCode: 3, stdout: 'out\nyes 1\n/tmp\ngot hello\n', stderr: 'err\n' })

        const missing = await both(['no-such-command'])
        expect(missing.pooled).toBeInstanceOf(NsError)
        const [pm, cm] = [missing.pooled as NsError, missing.cold as NsError]
        expect({ code: pm.code, exitCode: pm.exitCode, message: pm.message, step: pm.step }).toEqual({
          code: cm.code,
          exitCode: cm.exitCode,
          message: cm.message,
          step: cm.step,
        })
        expect(pm.exitCode).toBe(127)

        const timedOut = await both(['sleep', '10'], { timeout: 300 })
        expect(comparable(timedOut.pooled as RunResult)).toEqual(comparable(timedOut.cold as RunResult))
        expect(timedOut.pooled).toMatchObject({ timedOut: true, signal: 'SIGKILL', exitCode: 137 })

        const aborted = async () => {
          const ac = new AbortController()
          setTimeout(() => ac.abort(), 300)
          return ac.signal
        }
        await p.warm()
        const pa = await p.run(['sleep', '10'], { signal: await aborted() })
        const ca = await run({ ...base, command: ['sleep', '10'], signal: await aborted() })
        expect(comparable(pa)).toEqual(comparable(ca))
        expect(pa).toMatchObject({ timedOut: false, signal: 'SIGKILL', exitCode: 137 })

        // SIGTERM through the helper and the init to the command.
        await p.warm()
        const c = p.spawn(sh('trap "echo term; exit 7" TERM; echo up; while :; do sleep 0.05; done'), {
          stdout: 'pipe',
        })
        let out = ''
        c.stdout!.on('data', (d: Buffer) => (out += d.toString()))
        expect(await c.started).toBeGreaterThan(0)
        expect(await eventually(() => out.includes('up'))).toBe(true)
        await c.kill('SIGTERM')
        expect(await c.exited).toMatchObject({ exitCode: 7, signal: null, timedOut: false })
        expect(out).toBe('up\nterm\n')
      } finally {
        await p.close()
      }
    },
    60_000,
  )

  itNs(
    'close ends every sandbox: no helper or container process, mount or cgroup is left, and no run starts after',
    async () => {
      const mounts = hostMountinfo()
      const cgroupsBefore = new Set(nsCgroups())
      // As root, a limit gives each sandbox a cgroup of its own to be given back.
      const p = pool({ size: 3, rootfs: fixtureRootfs, ...(isRoot ? { pidsLimit: 64 } : {}) })
      await p.warm()
      expect(childPids().length).toBeGreaterThanOrEqual(3)
      if (isRoot) expect(nsCgroups().filter((c) => !cgroupsBefore.has(c)).length).toBeGreaterThanOrEqual(3)
      expect((await p.run(['true'])).exitCode).toBe(0)
      await p[Symbol.asyncDispose]()
      expect(await eventually(() => childPids().length === 0)).toBe(true)
      expect(hostMountinfo()).toBe(mounts)
      expect(nsCgroups().filter((c) => !cgroupsBefore.has(c))).toEqual([])
      expect(p.ready).toBe(0)
      expect(() => p.spawn(['true'])).toThrow(/closed/)
    },
  )

  itNs(
    "stdio of a run's own reaches the warm command (a pipe for stdin, a file for stdout, nothing for stderr); by default it has the pipes its sandbox was made with",
    async () => {
      const p = pool({ size: 1, rootfs: fixtureRootfs })
      const dir = mkdtempSync(join(tmpdir(), 'ns-pool-stdio-'))
      try {
        const probe = sh('read x; echo "got $x"; echo err >&2; for f in 0 1 2; do readlink /proc/self/fd/$f; done')
        await p.warm()
        const file = openSync(join(dir, 'out'), 'w')
        const c = p.spawn(probe, { stdin: 'pipe', stdout: file, stderr: 'ignore' })
        closeSync(file)
        expect(c.stdout).toBeNull()
        expect(c.stderr).toBeNull()
        c.stdin!.end('hello\n')
        expect(await c.exited).toMatchObject({ exitCode: 0, signal: null })
        const [got, fd0, fd1, fd2] = readFileSync(join(dir, 'out'), 'utf8').trimEnd().split('\n')
        expect(got).toBe('got hello')
        expect(fd0).toMatch(/^pipe:\[\d+\]$/)
        expect(fd1).toMatch(/\/out$/) // the file, seen from inside as its path in the host's tree
        expect(fd2).toBe('/dev/null')

        // The defaults: stdin /dev/null, stdout and stderr the sandbox's own pipes, read here.
        await p.warm()
        const d = await p.run(probe)
        expect(d).toMatchObject({ exitCode: 0, stderr: 'err\n' })
        const [dgot, d0, d1, d2] = d.stdout.trimEnd().split('\n')
        expect(dgot).toBe('got ')
        expect(d0).toBe('/dev/null')
        expect(d1).toMatch(/^pipe:\[\d+\]$/)
        expect(d2).toMatch(/^pipe:\[\d+\]$/)
        expect(d2).not.toBe(d1)
        expect(p.stats).toEqual({ warm: 2, cold: 0 })
      } finally {
        await p.close()
        rmSync(dir, { recursive: true, force: true })
      }
    },
  )

  itNs(
    'a warm command is filtered once, as a cold one; a profile that forbids a call of the way to the command still starts it, and the command is refused the call',
    async () => {
      const probe = sh('grep -E "^Seccomp(_filters)?:" /proc/self/status; cd /tmp && echo moved || echo refused')
      const p = pool({ size: 1, rootfs: fixtureRootfs })
      try {
        await p.warm()
        const [warm, cold] = [await p.run(probe), await run({ rootfs: fixtureRootfs, command: probe })]
        expect(warm.stdout).toBe('Seccomp:\t2\nSeccomp_filters:\t1\nmoved\n')
        expect(warm.stdout).toBe(cold.stdout)
        expect(p.stats).toEqual({ warm: 1, cold: 0 })
      } finally {
        await p.close()
      }
      // chdir is made on the way (to the run's cwd): the filter is loaded after it instead.
      const seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['chdir'], action: 'SCMP_ACT_ERRNO' }],
      }
      const q = pool({ size: 1, rootfs: fixtureRootfs, seccomp })
      try {
        await q.warm()
        const [warm, cold] = [
          await q.run(probe, { cwd: '/etc' }),
          await run({ rootfs: fixtureRootfs, seccomp, cwd: '/etc', command: probe }),
        ]
        expect(warm.exitCode, warm.stderr).toBe(0)
        expect(warm.stdout).toBe('Seccomp:\t2\nSeccomp_filters:\t1\nrefused\n')
        expect(warm.stdout).toBe(cold.stdout)
        expect(q.stats).toEqual({ warm: 1, cold: 0 })
      } finally {
        await q.close()
      }
    },
  )

  itNs('bad options are refused when the pool is made, naming the field', () => {
    expect(() => pool({ size: 0 })).toThrow(/^size: must be a whole number from 1 to 64$/)
    expect(() => pool({ size: 1, cwd: 'tmp' })).toThrow(/^cwd: must be an absolute path$/)
    expect(() => pool({ size: 1, tty: true } as never)).toThrow(/^tty: a pooled sandbox has no terminal$/)
    expect(() => pool({ size: 1, timeout: 5 } as never)).toThrow(/^timeout: is an option of each run$/)
  })
})

describe('warm containers of an OCI config: chroot and hooks', () => {
  /** A warm helper of `spec`: its events, what its stdout and stderr said, and its end. */
  function warmHelper(spec: Record<string, unknown>) {
    const events: HelperEvent[] = []
    let out = ''
    let ready: () => void = () => {}
    const waiting = new Promise<void>((r) => (ready = r))
    const h = launchHelper({ config: spec, warm: true, dieWithParent: true }, [-2, -1, -1], (ev) => {
      events.push(ev)
      if (ev.event === 'ready' || ev.event === 'error') ready()
    })
    h.stdout?.on('data', (d: Buffer) => (out += d.toString()))
    h.stderr?.on('data', (d: Buffer) => (out += d.toString()))
    return { h, events, waiting, output: () => out }
  }

  itRoot(
    "without a mount namespace of its own a warm container is chrooted into root.path (the host's /work not seen), and its poststop hooks run after its run, after a failed createContainer hook, and when it ends unused",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ns-warm-hooks-'))
      const mark = join(dir, 'poststop')
      const spec = (createContainer: unknown[] = []) => ({
        ociVersion: '1.0.2',
        root: { path: fixtureRootfs },
        process: { args: [], cwd: '/', env: ['PATH=/bin:/usr/bin'], user: { uid: 0, gid: 0 }, noNewPrivileges: true },
        hooks: { createContainer, poststop: [{ path: '/bin/sh', args: ['sh', '-c', `cat > ${mark}`] }] },
        linux: { namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }] },
      })
      const poststopStatus = () => (JSON.parse(readFileSync(mark, 'utf8')) as { status: string }).status
      try {
        // Run: in the chroot (the fixture has no /work; the host's root has), as PID 1's child.
        const ran = warmHelper(spec())
        await ran.waiting
        expect(ran.events.map((e) => e.event)).toEqual(['ready'])
        expect(existsSync(mark)).toBe(false)
        native.sendRun(
          ran.h.control,
          JSON.stringify({
            args: ['sh', '-c', 'test -e /work && echo host || echo chrooted; test -x /bin/busybox && echo fixture'],
            env: ['PATH=/bin:/usr/bin'],
            cwd: '/',
            stdio: [],
          }),
          [-3, -3, -3],
        )
        expect(await ran.h.done).toEqual({ exitCode: 0 })
        expect(existsSync('/work')).toBe(true)
        expect(ran.output()).toBe('chrooted\nfixture\n')
        expect(poststopStatus()).toBe('stopped')
        rmSync(mark)

        // A createContainer hook fails: the set-up fails naming it, then poststop runs.
        const failed = warmHelper(spec([{ path: '/bin/false' }]))
        await failed.waiting
        const error = failed.events.find((e) => e.event === 'error')
        expect(error?.error?.step).toBe('run hook hooks.createContainer[0]')
        expect((await failed.h.done).exitCode).toBe(125)
        expect(poststopStatus()).toBe('stopped')
        rmSync(mark)

        // Let go without a command (a pool's close): ended unused, poststop still runs.
        const unused = warmHelper(spec())
        await unused.waiting
        unused.h.close()
        await unused.h.done
        expect(poststopStatus()).toBe('stopped')
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  )
})
