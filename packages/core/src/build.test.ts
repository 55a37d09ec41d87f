// Unit tests of the options -> runtime spec compiler (no kernel involved).
import { describe, expect, it } from 'vitest'

import { buildSpec } from './build.js'
import { parseRunOptions } from './options.js'
import { subordinateRange } from './host.js'

const build = (o: object) => buildSpec(parseRunOptions({ command: ['true'], ...o }), 'abc123abc123').spec

describe('buildSpec', () => {
  it('creates every namespace but time, and time when offsets are asked for', () => {
    expect(build({}).linux!.namespaces!.map((n) => n.type).sort()).toEqual(['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'])
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
    expect(usr.options).toEqual(['rbind', 'ro', 'nosuid', 'nodev'])
    expect(s.annotations!['io.ns.root.readonly']).toBe('true')
    expect(s.mounts!.map((m) => m.destination)).toEqual(expect.arrayContaining(['/proc', '/dev', '/dev/pts', '/dev/shm', '/sys', '/tmp']))
  })

  it('volumes become rbinds, :ro read-only; the default hostname is the id', () => {
    const s = build({ volumes: ['/tmp:/data:ro', '/tmp:/rw'] })
    expect(s.mounts!.find((m) => m.destination === '/data')!.options).toEqual(['rbind', 'ro'])
    expect(s.mounts!.find((m) => m.destination === '/rw')!.options).toEqual(['rbind', 'rw'])
    expect(s.hostname).toBe('abc123abc123')
  })

  it('environment: defaults first, the caller\'s win', () => {
    const s = build({ env: { PATH: '/x', A: 'b' } })
    expect(s.process.env).toEqual(['PATH=/x', 'HOME=/root', 'HOSTNAME=abc123abc123', 'A=b'])
  })

  it('user strings and objects both work', () => {
    const maps = [{ containerID: 0, hostID: 0, size: 2000 }]
    expect(build({ user: '1000:1001', uidMappings: maps }).process.user).toEqual({ uid: 1000, gid: 1001 })
    expect(build({ user: '1000', uidMappings: maps }).process.user).toEqual({ uid: 1000, gid: 1000 })
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
