// Unit tests of the options -> runtime spec compiler (no kernel involved).
import { describe, expect, it } from 'vitest'

import { buildSpec, makeSpec } from './build.js'
import { parseRunOptions } from './options.js'
import { subordinateRange } from './host.js'
import { defaultSeccompProfile, type SeccompProfile } from './seccomp.js'
import { validateSpec } from './spec.js'

const build = (o: object) => buildSpec(parseRunOptions({ command: ['true'], ...o }), 'abc123abc123').spec

describe('buildSpec', () => {
  it('creates every namespace but time, and time when offsets are asked for', () => {
    expect(
      build({})
        .linux!.namespaces!.map((n) => n.type)
        .sort(),
    ).toEqual(['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'])
    const t = build({ timeOffsets: { boottime: 5 } })
    expect(t.linux!.namespaces!.map((n) => n.type)).toContain('time')
    expect(t.linux!.timeOffsets).toEqual({ boottime: { secs: 5, nanosecs: 0 } })
  })

  it('false shares a namespace, a path joins one', () => {
    const s = build({ namespaces: { network: false, ipc: '/proc/1/ns/ipc' } })
    const ns = s.linux!.namespaces!
    expect(ns.find((n) => n.type === 'network')).toBeUndefined()
    expect(ns.find((n) => n.type === 'ipc')).toEqual({ type: 'ipc', path: '/proc/1/ns/ipc' })
  })

  it('the sandbox binds host system directories read-only and has no root.path', () => {
    const s = build({})
    expect(s.root).toBeUndefined()
    const usr = s.mounts!.find((m) => m.destination === '/usr')!
    expect(usr.options).toEqual(['rbind', 'rro', 'rnosuid', 'rnodev'])
    expect(s.annotations!['io.ns.root.readonly']).toBe('true')
    expect(s.mounts!.map((m) => m.destination)).toEqual(
      expect.arrayContaining(['/proc', '/dev', '/dev/pts', '/dev/shm', '/sys', '/tmp']),
    )
  })

  it('volumes become rbinds, :ro read-only; the default hostname is the id', () => {
    const s = build({ volumes: ['/tmp:/data:ro', '/tmp:/rw'] })
    expect(s.mounts!.find((m) => m.destination === '/data')!.options).toEqual(['rbind', 'rro'])
    expect(s.mounts!.find((m) => m.destination === '/rw')!.options).toEqual(['rbind', 'rw'])
    expect(s.hostname).toBe('abc123abc123')
  })

  it("environment: defaults first, the caller's win", () => {
    const s = build({ env: { PATH: '/x', A: 'b' } })
    expect(s.process.env).toEqual(['PATH=/x', 'HOME=/root', 'HOSTNAME=abc123abc123', 'A=b'])
  })

  it('user strings and objects both work', () => {
    const maps = [{ containerID: 0, hostID: 0, size: 2000 }]
    expect(build({ user: '1000:1001', uidMappings: maps }).process.user).toEqual({ uid: 1000, gid: 1001 })
    expect(build({ user: '1000', uidMappings: maps }).process.user).toEqual({ uid: 1000, gid: 1000 })
  })
})

describe('buildSpec and the spec schema', () => {
  const maps = [{ containerID: 0, hostID: 100000, size: 65536 }]
  const options = [
    {},
    {
      rootfs: '/',
      readOnly: true,
      hostname: 'h',
      domainname: 'd',
      cwd: '/tmp',
      tty: true,
      noNewPrivileges: false,
      init: false,
    },
    {
      env: { A: 'b', PATH: '/x' },
      user: { uid: 5, gid: 6, additionalGids: [7] },
      uidMappings: maps,
      gidMappings: maps,
    },
    {
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 20 }],
      capAdd: ['SYS_ADMIN'],
      capDrop: ['CHOWN'],
      user: '1000',
      uidMappings: maps,
    },
    {
      timeOffsets: { boottime: 5, monotonic: -3 },
      labels: { a: 'b' },
      bestEffortLimits: true,
      memory: '64m',
      cpus: 0.5,
      pidsLimit: 10,
    },
    {
      volumes: ['/tmp:/data:ro'],
      mounts: [{ type: 'tmpfs' as const, target: '/t', size: '1m' }],
      namespaces: { network: false, ipc: '/proc/1/ns/ipc' },
    },
    { seccomp: 'unconfined' as const },
    { seccomp: { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] } },
  ]

  it("a built spec is in the schema's own form: validating it changes nothing, not even the order of keys", () => {
    for (const o of options) {
      const spec = build(o)
      expect(JSON.stringify(validateSpec(spec))).toBe(JSON.stringify(spec))
    }
  })

  it('values the options allow more freely than the spec are refused as validateSpec refuses them', () => {
    const message = (o: object, id = 'abc123abc123') => {
      try {
        buildSpec(parseRunOptions({ command: ['true'], ...o }), id)
      } catch (e) {
        return (e as Error).message
      }
      return 'built'
    }
    expect(message({ env: { '': 'x' } })).toBe('process.env[3]: must be KEY=VALUE')
    expect(message({ user: '4294967296', namespaces: { user: false } })).toBe(
      'process.user.uid: Too big: expected number to be <=4294967295',
    )
    expect(
      message({ user: { uid: 1, additionalGids: [2 ** 32] }, env: { '': 'x' }, namespaces: { user: false } }),
    ).toBe('process.user.additionalGids[0]: Too big: expected number to be <=4294967295')
    // A long id is a name, not a hostname: the container gets a hostname of its own (see rules.test.ts).
    expect(message({}, 'x'.repeat(65))).toBe('built')
  })

  it('specs that run as built share one frozen default seccomp profile; buildSpec gives the caller a copy to change', () => {
    const make = (o: object) => makeSpec(parseRunOptions({ command: ['true'], ...o }), 'abc123abc123').spec
    const shared = make({}).linux!.seccomp
    expect(make({}).linux!.seccomp).toBe(shared)
    expect(Object.isFrozen(shared)).toBe(true)
    expect(shared).toEqual(defaultSeccompProfile(make({}).process.capabilities!.bounding!))
    expect(make({ capAdd: ['SYS_ADMIN'] }).linux!.seccomp).toEqual(
      defaultSeccompProfile(make({ capAdd: ['SYS_ADMIN'] }).process.capabilities!.bounding!),
    )
    const own = build({}).linux!.seccomp as SeccompProfile
    expect(own).not.toBe(shared)
    expect(own).toEqual(shared)
    own.syscalls.push({ names: ['ptrace'], action: 'SCMP_ACT_ERRNO' })
    expect(own.syscalls).toHaveLength((shared as SeccompProfile).syscalls.length + 1)
  })
})

describe('subordinateRange', () => {
  it('reads the first matching range of /etc/subuid-style files', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs')
    const { join } = await import('node:path')
    const { tmpdir } = await import('node:os')
    const f = join(mkdtempSync(join(tmpdir(), 'ns-sub-')), 'subuid')
    writeFileSync(f, 'alice:100000:65536\nbob:165536:65536\n1002:231072:1000\n')
    expect(subordinateRange(f, 'bob', 1001)).toEqual({ start: 165536, count: 65536 })
    expect(subordinateRange(f, 'carol', 1002)).toEqual({ start: 231072, count: 1000 })
    expect(subordinateRange(f, 'dave', 1003)).toBeUndefined()
  })
})
