// The escape suite: what a process inside a default container (default capabilities, seccomp
// profile, masked paths, namespaces) tries in order to reach the host, and the error each
// attempt gets. System calls are made directly (python3's ctypes from the
// host's /usr, visible read-only in the sandbox), each with harmless arguments: were one to
// succeed, it would change nothing.
import { execFileSync, spawn as spawn_, spawnSync, type ChildProcess } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { request } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect } from 'vitest'

import { buildSpec, get, list, parseRunOptions, pool, run, runDetached, spawn, spawnSpec, type OciSpec } from '@ns/core'
import { serve } from '@ns/server'

import { cli, fixtureRootfs, itNs, itRoot, repoRoot } from './helpers.js'

const work = mkdtempSync(join(tmpdir(), 'ns-escape-'))
chmodSync(work, 0o755) // bind sources are opened by the container's root: let it in
const stateRoot = join(work, 'state')
afterAll(async () => {
  for (const s of list(stateRoot)) await get(s.id, stateRoot).delete({ force: true })
  rmSync(work, { recursive: true, force: true })
})
const sh = (script: string) => ['sh', '-c', script]

/** Where `ns serve` is reached: its unix socket, or its TCP address with the bearer token. */
type Endpoint = { socketPath: string } | { host: string; port: number; token: string }

/** One JSON request to `ns serve`; its status and parsed body. */
function callServer(
  to: Endpoint,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const payload = body === undefined ? undefined : JSON.stringify(body)
  const { token, ...target } = { token: undefined, ...to }
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...target,
        method,
        path,
        headers: {
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        timeout: 60_000,
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (text += d))
        res.on('end', () => {
          let parsed: unknown
          try {
            parsed = JSON.parse(text)
          } catch {
            parsed = text
          }
          resolve({ status: res.statusCode!, body: parsed })
        })
      },
    )
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer`)))
    req.end(payload)
  })
}

/** `ns serve ARGS` in a process of its own (with `env` added to the test's), once it listens. */
async function startNsServe(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn_(process.execPath, [cli, 'serve', ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  for (let i = 0; i < 400 && !/listening on \S+/.test(err); i++) {
    if (child.exitCode !== null) throw new Error(`ns serve exited: ${err}`)
    await new Promise((r) => setTimeout(r, 25))
  }
  const url = /listening on (\S+)/.exec(err)?.[1]
  if (!url) throw new Error(`ns serve did not listen: ${err}`)
  return { child, url }
}

async function stopNsServe(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  await exited
}

const probe = `
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def t(name, f):
    try:
        r = f()
        e = ctypes.get_errno() if r == -1 else 0
    except OSError as x:
        e = x.errno
    print(name, errno.errorcode.get(e, e) if e else 'ok', flush=True)
class TV(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("us", ctypes.c_long)]
now = TV(); libc.gettimeofday(ctypes.byref(now), None)
t('reboot', lambda: libc.reboot(0))                      # LINUX_REBOOT_CMD_CAD_OFF
t('settimeofday', lambda: libc.settimeofday(ctypes.byref(now), None))
t('init_module', lambda: libc.init_module(None, 0, b""))
t('mknod', lambda: libc.mknod(b"/tmp/null2", 0o20666, os.makedev(1, 3)))
t('mount', lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
t('umount_root', lambda: libc.umount2(b"/", 2))
t('sethostname', lambda: libc.sethostname(b"x", 1))
t('kill_host', lambda: os.kill(int(sys.argv[1]), 0))
t('sysrq', lambda: open('/proc/sysrq-trigger', 'w').write('h'))
t('proc_sys', lambda: open('/proc/sys/kernel/ctrl-alt-del', 'w').write('0'))
t('kcore', lambda: 0 if len(open('/proc/kcore', 'rb').read(16)) == 0 else -1)
t('block_device', lambda: os.open('/dev/vda', os.O_RDONLY))
t('loop_control', lambda: os.open('/dev/loop-control', os.O_RDWR))
t('unshare_userns', lambda: libc.unshare(0x10000000))   # CLONE_NEWUSER: would hand back capabilities
t('clone3', lambda: libc.syscall(435, None, 0))
t('keyctl', lambda: libc.syscall(250, 0, 0, 0, 0, 0))
t('bpf', lambda: libc.syscall(321, 0, None, 0))
t('perf_event_open', lambda: libc.syscall(298, None, 0, -1, -1, 0))
t('ptrace_init', lambda: libc.ptrace(16, 1, None, None))   # PTRACE_ATTACH to the container's PID 1
t('setns', lambda: libc.setns(os.open('/proc/self/ns/net', os.O_RDONLY), 0))
t('seccomp_mode', lambda: 0 if 'Seccomp:\t2' in open('/proc/self/status').read() else -1)
t('connect_host_loopback', lambda: __import__('socket').create_connection(('127.0.0.1', int(sys.argv[2])), timeout=1))
`

describe('escape suite: a default container', () => {
  itNs('every attempt to reach the host fails, with the error the kernel gives', async () => {
    const server = createServer((s) => s.end())
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res))
    const port = (server.address() as AddressInfo).port
    const before = hostname()
    try {
      const r = await run({ command: ['python3', '-c', probe, String(process.pid), String(port)] })
      expect(r.exitCode, r.stderr).toBe(0)
      const got = Object.fromEntries(
        r.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(' ') as [string, string]),
      )
      expect(got).toEqual({
        reboot: 'EPERM', // no CAP_SYS_BOOT
        settimeofday: 'EPERM', // the clock is the host's: CAP_SYS_TIME of the initial user namespace
        init_module: expect.stringMatching(/^(EPERM|ENOSYS)$/), // no CAP_SYS_MODULE (ENOSYS: a kernel without modules)
        mknod: 'EPERM', // device nodes cannot be made in a user namespace
        mount: 'EPERM', // no CAP_SYS_ADMIN
        umount_root: 'EPERM',
        sethostname: 'EPERM', // and its own UTS namespace besides
        kill_host: 'ESRCH', // host processes do not exist in its pid namespace
        sysrq: expect.stringMatching(/^(EROFS|ENOENT)$/), // read-only path (ENOENT: a kernel without sysrq)
        proc_sys: 'EROFS',
        kcore: expect.stringMatching(/^(ok|ENOENT)$/), // masked: an empty file (ENOENT: a kernel without it)
        block_device: 'ENOENT', // its /dev has none
        loop_control: 'ENOENT',
        unshare_userns: 'EPERM', // seccomp: no new namespaces without CAP_SYS_ADMIN
        clone3: 'ENOSYS', // seccomp: its flags are out of the filter's reach; callers fall back to clone
        keyctl: 'EPERM', // seccomp, as bpf, perf_event_open, ptrace and setns below
        bpf: 'EPERM',
        perf_event_open: 'EPERM',
        ptrace_init: 'EPERM',
        setns: 'EPERM',
        seccomp_mode: 'ok', // filter mode
        connect_host_loopback: 'ECONNREFUSED', // its own network namespace: nothing listens there
      })
      expect(hostname()).toBe(before)
    } finally {
      server.close()
    }
  })
})

/** What Docker applies by default, as its documentation and its default profile give it. */
const docker = {
  // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
  caps: '00000000a80425fb',
  masked: [
    '/proc/asound',
    '/proc/acpi',
    '/proc/kcore',
    '/proc/keys',
    '/proc/latency_stats',
    '/proc/timer_list',
    '/proc/timer_stats',
    '/proc/sched_debug',
    '/proc/scsi',
    '/sys/firmware',
    '/sys/devices/virtual/powercap',
  ],
  readonly: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
}

describe("defaults, seen from inside, against Docker's", () => {
  itNs('capabilities, no_new_privs, seccomp filter mode, masked and read-only paths', async () => {
    const r = await run({
      command: ['sh', '-c', 'grep -E "^(Cap|NoNewPrivs|Seccomp)" /proc/self/status; cat /proc/self/mountinfo'],
    })
    expect(r.exitCode, r.stderr).toBe(0)
    const status = Object.fromEntries(
      r.stdout
        .split('\n')
        .filter((l) => /^(Cap|NoNewPrivs|Seccomp)/.test(l))
        .map((l) => l.split(':\t') as [string, string]),
    )
    expect(status).toMatchObject({
      CapInh: '0000000000000000',
      CapPrm: docker.caps,
      CapEff: docker.caps,
      CapBnd: docker.caps,
      CapAmb: '0000000000000000',
      NoNewPrivs: '1',
      Seccomp: '2', // a filter
    })
    // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ...
    const mounts = new Map<string, string>()
    for (const line of r.stdout.split('\n').filter((l) => /^\d+ \d+ /.test(l))) {
      const f = line.split(' ')
      mounts.set(f[4]!, f[5]!)
    }
    // Masked: what exists on this host is covered inside (an empty read-only tmpfs, or /dev/null).
    const masked = docker.masked.filter((p) => existsSync(p))
    expect(masked.length).toBeGreaterThan(0)
    for (const p of masked) expect(mounts.has(p), `${p} is masked`).toBe(true)
    for (const p of docker.readonly.filter((x) => existsSync(x))) {
      expect(mounts.get(p)?.split(',')[0], `${p} is read-only`).toBe('ro')
    }
  })
})

// What a process inside tries against the container's PID 1 (the init: the helper's clone, never
// executed inside): its environment, memory and descriptors, each with the error it gets.
const pid1Probe = `
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def t(name, f):
    try:
        r = f()
        e = ctypes.get_errno() if r == -1 else 0
    except OSError as x:
        e = x.errno
    print(name, errno.errorcode.get(e, e) if e else 'ok', flush=True)
pidfd = libc.syscall(434, 1, 0)                                 # pidfd_open(1): allowed, it is a handle
t('pidfd_open', lambda: pidfd)
t('pidfd_getfd', lambda: libc.syscall(438, pidfd, 3, 0))        # take PID 1's descriptor 3
t('ptrace_attach', lambda: libc.ptrace(16, 1, None, None))
t('environ', lambda: len(open('/proc/1/environ', 'rb').read()))
t('maps', lambda: len(open('/proc/1/maps', 'rb').read()))
t('mem', lambda: len(open('/proc/1/mem', 'rb').read(1)))
t('fd', lambda: len(os.listdir('/proc/1/fd')))
class IOV(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(8)
local, remote = IOV(ctypes.addressof(buf), 8), IOV(0x400000, 8)
t('process_vm_readv', lambda: libc.syscall(310, 1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))
`

function probeResults(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  )
}

const pid1Closed = {
  pidfd_open: 'ok',
  pidfd_getfd: 'EPERM', // ptrace_may_access: PID 1's memory belongs to the host's user namespace
  ptrace_attach: 'EPERM',
  environ: 'EACCES',
  maps: 'EACCES',
  mem: 'EACCES',
  fd: 'EACCES',
  process_vm_readv: 'EPERM',
}

describe("escape suite: the container's PID 1 carries nothing of its caller", () => {
  itNs("the caller's environment does not reach the container, and PID 1's is not readable", async () => {
    process.env.NS_ESCAPE_SECRET = 'token-of-the-caller'
    try {
      const r = await run({
        command: sh(
          'env | grep -c NS_ESCAPE_SECRET; cat /proc/1/environ >/dev/null; echo rc=$?; stat -c "%u %n" /proc/1/environ /proc/self/environ',
        ),
      })
      // PID 1 is not dumpable: the kernel gives its /proc files to the host's root, which the
      // container's user namespace does not map (65534), where a dumpable process of the
      // container's root (the shell) owns its own.
      expect(r.stdout).toBe('0\nrc=1\n65534 /proc/1/environ\n0 /proc/self/environ\n')
      expect(r.stderr).toMatch(/Permission denied/)
    } finally {
      delete process.env.NS_ESCAPE_SECRET
    }
  })

  itRoot('seen from the host: PID 1 holds no variable of the caller and one descriptor, its report pipe', async () => {
    process.env.NS_ESCAPE_SECRET = 'token-of-the-caller'
    const c = spawn({ command: ['sleep', '5'] })
    delete process.env.NS_ESCAPE_SECRET
    try {
      const pid = await c.started
      await new Promise((r) => setTimeout(r, 100))
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toMatch(/^ns-oci\0init\0/)
      const env = readFileSync(`/proc/${pid}/environ`)
      expect(env.includes('NS_ESCAPE_SECRET')).toBe(false)
      expect(env.every((b) => b === 0)).toBe(true) // the block is zeroed
      const fds = readdirSync(`/proc/${pid}/fd`).map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`))
      expect(fds).toHaveLength(1)
      expect(fds[0]).toMatch(/^pipe:/)
      // Not dumpable: its /proc files belong to the host's root, not to the container's root.
      // Its command, dumpable, is the container's root's: a host id of the container's own.
      const [command] = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')
      expect(statSync(`/proc/${pid}/environ`).uid).toBe(0)
      expect(statSync(`/proc/${command}/environ`).uid).not.toBe(0)
    } finally {
      await c.kill('SIGKILL')
      await c.exited.catch(() => {})
    }
  })

  itRoot(
    'a pooled sandbox, set up before its command came: PID 1 holds no variable of the caller and one descriptor, its report pipe',
    async () => {
      process.env.NS_ESCAPE_SECRET = 'token-of-the-caller'
      const p = pool({ size: 1 })
      delete process.env.NS_ESCAPE_SECRET
      try {
        await p.warm()
        const c = p.spawn(['sleep', '5'])
        expect(p.stats.warm).toBe(1)
        const pid = await c.started
        await new Promise((r) => setTimeout(r, 100))
        expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toMatch(/^ns-oci\0init\0/)
        const env = readFileSync(`/proc/${pid}/environ`)
        expect(env.includes('NS_ESCAPE_SECRET')).toBe(false)
        expect(env.every((b) => b === 0)).toBe(true)
        const fds = readdirSync(`/proc/${pid}/fd`).map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`))
        expect(fds).toHaveLength(1)
        expect(fds[0]).toMatch(/^pipe:/)
        expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^CoreDumping:\t0$/m)
        await c.kill('SIGKILL')
        await c.exited.catch(() => {})
      } finally {
        await p.close()
      }
    },
  )

  itNs('in a pooled sandbox, the same attempts on PID 1 and on the host fail the same way', async () => {
    const p = pool({ size: 1 })
    try {
      await p.warm()
      const r = await p.run(['python3', '-c', pid1Probe])
      expect(r.exitCode, r.stderr).toBe(0)
      expect(probeResults(r.stdout)).toEqual({ ...pid1Closed, ptrace_attach: 'EPERM' })
      await p.warm()
      const server = createServer((s) => s.end())
      await new Promise<void>((res) => server.listen(0, '127.0.0.1', res))
      const port = (server.address() as AddressInfo).port
      try {
        const args = ['python3', '-c', probe, String(process.pid), String(port)]
        const [pooled, cold] = [await p.run(args), await run({ command: args })]
        expect(pooled.exitCode, pooled.stderr).toBe(0)
        expect(probeResults(pooled.stdout)).toEqual(probeResults(cold.stdout))
        expect(probeResults(pooled.stdout).connect_host_loopback).toBe('ECONNREFUSED')
      } finally {
        server.close()
      }
      expect(p.stats).toEqual({ warm: 2, cold: 0 })
    } finally {
      await p.close()
    }
  })

  itNs('ptrace, pidfd_getfd and /proc/1/{environ,maps,mem,fd} are refused, with the default capabilities', async () => {
    const r = await run({ command: ['python3', '-c', pid1Probe] })
    expect(r.exitCode, r.stderr).toBe(0)
    expect(probeResults(r.stdout)).toEqual({ ...pid1Closed, ptrace_attach: 'EPERM' })
  })

  itNs(
    '... and with every capability and no seccomp filter: the kernel refuses (CAP_SYS_PTRACE of the host is needed)',
    async () => {
      const r = await run({ command: ['python3', '-c', pid1Probe], capAdd: ['ALL'], seccomp: 'unconfined' })
      expect(r.exitCode, r.stderr).toBe(0)
      expect(probeResults(r.stdout)).toEqual(pid1Closed)
    },
  )

  itNs(
    'a container cannot forge its own result: writing exit events anywhere it can reach changes nothing',
    async () => {
      const forge = `for f in /proc/1/fd/* /proc/self/fd/*; do echo '{"event":"exited","exitCode":0,"signal":null}' > $f; done 2>/dev/null; exit 42`
      const r = await run({ command: sh(forge) })
      expect(r.exitCode).toBe(42)
      const d = await runDetached({ command: sh(forge), root: stateRoot, name: 'forger' })
      expect(await d.wait()).toMatchObject({ exitCode: 42, signal: null })
      const ps = execFileSync(process.execPath, [cli, '--root', stateRoot, 'ps', '-a'], { encoding: 'utf8' })
      expect(ps).toMatch(/forger.*exited \(42\)/)
      await d.delete()
    },
  )

  itNs(
    "ns serve: nothing of the server's environment (NS_TOKEN with it, over TCP) reaches a client's container",
    async () => {
      const token = 'token-of-the-server-0123456789'
      const { child, url } = await startNsServe(['--listen', '127.0.0.1:0', '--root', join(work, 'env-state')], {
        NS_TOKEN: token,
        NS_ESCAPE_SECRET: 'secret-of-the-server',
      })
      try {
        const to = { host: '127.0.0.1', port: Number(new URL(url).port), token }
        // Twice: the first helper is spawned, the next ones forked by the server's zygote.
        for (let i = 0; i < 2; i++) {
          const r = await callServer(to, 'POST', '/v1/run', {
            command: sh('env; cat /proc/1/environ; echo "rc=$?"; tr "\\0" "\\n" </proc/$$/environ'),
          })
          expect(r.status, JSON.stringify(r.body)).toBe(200)
          expect(r.body.stdout).toMatch(/^rc=1$/m)
          expect(r.body.stderr).toMatch(/\/proc\/1\/environ: Permission denied/)
          for (const leaked of [token, 'NS_TOKEN', 'secret-of-the-server', 'NS_ESCAPE_SECRET'])
            expect(r.body.stdout + r.body.stderr, `${leaked}, run ${i + 1}`).not.toContain(leaked)
        }
      } finally {
        await stopNsServe(child)
      }
    },
  )

  itNs(
    'ns exec: the process joins the container through its command (PID 1 is not readable), never the host',
    async () => {
      const d = await runDetached({ command: ['sleep', '30'], root: stateRoot, name: 'exec-anchor' })
      try {
        const r = await d.execRun({
          command: sh('readlink /proc/self/ns/pid /proc/2/ns/pid /proc/self/ns/mnt /proc/2/ns/mnt'),
        })
        const [a, b, c, e] = r.stdout.trim().split('\n')
        expect(a).toBe(b)
        expect(c).toBe(e)
        expect(a).not.toBe(readlinkSync('/proc/self/ns/pid'))
        expect(d.inspect().pids.length).toBe(2) // the init and its command
      } finally {
        await d.delete({ force: true })
      }
    },
  )
})

// A helper that is not one: it writes what no helper does. Started by a separate Node process
// (NS_HELPER is read when @ns/native loads), which must live on and see a clear error.
function withFakeHelper(script: string): { status: number | null; out: string; err: string } {
  const helper = join(work, `fake-helper-${Math.random().toString(16).slice(2)}`)
  writeFileSync(helper, `#!/bin/sh\n${script}\n`)
  chmodSync(helper, 0o755)
  const driver = `
    import { run } from '@ns/core'
    try { await run({ command: ['true'] }); console.log('resolved') }
    catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })) }
    console.log('alive', process.memoryUsage().rss < 512 * 1024 * 1024)
  `
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', driver], {
    cwd: join(repoRoot, 'test'),
    env: { ...process.env, NS_HELPER: helper, NS_ZYGOTE: '0' },
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { status: r.status, out: r.stdout, err: r.stderr }
}

describe('escape suite: what a helper sends is bounded and checked', () => {
  itNs('700 MiB without a newline on the control socket: an error for that container, the caller lives on', () => {
    const r = withFakeHelper('head -c 734003200 /dev/zero | tr "\\\\0" x >&3; exec sleep 5')
    expect(r.status, r.err).toBe(0)
    const [line, alive] = r.out.trim().split('\n')
    expect(JSON.parse(line!)).toMatchObject({ name: 'NsError', code: 'EPROTO' })
    expect(JSON.parse(line!).message).toMatch(/a line longer than 1048576 bytes/)
    expect(alive).toBe('alive true')
  })

  itNs(
    'ns serve: 700 MiB without a newline from a helper fails that request; the server and its other runs go on',
    async () => {
      const helper = join(work, 'flooding-helper')
      // A helper that floods its control socket, then one that behaves: the real one, run for the
      // request that comes next (the flood marks its turn in a file).
      const real = join(repoRoot, 'packages', 'native', 'bin', 'ns-oci')
      const turn = join(work, 'flooded-once')
      writeFileSync(
        helper,
        `#!/bin/sh\nif [ ! -e ${turn} ]; then : >${turn}; head -c 734003200 /dev/zero | tr "\\\\0" x >&3; exec sleep 5; fi\nexec ${real} "$@"\n`,
      )
      chmodSync(helper, 0o755)
      const socketPath = join(work, 'flood.sock')
      const { child } = await startNsServe(['--socket', socketPath, '--root', join(work, 'flood-state')], {
        NS_HELPER: helper,
        NS_ZYGOTE: '0',
      })
      try {
        const flooded = await callServer({ socketPath }, 'POST', '/v1/run', { command: ['true'] })
        expect(flooded.status).toBeGreaterThanOrEqual(500)
        expect(flooded.body.error).toMatchObject({
          code: 'EPROTO',
          message: expect.stringMatching(/the helper sent a line longer than 1048576 bytes/),
        })
        expect(child.exitCode).toBe(null)
        expect((await callServer({ socketPath }, 'GET', '/v1/health')).status).toBe(200)
        const next = await callServer({ socketPath }, 'POST', '/v1/run', { command: sh('echo after') })
        expect(next.status, JSON.stringify(next.body)).toBe(200)
        expect(next.body.stdout).toBe('after\n')
      } finally {
        await stopNsServe(child)
      }
    },
  )

  itNs('endless short events, each well formed: an error for that container once there are too many', () => {
    // 100000 warnings of 1 KiB (100 MiB in all, no line too long): more than any helper sends.
    const r = withFakeHelper(
      `yes '{"event":"warning","message":"'"$(head -c 1024 /dev/zero | tr '\\0' w)"'"}' | head -n 100000 >&3; exec sleep 5`,
    )
    expect(r.status, r.err).toBe(0)
    const [line, alive] = r.out.trim().split('\n')
    expect(JSON.parse(line!)).toMatchObject({ name: 'NsError', code: 'EPROTO' })
    expect(JSON.parse(line!).message).toMatch(/the helper sent more than 1024 events/)
    expect(alive).toBe('alive true')
  })

  itNs('a line that is not an event, and an event of the wrong shape: errors, not exceptions', () => {
    for (const junk of ['this is not json', '{"event":"exited","exitCode":"zero"}', '[1,2]']) {
      const r = withFakeHelper(`printf '%s\\n' '${junk}' >&3; exec sleep 5`)
      expect(r.status, r.err).toBe(0)
      const [line, alive] = r.out.trim().split('\n')
      expect(JSON.parse(line!)).toMatchObject({ code: 'EPROTO' })
      expect(JSON.parse(line!).message).toMatch(/a line that is not an event/)
      expect(alive).toBe('alive true')
    }
  })
})

/** A sandbox spec (the host's /usr read-only) with changes of the test's. */
function specWith(change: (s: OciSpec) => void, options = {}): OciSpec {
  const s = structuredClone(buildSpec(parseRunOptions({ command: ['true'], ...options })).spec)
  change(s)
  return s
}

describe('escape suite: sysctls reach only what the container owns', () => {
  itNs("a sysctl that is not namespaced is refused, naming it; the host's value is untouched", async () => {
    const file = '/proc/sys/kernel/printk_ratelimit_burst'
    const before = readFileSync(file, 'utf8')
    const spec = specWith((s) => {
      s.linux!.sysctl = { 'kernel.printk_ratelimit_burst': String(Number(before) + 1) }
    })
    await expect(spawnSpec(spec).exited).rejects.toThrow(
      "linux.sysctl.kernel.printk_ratelimit_burst: is not namespaced: writing it would change the host's kernel",
    )
    expect(readFileSync(file, 'utf8')).toBe(before)
  })

  itNs('a net.* sysctl needs a network namespace of its own; with one it is set there only', async () => {
    const forward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')
    const shared = specWith((s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'network')
      s.linux!.sysctl = { 'net.ipv4.ip_forward': '1' }
    })
    await expect(spawnSpec(shared).exited).rejects.toThrow(
      'linux.sysctl.net.ipv4.ip_forward: belongs to the network namespace, and the container has none of its own',
    )
    const own = specWith((s) => {
      s.linux!.sysctl = { 'net.ipv4.ip_forward': forward.trim() === '1' ? '0' : '1' }
      s.process!.args = ['cat', '/proc/sys/net/ipv4/ip_forward']
    })
    const c = spawnSpec(own, { stdout: 'pipe' })
    let out = ''
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    await c.exited
    expect(out.trim()).toBe(forward.trim() === '1' ? '0' : '1')
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(forward)
  })
})

describe('escape suite: mounts over what the set-up relies on', () => {
  itNs('-v SRC:/proc, --tmpfs /proc, a bind on /dev and a mount on / are refused, naming the mount', async () => {
    const dir = mkdtempSync(join(work, 'src-'))
    // The error names the option the mount came from (volumes[i], mounts[i]), wherever it is found.
    await expect(run({ command: ['true'], volumes: [`${dir}:/proc`] })).rejects.toThrow(
      /^volumes\[0\]: only a proc filesystem may be mounted on \/proc/,
    )
    await expect(run({ command: ['true'], mounts: [{ type: 'tmpfs', target: '/proc' }] })).rejects.toThrow(
      /^mounts\[0\](\.target)?: only a proc filesystem/,
    )
    await expect(run({ command: ['true'], volumes: [`${dir}:/proc/sys`] })).rejects.toThrow(
      /^volumes\[0\]: is inside \/proc/,
    )
    await expect(run({ command: ['true'], volumes: [`${dir}:/dev`] })).rejects.toThrow(
      /^volumes\[0\]: a bind on \/dev is refused/,
    )
    await expect(run({ command: ['true'], volumes: [`${dir}:/`] })).rejects.toThrow(/^volumes\[0\]: must not be \//)
    expect(readdirSync(dir)).toEqual([]) // nothing landed in the source
  })
})

describe('escape suite: an exit status is never made up', () => {
  itNs('after its monitor is SIGKILLed, wait says the status is unknown (an error), not 128', async () => {
    const d = await runDetached({ command: ['sleep', '30'], root: stateRoot, name: 'orphan-wait' })
    const monitor = JSON.parse(readFileSync(join(stateRoot, 'orphan-wait', 'state.json'), 'utf8')).monitorPid as number
    process.kill(monitor, 'SIGKILL')
    await expect(d.wait()).rejects.toMatchObject({
      code: 'EUNKNOWN',
      message: expect.stringMatching(/its monitor \(pid \d+\) ended without recording it/),
    })
    const r = spawnSync(process.execPath, [cli, '--root', stateRoot, 'wait', 'orphan-wait'], { encoding: 'utf8' })
    expect(r.stdout).toBe('')
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/exit status is unknown/)
    await d.delete({ force: true })
  })
})

describe('escape suite: id maps the kernel would refuse are refused first', () => {
  itNs('340 ranges that make more than a page, and 341 ranges, name the field', async () => {
    const maps = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ containerID: i, hostID: 1_000_000 + i, size: 1 }))
    for (const [n, msg] of [
      [340, /^linux\.uidMappings: its 340 ranges take \d+ bytes as a map file; the kernel takes fewer than \d+/],
      [341, /^linux\.uidMappings: has 341 ranges; the kernel takes at most 340/],
    ] as const) {
      const spec = specWith((s) => {
        delete s.annotations?.['io.ns.userns'] // root's default leases the maps itself
        s.linux!.uidMappings = maps(n)
        s.linux!.gidMappings = maps(1)
      })
      await expect(spawnSpec(spec).exited).rejects.toThrow(msg)
    }
  })
})

/** A folder the container's root may enter. */
function allowedDir(): string {
  const d = mkdtempSync(join(work, 'allowed-'))
  chmodSync(d, 0o755)
  return d
}

/** A sandbox spec whose bind mounts (and nothing else of the host's but the sandbox's) are confined to `roots`. */
function confinedSpec(roots: string[], binds: [string, string][], script: string): OciSpec {
  return specWith((s) => {
    s.annotations = { ...s.annotations, 'io.ns.bind.roots': JSON.stringify(roots) }
    // The sandbox binds the host's /usr, /bin, ... : allowed as roots of their own.
    const sandbox = s.mounts!.filter((m) => m.type === 'bind').map((m) => m.source!)
    s.annotations['io.ns.bind.roots'] = JSON.stringify([...roots, ...sandbox])
    for (const [source, destination] of binds)
      s.mounts!.push({ destination, type: 'bind', source, options: ['rbind', 'ro'] })
    s.process!.args = ['sh', '-c', script]
  })
}

async function runSpec(spec: OciSpec): Promise<{ exitCode?: number; stdout: string; error?: string }> {
  const c = spawnSpec(spec, { stdout: 'pipe' })
  let stdout = ''
  c.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
  try {
    const r = await c.exited
    return { exitCode: r.exitCode, stdout }
  } catch (e) {
    return { stdout, error: (e as Error).message }
  }
}

/** Swaps the directory `dir` for a symlink to / and back, as fast as it can, until stopped. */
function startSwapper(dir: string): { stop(): Promise<void> } {
  const stopFile = `${dir}.stop`
  const swapper = spawn_(
    'python3',
    [
      '-c',
      `import os, sys
d, t, l = sys.argv[1], sys.argv[1] + '.t', sys.argv[1] + '.l'
try: os.unlink(l)
except FileNotFoundError: pass
os.symlink('/', l)
while not os.path.exists(sys.argv[2]):
    os.rename(d, t); os.rename(l, d); os.rename(d, l); os.rename(t, d)`,
      dir,
      stopFile,
    ],
    { stdio: 'ignore' },
  )
  const exited = new Promise((res) => swapper.once('exit', res))
  return {
    async stop() {
      writeFileSync(stopFile, '')
      await exited
    },
  }
}

describe('escape suite: a bind source is checked and mounted as one (io.ns.bind.roots)', () => {
  itNs(
    "a symlink swapped in while containers start never gets the host's / mounted (150 tries)",
    async () => {
      const allowed = allowedDir()
      const real = join(allowed, 'vol')
      execFileSync('mkdir', ['-p', real])
      writeFileSync(join(real, 'marker-of-the-volume'), '')
      const swapper = startSwapper(real)
      const seen = { volume: 0, refused: 0, between: 0, host: 0, other: 0 }
      try {
        for (let i = 0; i < 150; i++) {
          const r = await runSpec(confinedSpec([allowed], [[real, '/mnt']], 'ls /mnt'))
          if (r.stdout.includes('etc') || r.stdout.includes('proc')) seen.host++
          else if (r.stdout.includes('marker-of-the-volume')) seen.volume++
          else if (r.error?.match(/^mounts\[\d+\]\.source: .* resolves outside the allowed bind root/)) seen.refused++
          else if (r.error?.match(/ENOENT|ENOTDIR/))
            seen.between++ // caught between two renames
          else {
            seen.other++
            console.warn('unexpected', r)
          }
        }
      } finally {
        await swapper.stop()
      }
      console.log('bind race, 150 starts:', seen)
      expect(seen.host).toBe(0)
      expect(seen.other).toBe(0)
      expect(seen.volume + seen.refused + seen.between).toBe(150)
      expect(seen.refused).toBeGreaterThan(0) // the race reached the runtime's own check
    },
    120_000,
  )

  itNs(
    "over ns serve: a client's volume swapped for a symlink to / while its runs start never mounts the host's / (150 tries)",
    async () => {
      const allowed = allowedDir()
      const real = join(allowed, 'vol')
      execFileSync('mkdir', ['-p', real])
      writeFileSync(join(real, 'marker-of-the-volume'), '')
      // The server checks the source (symlinks resolved) under --allow-bind, then the runtime
      // opens it again, beneath the root the server named in io.ns.bind.roots.
      const socketPath = join(work, 'race.sock')
      const server = await serve({ socket: socketPath, root: join(work, 'race-state'), allowBind: [allowed] })
      const swapper = startSwapper(real)
      const seen = { volume: 0, refusedByServer: 0, refusedByRuntime: 0, host: 0, other: 0 }
      try {
        for (let i = 0; i < 150; i++) {
          const r = await callServer({ socketPath }, 'POST', '/v1/run', {
            command: ['ls', '/mnt'],
            volumes: [`${real}:/mnt:ro`],
          })
          const out = r.status === 200 ? String(r.body.stdout) : ''
          const error = r.status === 200 ? undefined : (r.body.error as { field?: string; message: string })
          if (out.includes('etc') || out.includes('proc')) seen.host++
          else if (out.includes('marker-of-the-volume')) seen.volume++
          else if (
            r.status === 403 &&
            error?.field === 'volumes[0]' &&
            /\(\/\) is outside the directories/.test(error.message)
          )
            seen.refusedByServer++ // the server saw the symlink
          else if (r.status === 400 && error?.field === 'volumes[0]' && /does not exist/.test(error.message))
            seen.refusedByServer++ // the server looked between two renames
          else if (error?.message.match(/resolves outside the allowed bind root|ENOENT|ENOTDIR/))
            seen.refusedByRuntime++ // the runtime saw it (or a rename in between), beneath the root
          else {
            seen.other++
            console.warn('unexpected', r.status, JSON.stringify(r.body))
          }
        }
      } finally {
        await swapper.stop()
        await server.close()
      }
      console.log('bind race over ns serve, 150 runs:', seen)
      expect(seen.host).toBe(0)
      expect(seen.other).toBe(0)
      expect(seen.volume + seen.refusedByServer + seen.refusedByRuntime).toBe(150)
      // The race did run, and into the window between the two: the server let a source through
      // that was a symlink to / by the time the runtime opened it (about one run in ten here).
      expect(seen.refusedByRuntime).toBeGreaterThan(0)
    },
    120_000,
  )

  itNs(
    'a symlink inside the root that stays inside is allowed; .. and absolute ones leaving it are refused',
    async () => {
      const allowed = allowedDir()
      execFileSync('mkdir', ['-p', join(allowed, 'a/real')])
      writeFileSync(join(allowed, 'a/real/inside'), '')
      execFileSync('ln', ['-s', 'a/real', join(allowed, 'inner')])
      execFileSync('ln', ['-s', '../..', join(allowed, 'a/up')])
      execFileSync('ln', ['-s', '/etc', join(allowed, 'abs')])
      const ok = await runSpec(confinedSpec([allowed], [[join(allowed, 'inner'), '/mnt']], 'ls /mnt'))
      expect(ok).toMatchObject({ exitCode: 0, stdout: 'inside\n' })
      for (const leaving of ['a/up', 'abs']) {
        const r = await runSpec(confinedSpec([allowed], [[join(allowed, leaving), '/mnt']], 'ls /mnt'))
        expect(r.error).toMatch(/^mounts\[\d+\]\.source: .* resolves outside the allowed bind root/)
      }
      const outside = await runSpec(confinedSpec([allowed], [[work, '/mnt']], 'ls /mnt'))
      expect(outside.error).toMatch(/^mounts\[\d+\]\.source: .* is not under an allowed bind root/)
      const dotdot = await runSpec(confinedSpec([allowed], [[`${allowed}/../..`, '/mnt']], 'ls /mnt'))
      expect(dotdot.error).toMatch(/is not under an allowed bind root/)
    },
  )

  itNs(
    "root.path swapped for a symlink to / while containers start never gives a container the host's / (100 tries)",
    async () => {
      const allowed = allowedDir()
      const root = join(allowed, 'root')
      execFileSync('cp', ['-a', fixtureRootfs, root])
      writeFileSync(join(root, 'marker-of-the-root'), '')
      const spec = specWith((s) => {
        s.annotations = { ...s.annotations, 'io.ns.bind.roots': JSON.stringify([allowed]) }
        s.root = { path: root, readonly: true }
        s.mounts = s.mounts!.filter((m) => m.type !== 'bind')
        s.process!.args = ['/bin/sh', '-c', 'ls /']
      })
      const swapper = startSwapper(root)
      const seen = { root: 0, refusedByRuntime: 0, between: 0, host: 0, other: 0 }
      try {
        for (let i = 0; i < 100; i++) {
          const r = await runSpec(spec)
          if (r.stdout.includes('marker-of-the-root')) seen.root++
          else if (r.error?.match(/^root\.path: .* resolves outside the allowed bind root/)) seen.refusedByRuntime++
          else if (r.error?.match(/ENOENT|ENOTDIR/))
            seen.between++ // caught between two renames
          else if (r.stdout.includes('proc')) seen.host++
          else {
            seen.other++
            console.warn('unexpected', r)
          }
        }
      } finally {
        await swapper.stop()
      }
      console.log('root.path race, 100 starts:', seen)
      expect(seen.host).toBe(0)
      expect(seen.other).toBe(0)
      expect(seen.refusedByRuntime).toBeGreaterThan(0) // the runtime's own check was reached
    },
    120_000,
  )

  itNs('root.path too: a rootfs outside the roots, or leaving them by a symlink, is refused', async () => {
    const allowed = allowedDir()
    execFileSync('ln', ['-s', '/', join(allowed, 'hostroot')])
    const spec = (path: string) =>
      specWith((s) => {
        s.annotations = { ...s.annotations, 'io.ns.bind.roots': JSON.stringify([allowed]) }
        s.root = { path, readonly: true }
        s.mounts = s.mounts!.filter((m) => m.type !== 'bind')
      })
    expect((await runSpec(spec(join(allowed, 'hostroot')))).error).toMatch(
      /^root\.path: .* resolves outside the allowed bind root/,
    )
    expect((await runSpec(spec('/'))).error).toMatch(/^root\.path: \/ is not under an allowed bind root/)
  })
})

/** The cgroup folders of ns's container `id` that exist on this host (v1: one per controller). */
function cgroupFolders(id: string): string[] {
  const base = '/sys/fs/cgroup'
  const candidates = [join(base, 'ns', id), ...readdirSync(base).map((c) => join(base, c, 'ns', id))]
  return candidates.filter((d) => existsSync(d))
}

/** The container id of a process's cgroup (`/ns/<id>`), from /proc/PID/cgroup. */
function cgroupIdOf(pid: number): string | undefined {
  return /\/ns\/([^/\n]+)/.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1]
}

/** The host PIDs of `sleep 60` processes under `ancestor`. */
function sleepsUnder(ancestor: number): number[] {
  const parent = (pid: number) => {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
      return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1])
    } catch {
      return 0
    }
  }
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((p) => {
      try {
        if (readFileSync(`/proc/${p}/cmdline`, 'utf8') !== 'sleep\u000060\u0000') return false
      } catch {
        return false
      }
      for (let a = parent(p), n = 0; a > 1 && n < 20; a = parent(a), n++) if (a === ancestor) return true
      return false
    })
}

describe('escape suite: limits and what a kill leaves behind', () => {
  itNs('a memory limit too small to start a process is refused before anything starts', async () => {
    for (const memory of ['0', '1m', 5 * 1024 * 1024])
      await expect(run({ command: ['true'], memory })).rejects.toThrow('memory: must be at least 6m (6 MiB)')
    const spec = specWith((s) => {
      s.linux!.resources = { memory: { limit: 4096 } }
    })
    await expect(spawnSpec(spec).exited).rejects.toThrow(
      'linux.resources.memory.limit: must be at least 6291456 bytes (6 MiB): 4096 cannot start a process',
    )
  })

  itRoot('an OOM-killed foreground run says so: oomKilled in the result, a line from the CLI', async () => {
    const hog = ['python3', '-c', 'x = bytearray(256 * 1024 * 1024)']
    const r = await run({ command: hog, memory: '32m' })
    expect(r).toMatchObject({ exitCode: 137, signal: 'SIGKILL', oomKilled: true })
    const c = spawnSync(process.execPath, [cli, 'run', '-m', '32m', '--', ...hog], { encoding: 'utf8' })
    expect(c.status).toBe(137)
    expect(c.stderr).toMatch(/ns: killed by the OOM killer: the container reached its memory limit/)
  })

  itRoot(
    'kill -9 of the CLI, or of the helper, during a run with limits: the next container gives the folders back',
    async () => {
      for (const victim of ['cli', 'helper'] as const) {
        const p = spawn_(process.execPath, [cli, 'run', '-m', '64m', '--', 'sleep', '60'], { stdio: 'ignore' })
        let sleeps: number[] = []
        for (let i = 0; i < 100 && sleeps.length === 0; i++) {
          await new Promise((r) => setTimeout(r, 50))
          sleeps = sleepsUnder(p.pid!)
        }
        expect(sleeps).toHaveLength(1)
        const id = cgroupIdOf(sleeps[0]!)!
        expect(cgroupFolders(id).length).toBeGreaterThan(0)
        if (victim === 'cli') process.kill(p.pid!, 'SIGKILL')
        else {
          const s = readFileSync(`/proc/${sleeps[0]}/stat`, 'utf8')
          const init = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1])
          const t = readFileSync(`/proc/${init}/stat`, 'utf8')
          process.kill(Number(t.slice(t.lastIndexOf(')') + 2).split(' ')[1]), 'SIGKILL') // the helper
        }
        for (let i = 0; i < 100 && existsSync(`/proc/${sleeps[0]}`); i++) await new Promise((r) => setTimeout(r, 20))
        expect(existsSync(`/proc/${sleeps[0]}`)).toBe(false) // the container died with its owner
        const left = cgroupFolders(id)
        // Nobody was there to remove them: the next container made with limits does.
        await run({ command: ['true'], memory: '16m' })
        expect({ victim, before: left.length > 0, after: cgroupFolders(id) }).toEqual({
          victim,
          before: true,
          after: [],
        })
        await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)))
      }
    },
  )

  itRoot(
    'kill -9 of ns serve during a run with limits: the container dies, the next one gives its folders back',
    async () => {
      const socketPath = join(work, 'killed-server.sock')
      const { child } = await startNsServe(['--socket', socketPath, '--root', join(work, 'killed-server-state')])
      const answer = callServer({ socketPath }, 'POST', '/v1/run', { command: ['sleep', '60'], memory: '64m' }).catch(
        (e: Error) => e,
      )
      let sleeps: number[] = []
      for (let i = 0; i < 100 && sleeps.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50))
        sleeps = sleepsUnder(child.pid!)
      }
      expect(sleeps).toHaveLength(1)
      const id = cgroupIdOf(sleeps[0]!)!
      expect(cgroupFolders(id).length).toBeGreaterThan(0)
      child.kill('SIGKILL')
      expect(await answer).toBeInstanceOf(Error) // the connection went with the server
      for (let i = 0; i < 100 && existsSync(`/proc/${sleeps[0]}`); i++) await new Promise((r) => setTimeout(r, 20))
      expect(existsSync(`/proc/${sleeps[0]}`)).toBe(false) // the container died with its server
      const left = cgroupFolders(id)
      await run({ command: ['true'], memory: '16m' })
      expect({ before: left.length > 0, after: cgroupFolders(id) }).toEqual({ before: true, after: [] })
    },
  )
})
