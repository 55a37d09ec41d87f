// The escape suite: what a process inside a default container (default capabilities, seccomp
// profile, masked paths, namespaces) tries in order to reach the host, and the error each
// attempt gets. System calls are made directly (python3's ctypes from the
// host's /usr, visible read-only in the sandbox), each with harmless arguments: were one to
// succeed, it would change nothing.
import { existsSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { hostname } from 'node:os'

import { describe, expect } from 'vitest'

import { run } from '@ns/core'

import { itNs } from './helpers.js'

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
