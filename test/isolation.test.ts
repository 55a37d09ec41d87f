// Real isolation, seen from inside: each test starts real processes in real namespaces and
// compares what they see with what the host sees.
import {
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
  chmodSync,
  mkdirSync,
  existsSync,
} from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { hostname as hostHostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'

import { describe, expect } from 'vitest'

import { NsError, run, spawn, type Container } from '@ns/core'

import {
  alive,
  cli,
  commandPid,
  fixtureRootfs,
  hostMountinfo,
  hostNs,
  isRoot,
  itNs,
  itRoot,
  repoRoot,
} from './helpers.js'

const sh = (script: string) => ['sh', '-c', script]

/** Host PIDs of the processes, zombies aside, that live in the pid namespace `ns`. */
function livingIn(ns: string): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readlinkSync(`/proc/${d}/ns/pid`) !== ns) continue
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') out.push(Number(d))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

async function firstLine(c: Container): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    let buf = ''
    c.stdout!.on('data', (d: Buffer) => {
      buf += d.toString()
      const i = buf.indexOf('\n')
      if (i >= 0) resolve(buf.slice(0, i))
    })
    c.exited.then(() => reject(new Error(`exited before a line; got ${JSON.stringify(buf)}`)), reject)
  })
}

const nsFiles = ['user', 'pid', 'mnt', 'net', 'uts', 'ipc', 'cgroup', 'time'] as const
const optionName: Record<string, string> = { mnt: 'mount', net: 'network' }
const listNs = sh(`for n in ${nsFiles.join(' ')}; do echo "$n $(readlink /proc/self/ns/$n)"; done`)
const parseNs = (out: string) =>
  Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  )

describe('namespaces', () => {
  itNs("every namespace but time is new by default: the inode ids differ from the host's", async () => {
    const r = await run({ command: listNs })
    expect(r.exitCode).toBe(0)
    const inside = parseNs(r.stdout)
    for (const n of nsFiles) {
      if (n === 'time') expect(inside[n], n).toBe(hostNs(n))
      else expect(inside[n], n).not.toBe(hostNs(n))
    }
  })

  for (const n of nsFiles.filter((n) => n !== 'time' && (n !== 'user' || isRoot))) {
    itNs(`${n} namespace can be shared with the host: then its inode id is the host's`, async () => {
      const name = optionName[n] ?? n
      const r = await run({ command: listNs, namespaces: { [name]: false } })
      expect(r.exitCode, r.stderr).toBe(0)
      const inside = parseNs(r.stdout)
      expect(inside[n]).toBe(hostNs(n))
      for (const other of nsFiles.filter((o) => o !== n && o !== 'time' && !(n === 'user' && o === 'user'))) {
        expect(inside[other], other).not.toBe(hostNs(other))
      }
    })
  }

  itNs("an existing namespace is joined by path: a second container shares the first one's network", async () => {
    const a = spawn({ command: sh('readlink /proc/self/ns/net; read x'), stdin: 'pipe' })
    const netA = await firstLine(a)
    // The command, a child of the container's PID 1: PID 1 is not dumpable, so a normal user
    // may not open its namespaces (root may).
    const pid = commandPid(await a.started)
    const b = await run({
      command: sh('readlink /proc/self/ns/net'),
      namespaces: { network: `/proc/${pid}/ns/net`, user: `/proc/${pid}/ns/user` },
    })
    a.stdin!.end('\n')
    await a.exited
    expect(b.exitCode, b.stderr).toBe(0)
    expect(b.stdout.trim()).toBe(netA)
    expect(netA).not.toBe(hostNs('net'))
  })
})

describe('pid namespace', () => {
  itNs("pid namespace: without init the command is PID 1 and sees none of the host's processes", async () => {
    const r = await run({ command: sh('echo $$; ls /proc | grep -E "^[0-9]+$" | tr "\\n" " "'), init: false })
    const [self, pids] = r.stdout.split('\n')
    expect(self).toBe('1')
    const seen = pids!.trim().split(' ').map(Number)
    expect(Math.max(...seen)).toBeLessThan(20)
    expect(seen).not.toContain(process.pid)
  })

  itNs('pid namespace: with init (the default) PID 1 is the init and the command its child', async () => {
    const r = await run({ command: sh('echo $$; cat /proc/1/comm') })
    expect(r.stdout).toBe('2\nns-oci\n')
  })

  itNs('pid namespace: host processes cannot be signalled from inside', async () => {
    const r = await run({ command: sh(`kill -0 ${process.pid} 2>&1; echo "rc=$?"`) })
    expect(r.stdout).toMatch(/No such process|can't kill/)
    expect(r.stdout).toContain('rc=1')
  })

  itNs('init forwards SIGTERM to the command and exits with its status', async () => {
    const c = spawn({ command: sh('trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.05; done') })
    let out = ''
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    await new Promise<void>((res) => {
      const t = setInterval(() => out.includes('ready') && (clearInterval(t), res()), 10)
    })
    await c.kill('SIGTERM')
    const r = await c.exited
    expect(r.exitCode).toBe(7)
    expect(out).toContain('got-term')
  })

  itNs('init reaps orphans: no zombie is left in the namespace', async () => {
    const r = await run({ command: sh('(sleep 0.1 &) ; sleep 0.4; ps -e -o stat= -o comm=') })
    expect(r.exitCode).toBe(0)
    expect(r.stdout).not.toMatch(/^Z/m)
    expect(r.stdout).toContain('ps')
  })

  itNs('a command killed by a signal reports 128+N and the signal', async () => {
    const r = await run({ command: sh('kill -9 $$') })
    expect(r.signal).toBe('SIGKILL')
    expect(r.exitCode).toBe(137)
  })
})

describe('network namespace', () => {
  itNs('network namespace: only lo, and it is up', async () => {
    const r = await run({ command: sh('ls /sys/class/net; cat /sys/class/net/lo/flags') })
    const [ifaces, flags] = r.stdout.trim().split('\n')
    expect(ifaces).toBe('lo')
    expect(Number(flags) & 1).toBe(1)
    const hostIfaces = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).filter(Boolean)
    expect(hostIfaces.length).toBeGreaterThan(1)
  })

  itNs(
    'network namespace: a server on the host loopback is unreachable from inside, reachable when shared',
    async () => {
      let connections = 0
      const server = createServer((s) => {
        connections++
        s.end()
      })
      await new Promise<void>((res) => server.listen(0, '127.0.0.1', res))
      const port = (server.address() as AddressInfo).port
      const probe = sh(`bash -c 'echo x > /dev/tcp/127.0.0.1/${port}' 2>/dev/null && echo connected || echo refused`)
      try {
        const inside = await run({ command: probe })
        expect(inside.stdout.trim()).toBe('refused')
        expect(connections).toBe(0)
        const shared = await run({ command: probe, namespaces: { network: false } })
        expect(shared.stdout.trim()).toBe('connected')
        expect(connections).toBe(1)
      } finally {
        server.close()
      }
    },
  )
})

describe('mount namespace and root filesystem', () => {
  itNs('mount namespace: a mount made inside is absent from the host', async () => {
    const marker = `ns-test-${process.pid}-${Date.now()}`
    const c = spawn({
      command: sh(`mkdir /tmp/m && mount -t tmpfs ${marker} /tmp/m && grep -c ${marker} /proc/self/mountinfo; read x`),
      stdin: 'pipe',
      capAdd: ['CAP_SYS_ADMIN'],
    })
    expect(await firstLine(c)).toBe('1')
    expect(hostMountinfo()).not.toContain(marker)
    c.stdin!.end('\n')
    expect((await c.exited).exitCode).toBe(0)
    expect(hostMountinfo()).not.toContain(marker)
  })

  itRoot('mount namespace: a mount the host makes while the container runs is absent inside', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ns-hostmount-'))
    const marker = `ns-host-${process.pid}-${Date.now()}`
    const c = spawn({ command: sh(`echo ready; read x; grep -c ${marker} /proc/self/mountinfo`), stdin: 'pipe' })
    try {
      expect(await firstLine(c)).toBe('ready')
      execFileSync('mount', ['-t', 'tmpfs', marker, dir])
      expect(hostMountinfo()).toContain(marker)
      let out = ''
      c.stdout!.on('data', (d: Buffer) => (out += d.toString()))
      c.stdin!.end('\n')
      await c.exited
      expect(out.trim()).toBe('0')
    } finally {
      execFileSync('umount', [dir])
      rmSync(dir, { recursive: true })
    }
  })

  itNs('sandbox: only the read-only host system directories are visible, no other host path', async () => {
    const marker = join(tmpdir(), `ns-marker-${process.pid}`)
    writeFileSync(marker, 'secret')
    try {
      const r = await run({
        command: sh(
          `ls /; test -e ${marker} && echo tmp-visible; test -e ${repoRoot} && echo repo-visible; touch /usr/x 2>&1; touch /x 2>&1; touch /tmp/ok && echo tmp-writable`,
        ),
      })
      const top = r.stdout.split('\n').filter((l) => /^[a-z0-9]+$/.test(l))
      expect(
        top.every((d) =>
          ['bin', 'dev', 'etc', 'lib', 'lib32', 'lib64', 'libx32', 'opt', 'proc', 'sbin', 'sys', 'tmp', 'usr'].includes(
            d,
          ),
        ),
        top.join(','),
      ).toBe(true)
      expect(top).not.toContain('root')
      expect(top).not.toContain('home')
      expect(r.stdout).not.toContain('visible')
      expect(r.stdout).toMatch(/touch: .*\/usr\/x.*Read-only file system/)
      expect(r.stdout).toMatch(/touch: .*\/x.*Read-only file system/)
      expect(r.stdout).toContain('tmp-writable')
    } finally {
      rmSync(marker)
    }
  })

  itNs("rootfs: pivot_root into it, the old root detached: only the container's own mounts remain", async () => {
    const r = await run({ command: sh('cat /proc/self/mountinfo; ls /'), rootfs: fixtureRootfs })
    expect(r.exitCode, r.stderr).toBe(0)
    const points = r.stdout
      .split('\n')
      .filter((l) => / - /.test(l))
      .map((l) => l.split(' ')[4]!)
    expect(points[0]).toBe('/')
    for (const p of points) expect(p, p).toMatch(/^\/(proc|dev|sys|tmp)?(\/|$)/)
    expect(points).not.toContain(repoRoot)
    expect(r.stdout).toContain('bin')
  })

  itNs('rootfs: --read-only makes the root read-only, /tmp stays writable', async () => {
    const r = await run({
      command: sh('touch /x 2>&1; touch /tmp/y && echo ok'),
      rootfs: fixtureRootfs,
      readOnly: true,
    })
    expect(r.stdout).toMatch(/Read-only file system/)
    expect(r.stdout).toContain('ok')
  })

  itNs('a minimal /dev: null, zero, full, random, urandom, tty, pts/ptmx, shm and the fd links', async () => {
    const r = await run({
      command: sh(
        'ls /dev | tr "\\n" " "; echo; head -c 4 /dev/zero | od -An -tx1; readlink /dev/fd /dev/stdin; echo x > /dev/null && echo null-ok; test -c /dev/pts/ptmx && echo ptmx-ok',
      ),
    })
    const names = r.stdout.split('\n')[0]!.trim().split(' ')
    for (const d of [
      'null',
      'zero',
      'full',
      'random',
      'urandom',
      'tty',
      'pts',
      'shm',
      'fd',
      'stdin',
      'stdout',
      'stderr',
      'ptmx',
      'mqueue',
    ]) {
      expect(names, d).toContain(d)
    }
    expect(names).not.toContain('kvm')
    expect(names).not.toContain('vda')
    expect(r.stdout).toContain(' 00 00 00 00')
    expect(r.stdout).toContain('/proc/self/fd\n/proc/self/fd/0')
    expect(r.stdout).toContain('null-ok')
    expect(r.stdout).toContain('ptmx-ok')
  })

  itNs('volumes: a read-write bind shows host files and keeps what is written; :ro refuses writes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ns-vol-'))
    chmodSync(dir, 0o777)
    writeFileSync(join(dir, 'from-host'), 'hello')
    try {
      const r = await run({
        command: sh('cat /data/from-host; echo; echo inside > /data/from-container; ls -l /data >/dev/null; echo done'),
        volumes: [`${dir}:/data`],
        cwd: '/data',
      })
      expect(r.stdout).toBe('hello\ndone\n')
      expect(readFileSync(join(dir, 'from-container'), 'utf8')).toBe('inside\n')
      const ro = await run({ command: sh('echo x > /data/y || echo refused'), volumes: [`${dir}:/data:ro`] })
      expect(ro.stderr).toMatch(/Read-only file system/)
      expect(ro.stdout).toBe('refused\n')
      expect(existsSync(join(dir, 'y'))).toBe(false)
    } finally {
      rmSync(dir, { recursive: true })
    }
  })

  itNs('tmpfs mounts, environment and working directory reach the process', async () => {
    const r = await run({
      command: sh('echo "$A $B"; pwd; grep " /scratch " /proc/self/mountinfo | grep -c tmpfs'),
      env: { A: '1', B: 'two' },
      cwd: '/scratch',
      mounts: [{ type: 'tmpfs', target: '/scratch' }],
    })
    expect(r.stdout).toBe('1 two\n/scratch\n1\n')
  })

  itNs('a symlink in the rootfs cannot send a mount target out of it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ns-evil-'))
    execFileSync('cp', ['-a', `${fixtureRootfs}/.`, root])
    const outside = mkdtempSync(join(tmpdir(), 'ns-outside-'))
    execFileSync('ln', ['-s', outside, join(root, 'escape')])
    try {
      // The link is resolved inside the rootfs, where its target does not exist: refused, and
      // nothing is created or mounted in the host directory it names.
      const e = await run({
        command: ['true'],
        rootfs: root,
        mounts: [{ type: 'tmpfs', target: '/escape/inner' }],
      }).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(NsError)
      expect((e as NsError).code).toBe('ENOENT')
      expect((e as NsError).path).toBe('/escape')
      expect(existsSync(join(outside, 'inner'))).toBe(false)
      // A link to a directory that exists inside the rootfs lands there.
      execFileSync('ln', ['-sfn', '/tmp', join(root, 'escape')])
      const ok = await run({
        command: sh('grep -c " /tmp/inner " /proc/self/mountinfo'),
        rootfs: root,
        mounts: [{ type: 'tmpfs', target: '/escape/inner' }],
      })
      expect(ok.stdout).toBe('1\n')
      expect(hostMountinfo()).not.toContain(outside)
    } finally {
      rmSync(root, { recursive: true, force: true })
      rmSync(outside, { recursive: true, force: true })
    }
  })
})

describe('uts namespace', () => {
  itNs("uts namespace: the hostname and domainname differ inside; the host's are unchanged", async () => {
    const before = hostHostname()
    const r = await run({
      command: sh('hostname; cat /proc/sys/kernel/domainname; hostname changed-inside; hostname'),
      hostname: 'box',
      domainname: 'example.test',
      capAdd: ['SYS_ADMIN'],
    })
    expect(r.stdout).toBe('box\nexample.test\nchanged-inside\n')
    expect(hostHostname()).toBe(before)
  })

  itNs('the default hostname is the container id', async () => {
    const r = await run({ command: ['hostname'] })
    expect(r.stdout.trim()).toMatch(/^[0-9a-f]{12}$/)
    expect(r.stdout.trim()).not.toBe(hostHostname())
  })
})

describe('user namespace', () => {
  itNs(
    'user namespace: root inside; outside, the caller (rootless) or, for root, a range of host ids of its own',
    async () => {
      const r = await run({ command: sh('id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map') })
      const [uid, gid, ...maps] = r.stdout.trim().split('\n')
      expect(uid).toBe('0')
      expect(gid).toBe('0')
      const first = maps[0]!.trim().split(/\s+/).map(Number)
      expect(first[0]).toBe(0)
      if (!isRoot) {
        expect(first[1]).toBe(process.geteuid!())
        return
      }
      // Root inside is nobody outside: 65536 ids leased from 0x60000000 up, gids alike.
      expect(first[1]).toBeGreaterThanOrEqual(0x60000000)
      expect(first[2]).toBe(65536)
      expect(maps[1]!.trim().split(/\s+/).map(Number)).toEqual(first)
    },
  )

  itRoot(
    "root's containers get ranges of their own: two at once do not share one, and the host sees their processes as those ids",
    async () => {
      const a = spawn({ command: sh('cat /proc/self/uid_map; read x'), stdin: 'pipe' })
      const mapA = await firstLine(a)
      const pidA = await a.started
      const b = await run({ command: sh('cat /proc/self/uid_map') })
      const [, hostA] = mapA.trim().split(/\s+/).map(Number)
      const [, hostB] = b.stdout.trim().split(/\s+/).map(Number)
      expect(hostA).not.toBe(hostB)
      expect(Math.abs(hostA! - hostB!)).toBeGreaterThanOrEqual(65536)
      // The container's first process, seen from the host: its ids are the range's first.
      const status = readFileSync(`/proc/${pidA}/status`, 'utf8')
      expect(status).toMatch(new RegExp(`^Uid:\\s+${hostA}\\s+${hostA}\\s+${hostA}\\s+${hostA}$`, 'm'))
      a.stdin!.end('\n')
      await a.exited
    },
  )

  itRoot('ns inside a container: root of a user namespace leases nothing, it maps the ids it has', async () => {
    // The repository, read-only, and every capability with no seccomp filter, so the inner ns may make namespaces.
    const r = await run({
      command: [process.execPath, cli, 'run', '--', 'sh', '-c', 'cat /proc/self/uid_map; id -u'],
      volumes: [`${repoRoot}:${repoRoot}:ro`],
      capAdd: ['ALL'],
      seccomp: 'unconfined',
    })
    expect(r.stderr).toBe('')
    expect(r.stdout.trim().split(/\s+/)).toEqual(['0', '0', '65536', '0'])
  })

  itRoot(
    'root inside cannot read a file only host root may read: a 0600 file through a read-only bind, /etc/shadow; userns: host opts out',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ns-secret-'))
      chmodSync(dir, 0o755)
      writeFileSync(join(dir, 'secret'), 'host root only\n', { mode: 0o600 })
      try {
        const r = await run({
          command: sh('id -u; ls -ln /data/secret; cat /data/secret; cat /etc/shadow >/dev/null'),
          volumes: [`${dir}:/data:ro`],
        })
        const [uid, ls] = r.stdout.split('\n')
        expect(uid).toBe('0')
        expect(ls).toMatch(/^-rw------- +1 65534 +65534 /) // host root's file: nobody's, seen from inside
        expect(r.stderr).toMatch(/cat: (can't open ')?\/data\/secret'?: Permission denied/)
        expect(r.stderr).toMatch(/\/etc\/shadow'?: Permission denied/)
        expect(r.exitCode).not.toBe(0)
        const host = await run({ command: ['cat', '/data/secret'], volumes: [`${dir}:/data:ro`], userns: 'host' })
        expect(host.stdout).toBe('host root only\n')
      } finally {
        rmSync(dir, { recursive: true })
      }
    },
  )

  itRoot(
    "idmapped mounts: through an idmap volume root inside owns host root's files and writes as their owner; a rootfs is idmapped by default",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ns-idmap-'))
      writeFileSync(join(dir, 'secret'), 'readable through idmap\n', { mode: 0o600 })
      try {
        const r = await run({
          command: sh('ls -ln /data/secret; cat /data/secret; echo made > /data/made'),
          volumes: [`${dir}:/data:idmap`],
        })
        expect(r.stderr).toBe('')
        expect(r.stdout).toMatch(/^-rw------- +1 0 +0 .*\n(readable through idmap)\n$/)
        expect(statSync(join(dir, 'made')).uid).toBe(0) // written as the owner: host root
        const rootfs = await run({
          command: sh('stat -c "%u %g" /bin/busybox; grep -c idmapped /proc/self/mountinfo'),
          rootfs: fixtureRootfs,
        })
        expect(rootfs.stdout).toBe('0 0\n1\n')
        const inspect = await run({ command: sh('ls -ln /data'), volumes: [`${dir}:/data:ro`] })
        expect(inspect.stderr).toMatch(/Permission denied/) // the 0700 folder: no idmap, no entry
      } finally {
        rmSync(dir, { recursive: true })
      }
    },
  )

  itNs('a file created on a bind mount is owned on the host by the mapped id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ns-own-'))
    chmodSync(dir, 0o777)
    try {
      const maps = isRoot ? [{ containerID: 0, hostID: 100000, size: 65536 }] : undefined
      const r = await run({
        command: sh('touch /data/by-root; id -u'),
        volumes: [`${dir}:/data`],
        ...(maps ? { uidMappings: maps, gidMappings: maps } : {}),
      })
      expect(r.stdout.trim()).toBe('0')
      const st = statSync(join(dir, 'by-root'))
      // Container root is host 100000 under the explicit map, the caller itself when rootless.
      expect(st.uid).toBe(isRoot ? 100000 : process.geteuid!())
      if (isRoot) {
        await run({
          command: sh('touch /data/by-1000; chown 1000:1000 /data/by-1000'),
          volumes: [`${dir}:/data`],
          uidMappings: maps,
          gidMappings: maps,
        })
        const st1000 = statSync(join(dir, 'by-1000'))
        expect([st1000.uid, st1000.gid]).toEqual([101000, 101000]) // container 1000 -> host 100000 + 1000
      }
    } finally {
      rmSync(dir, { recursive: true })
    }
  })

  itRoot('with a remapped range, root inside cannot read a host root-only file, even through a bind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ns-secret-'))
    chmodSync(dir, 0o755)
    writeFileSync(join(dir, 'secret'), 'top secret')
    chmodSync(join(dir, 'secret'), 0o600)
    try {
      const maps = [{ containerID: 0, hostID: 200000, size: 65536 }]
      const r = await run({
        command: sh('cat /data/secret 2>&1; id -u'),
        volumes: [`${dir}:/data:ro`],
        uidMappings: maps,
        gidMappings: maps,
      })
      expect(r.stdout).toMatch(/Permission denied/)
      expect(r.stdout).not.toContain('top secret')
    } finally {
      rmSync(dir, { recursive: true })
    }
  })

  itNs('capabilities inside do not reach host resources: root inside cannot rename the host', async () => {
    const before = hostHostname()
    try {
      const r = await run({
        command: sh('grep CapEff /proc/self/status; hostname ns-must-not-happen 2>&1; echo rc=$?'),
        namespaces: { uts: false },
        capAdd: ['ALL'],
      })
      expect(r.stdout).toMatch(/CapEff:\s+000001ffffffffff/) // every capability... in its own user namespace
      expect(r.stdout).toMatch(/Operation not permitted|must be root/)
      expect(r.stdout).not.toContain('rc=0')
    } finally {
      expect(hostHostname()).toBe(before)
    }
  })

  itRoot('--user runs the command as that uid and gid, without capabilities', async () => {
    const r = await run({ command: sh('id -u; id -g; grep CapEff /proc/self/status'), user: '1000:1000' })
    expect(r.stdout).toMatch(/^1000\n1000\nCapEff:\s+0+\n$/)
  })
})

describe('ipc namespace', () => {
  itNs('ipc namespace: a SysV queue created inside is invisible to the host and to a second container', async () => {
    const c = spawn({
      command: sh("ipcmk -Q >/dev/null && awk 'NR>1 {print $1; exit}' /proc/sysvipc/msg; read x"),
      stdin: 'pipe',
    })
    const key = await firstLine(c)
    try {
      expect(key).toMatch(/^-?\d+$/)
      const hostKeys = readFileSync('/proc/sysvipc/msg', 'utf8')
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/)[0])
      expect(hostKeys).not.toContain(key)
      const other = await run({ command: sh("awk 'NR>1' /proc/sysvipc/msg | wc -l") })
      expect(other.stdout.trim()).toBe('0')
      const shared = await run({ command: sh('ipcs -q | grep -c "^0x" || true'), namespaces: { ipc: false } })
      expect(Number(shared.stdout.trim())).toBe(hostKeys.filter(Boolean).length)
    } finally {
      c.stdin!.end('\n')
      await c.exited
    }
  })

  itNs('ipc namespace: POSIX message queues live in a private /dev/mqueue', async () => {
    const r = await run({
      command: sh('grep " /dev/mqueue " /proc/self/mountinfo | grep -c mqueue; ls -A /dev/mqueue | wc -l'),
    })
    expect(r.stdout).toBe('1\n0\n')
  })
})

describe('capabilities', () => {
  itNs(
    "the default set is docker's 14; --cap-add and --cap-drop change it; another user has none in effect",
    async () => {
      const caps = async (o: object) =>
        (await run({ command: sh('grep -E "^Cap(Eff|Bnd|Prm)" /proc/self/status'), ...o })).stdout
      expect(await caps({})).toBe('CapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n')
      expect(await caps({ capAdd: ['SYS_ADMIN'], capDrop: ['CAP_NET_RAW'] })).toContain('CapEff:\t00000000a82405fb')
      expect(await caps({ capDrop: ['ALL'] })).toBe(
        'CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n',
      )
      const r = await run({ command: sh('mkdir /tmp/m && mount -t tmpfs x /tmp/m 2>&1; echo rc=$?') })
      expect(r.stdout).toMatch(/Operation not permitted|permission denied/i)
      expect(r.stdout).toContain('rc=')
      expect(r.stdout).not.toContain('rc=0')
    },
  )

  itRoot('a non-root user keeps the default set as a bound only', async () => {
    const r = await run({ command: sh('grep -E "^Cap(Eff|Bnd)" /proc/self/status'), user: '1000:1000' })
    expect(r.stdout).toBe('CapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\n')
  })

  itNs('the runtime binary cannot be overwritten from inside, even with every capability (CVE-2019-5736)', async () => {
    const bin = join(repoRoot, 'packages', 'native', 'bin', 'ns-oci')
    const before = readFileSync(bin)
    const r = await run({
      command: sh('echo x >> /proc/1/exe; echo rc=$?; true > /proc/1/exe; echo rc=$?'),
      capAdd: ['ALL'],
    })
    expect(r.stdout).toBe('rc=2\nrc=2\n')
    expect(r.stderr).toMatch(/Text file busy|Permission denied/)
    expect(readFileSync(bin).equals(before)).toBe(true)
  })

  itNs('an unknown capability is refused, naming the field', async () => {
    await expect(run({ command: ['true'], capAdd: ['CAP_NOPE'] })).rejects.toThrow('capAdd[0]: is not a capability')
  })
})

describe('limits (cgroups)', () => {
  itRoot('a pids limit stops a fork bomb at the limit; the host is unaffected', async () => {
    const r = await run({
      command: sh('for i in $(seq 30); do sleep 2 & done 2>/dev/null; ps -e -o pid= | wc -l'),
      pidsLimit: 10,
    })
    expect(Number(r.stdout.trim())).toBeLessThanOrEqual(10)
    expect(r.stderr + r.stdout).not.toContain('30')
  })

  itRoot('past its memory limit the container is OOM-killed, and it is reported as such', async () => {
    const r = await run({
      command: sh('head -c 200m /dev/zero | tail > /dev/null; echo survived'),
      memory: '32m',
      memorySwap: '32m',
    })
    expect(r.oomKilled).toBe(true)
    // The OOM killer picks the allocating process, usually; the container as a whole reports it.
    expect([0, 137]).toContain(r.exitCode)
    const fine = await run({ command: ['true'], memory: '32m' })
    expect(fine.oomKilled).toBe(false)
  })

  itRoot('limits are written to the cgroup, the cgroup namespace hides it, and it is gone after the run', async () => {
    const c = spawn({
      command: sh('cat /proc/self/cgroup; read x'),
      memory: '48m',
      pidsLimit: 50,
      cpus: 0.5,
      stdin: 'pipe',
    })
    const first = await firstLine(c)
    expect(first).toMatch(/:\/$/) // rooted at its own cgroup
    const pid = await c.started
    const memLine = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => /:memory:/.test(l) || l.startsWith('0::'))!
    const rel = memLine.slice(memLine.lastIndexOf(':') + 1)
    expect(rel).toMatch(/^\/ns\//)
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers')
    const dir = v2 ? `/sys/fs/cgroup${rel}` : `/sys/fs/cgroup/memory${rel}`
    expect(readFileSync(join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), 'utf8').trim()).toBe(String(48 << 20))
    c.stdin!.end('\n')
    await c.exited
    expect(existsSync(dir)).toBe(false)
  })

  itRoot(
    "a block I/O weight is written where the host's I/O scheduler takes one, and refused by name where none does",
    async () => {
      const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers')
      const base = v2 ? '/sys/fs/cgroup' : '/sys/fs/cgroup/blkio'
      const files = v2 ? ['io.weight', 'io.bfq.weight'] : ['blkio.weight', 'blkio.bfq.weight']
      const c = spawn({ command: sh('read x'), blkioWeight: 500, stdin: 'pipe' })
      const pid = await c.started.catch(() => undefined)
      if (pid === undefined) {
        await expect(c.exited).rejects.toThrow(
          /linux\.resources\.blockIO\.weight: this host's I\/O schedulers take no weight/,
        )
        // And indeed: a cgroup made here has neither file.
        const probe = join(base, `ns-probe-${process.pid}`)
        mkdirSync(probe)
        try {
          expect(files.filter((f) => existsSync(join(probe, f)))).toEqual([])
        } finally {
          rmdirSync(probe)
        }
        return
      }
      const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
        .split('\n')
        .find((l) => (v2 ? /^0::/ : /:blkio:/).test(l))!
      const dir = join(base, line.slice(line.lastIndexOf(':') + 1))
      const written = files.map((f) => join(dir, f)).find((f) => existsSync(f))!
      // v1 takes 10..1000 as is; v2's io.weight is 1..10000 (500 -> 4950).
      expect(readFileSync(written, 'utf8')).toMatch(v2 ? /\b4950\b/ : /\b500\b/)
      c.stdin!.end('\n')
      await c.exited
    },
  )

  itNs(
    'limits that cannot be applied fail by name; with bestEffortLimits the container runs and a warning says what was left out',
    async () => {
      // No host has CPU 4095 (a normal user here cannot make a cgroup at all: the same outcome).
      const asked = { command: ['echo', 'ran'], cpusetCpus: '4095' }
      await expect(run(asked)).rejects.toThrow(/cpuset\.cpus|cgroup/)
      const r = await run({ ...asked, bestEffortLimits: true })
      expect(r.exitCode).toBe(0)
      expect(r.stdout).toBe('ran\n')
      expect(r.warnings).toEqual([
        expect.stringMatching(
          /^limits not applied: (linux\.resources\.cpu\.cpus: failed to set cpuset\.cpus to 4095|failed to create a cgroup)/,
        ),
      ])
      // A run whose limits apply has no warning.
      expect((await run({ command: ['true'], bestEffortLimits: true })).warnings).toEqual([])
    },
  )

  itRoot('bad limits name the field', async () => {
    await expect(run({ command: ['true'], blkioWeight: 5 })).rejects.toThrow(
      'blkioWeight: Too small: expected number to be >=10',
    )
    await expect(run({ command: ['true'], memory: 'lots' })).rejects.toThrow('memory: must be a size like 64m')
    await expect(run({ command: ['true'], memory: '64m', memorySwap: '32m' })).rejects.toThrow(
      'linux.resources.memory.swap: must be at least the memory limit',
    )
  })
})

describe('cgroup and time namespaces', () => {
  itNs('cgroup namespace: /proc/self/cgroup shows the root of every hierarchy', async () => {
    const r = await run({ command: ['cat', '/proc/self/cgroup'] })
    const lines = r.stdout.trim().split('\n')
    expect(lines.length).toBeGreaterThan(0)
    for (const l of lines) expect(l).toMatch(/:\/$/)
  })

  itNs("time namespace: a boottime offset shows in /proc/uptime, the host's clock is untouched", async () => {
    const offset = 10 * 86400
    const r = await run({ command: ['cat', '/proc/uptime'], timeOffsets: { boottime: offset } })
    const host = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0])
    const inside = Number(r.stdout.split(' ')[0])
    expect(inside - host).toBeGreaterThan(offset - 60)
    expect(inside - host).toBeLessThan(offset + 60)
    const plain = await run({ command: ['cat', '/proc/uptime'] })
    expect(Math.abs(Number(plain.stdout.split(' ')[0]) - host)).toBeLessThan(60)
  })
})

describe('stdio and lifetime', () => {
  itNs('stdin, stdout and stderr are pipes in the API', async () => {
    const r = await run({ command: sh('cat; echo err >&2'), input: 'from stdin' })
    expect(r.stdout).toBe('from stdin')
    expect(r.stderr).toBe('err\n')
  })

  itNs('a timeout kills the container and says so', async () => {
    const t0 = Date.now()
    const r = await run({ command: ['sleep', '30'], timeout: 300 })
    expect(r.timedOut).toBe(true)
    expect(r.signal).toBe('SIGKILL')
    expect(Date.now() - t0).toBeLessThan(10_000)
  })

  itNs('an AbortSignal kills the container', async () => {
    const ac = new AbortController()
    const c = spawn({ command: ['sleep', '30'], signal: ac.signal })
    await c.started
    ac.abort()
    expect((await c.exited).signal).toBe('SIGKILL')
  })

  itNs('when the helper is killed, the whole container dies with it', async () => {
    const c = spawn({ command: sh('sleep 30 & sleep 30 & echo $$; wait') })
    const hostPid = await c.started
    await firstLine(c)
    const inNs = readFileSync(`/proc/${hostPid}/status`, 'utf8').match(/NSpid:\s+(.*)/)![1]!
    expect(inNs.trim().split(/\s+/).at(-1)).toBe('1')
    const pidNs = readlinkSync(`/proc/${commandPid(hostPid)}/ns/pid`) // PID 1's is its own (not dumpable)
    // init, sh, two sleeps (a normal user cannot see the init's namespace: it is not dumpable)
    expect(livingIn(pidNs).length).toBe(isRoot ? 4 : 3)
    await c.kill('SIGKILL')
    await c.exited
    const gone = () => livingIn(pidNs).length === 0 && !alive(hostPid)
    for (let i = 0; i < 50 && !gone(); i++) await new Promise((r) => setTimeout(r, 20))
    expect(livingIn(pidNs)).toEqual([])
    expect(alive(hostPid)).toBe(false)
  })
})

describe('rootfs fixture', () => {
  itNs('the fixture rootfs runs its own sh with a custom hostname, env and workdir', async () => {
    mkdirSync(join(fixtureRootfs, 'data'), { recursive: true })
    const r = await run({
      command: sh('hostname; echo $A; pwd; ls /bin/sh'),
      rootfs: fixtureRootfs,
      hostname: 'fixture',
      env: { A: '1' },
      cwd: '/data',
    })
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toBe('fixture\n1\n/data\n/bin/sh\n')
  })
})
