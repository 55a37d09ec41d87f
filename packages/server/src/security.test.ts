// The policy and the token, without containers: what is refused, what is let through, and the
// path that gets mounted.
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Hono } from 'hono'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

import { buildSpec, defaultSeccompProfile, get, list, parseRunOptions, type OciSpec } from '@ns/core'

import { fixtureRootfs, isRoot, itNs } from '../../../test/helpers.js'

import { createApp } from './app.js'

import { ApiError, errorResponse } from './errors.js'
import {
  admitOptions,
  admitSpec,
  bearerAuth,
  checkOptions,
  checkSpec,
  generateToken,
  resolveAllowedRoots,
  tokenMatches,
  type Policy,
} from './security.js'
import { parseListen } from './serve.js'

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'ns-policy-')))
// Root's containers run as a range of their own: what they bind must be open to others.
chmodSync(dir, 0o755)
mkdirSync(join(dir, 'ok'))
mkdirSync(join(dir, 'no'))
symlinkSync(join(dir, 'no'), join(dir, 'ok', 'link'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const policy: Policy = { allowBind: resolveAllowedRoots([join(dir, 'ok')]), allowPrivileged: false }

function refusal(f: () => unknown): { status: number; field: string | undefined } {
  try {
    f()
  } catch (e) {
    if (e instanceof ApiError) return { status: e.status, field: e.field }
    throw e
  }
  throw new Error('not refused')
}

/**
 * A spec that keeps to the policy, as the core builds it (the default capabilities, seccomp
 * profile, masked paths, no_new_privs; id maps as ns gives them), less the sandbox's binds of
 * host directories.
 */
const spec = (over: Partial<OciSpec> = {}): OciSpec => {
  const built = buildSpec(parseRunOptions({ command: ['true'] }), 'policy-test').spec
  return { ...built, mounts: built.mounts!.filter((m) => m.type !== 'bind'), ...over }
}

describe('bind policy', () => {
  it('a source under an allowed root passes, resolved; outside, or through a symlink out, is 403; missing or relative is 400', () => {
    const o = checkOptions({ command: ['true'], volumes: [`${dir}/ok/../ok:/data:ro`] }, policy)
    expect(o.volumes).toEqual([`${dir}/ok:/data:ro`])
    expect(refusal(() => checkOptions({ command: ['true'], volumes: [`${dir}/no:/data`] }, policy))).toEqual({
      status: 403,
      field: 'volumes[0]',
    })
    expect(
      refusal(() =>
        checkOptions({ command: ['true'], mounts: [{ type: 'bind', source: `${dir}/ok/link`, target: '/x' }] }, policy),
      ),
    ).toEqual({
      status: 403,
      field: 'mounts[0].source',
    })
    expect(refusal(() => checkOptions({ command: ['true'], volumes: [`${dir}/ok/missing:/data`] }, policy))).toEqual({
      status: 400,
      field: 'volumes[0]',
    })
    expect(refusal(() => checkOptions({ command: ['true'], volumes: ['ok:/data'] }, policy))).toEqual({
      status: 400,
      field: 'volumes[0]',
    })
    // A root filesystem is a host directory too.
    expect(refusal(() => checkOptions({ command: ['true'], rootfs: `${dir}/no` }, policy))).toEqual({
      status: 403,
      field: 'rootfs',
    })
    // A tmpfs shows nothing of the host.
    expect(checkOptions({ command: ['true'], mounts: [{ type: 'tmpfs', target: '/x' }] }, policy).mounts).toEqual([
      { type: 'tmpfs', target: '/x' },
    ])
  })

  it("spec mounts: type bind or a bind/rbind option are checked; other types than the kernel's own need --allow-privileged", () => {
    const bind = (m: object) => spec({ mounts: [{ destination: '/x', ...m }] })
    expect(
      checkSpec(bind({ type: 'bind', source: `${dir}/ok/.`, options: ['rbind'] }), policy).mounts![0]!.source,
    ).toBe(`${dir}/ok`)
    expect(refusal(() => checkSpec(bind({ source: `${dir}/no`, options: ['rbind', 'ro'] }), policy))).toEqual({
      status: 403,
      field: 'spec.mounts[0].source',
    })
    expect(
      refusal(() => checkSpec(bind({ type: 'overlay', source: 'overlay', options: [`lowerdir=${dir}/no`] }), policy)),
    ).toEqual({
      status: 403,
      field: 'spec.mounts[0].type',
    })
    // proc away from /proc escapes the masked and read-only paths.
    expect(refusal(() => checkSpec(bind({ type: 'proc', source: 'proc' }), policy))).toEqual({
      status: 403,
      field: 'spec.mounts[0].destination',
    })
  })
})

describe('privileged options', () => {
  it('host namespaces (time excepted), the host root mapped, / as root: refused unless allowed', () => {
    const refused = (o: Parameters<typeof checkOptions>[0]) => refusal(() => checkOptions(o, policy))
    expect(refused({ command: ['true'], namespaces: { ipc: false } })).toEqual({ status: 403, field: 'namespaces.ipc' })
    expect(refused({ command: ['true'], namespaces: { network: '/proc/1/ns/net' } })).toEqual({
      status: 403,
      field: 'namespaces.network',
    })
    expect(
      refused({
        command: ['true'],
        gidMappings: [
          { containerID: 0, hostID: 5000, size: 1 },
          { containerID: 1, hostID: 0, size: 1 },
        ],
      }),
    ).toEqual({
      status: 403,
      // Given only gidMappings, root's uid maps default to the host's own ids (0 is host root),
      // refused as what gidMappings brought; anyone else's to their own, and then gid 5000 is
      // not theirs.
      field: isRoot ? 'gidMappings' : 'gidMappings[0]',
    })
    expect(refused({ command: ['true'], rootfs: '/' })).toEqual({ status: 403, field: 'rootfs' })
    expect(checkOptions({ command: ['true'], namespaces: { time: false, pid: true } }, policy).namespaces).toEqual({
      time: false,
      pid: true,
    })
    const open: Policy = { allowBind: ['/'], allowPrivileged: true }
    expect(checkOptions({ command: ['true'], namespaces: { network: false }, rootfs: '/' }, open).rootfs).toBe('/')
  })

  it('specs: a user namespace and all the others are a must; no joined ones, no host root, no hooks', () => {
    const ns = spec().linux!.namespaces!
    expect(
      refusal(() => checkSpec(spec({ linux: { namespaces: ns.filter((n) => n.type !== 'user') } }), policy)).field,
    ).toBe('spec.linux.namespaces')
    expect(
      refusal(() => checkSpec(spec({ linux: { namespaces: ns.filter((n) => n.type !== 'network') } }), policy)).field,
    ).toBe('spec.linux.namespaces')
    expect(
      refusal(() =>
        checkSpec(spec({ linux: { namespaces: [...ns.slice(1), { type: 'user', path: '/proc/1/ns/user' }] } }), policy),
      ).field,
    ).toBe('spec.linux.namespaces[6].path')
    expect(
      refusal(() =>
        checkSpec(spec({ linux: { namespaces: ns, uidMappings: [{ containerID: 0, hostID: 0, size: 1 }] } }), policy),
      ).field,
    ).toBe('spec.linux.uidMappings[0]')
    expect(
      refusal(() => checkSpec({ ...spec(), hooks: { poststop: [{ path: '/bin/true' }] } } as OciSpec, policy)).field,
    ).toBe('spec.hooks')
    expect(refusal(() => checkSpec(spec({ root: { path: '/' } }), { ...policy, allowBind: ['/'] })).field).toBe(
      'spec.root.path',
    )
    expect(refusal(() => checkSpec(spec({ root: { path: 'rootfs' } }), policy))).toEqual({
      status: 400,
      field: 'spec.root.path',
    })
    expect(checkSpec(spec(), policy)).toEqual(spec())
  })
})

describe('what the policy lets through, and what the server adds', () => {
  it("a runc-style spec passes: the kernel's filesystems where they belong (sysfs and cgroup read-only), namespaced sysctls, a deny-all device rule, labels, fewer capabilities", () => {
    const s = spec()
    s.mounts = [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755'] },
      { destination: '/dev/pts/', type: 'devpts', source: 'devpts', options: ['nosuid', 'newinstance'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue' },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'relatime', 'ro'] },
    ]
    s.linux!.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '65536', 'fs.mqueue.msg_max': '20' }
    s.linux!.resources = { devices: [{ allow: false, access: 'rwm' }], pids: { limit: 10 } }
    s.linux!.namespaces!.push({ type: 'time' })
    s.process.capabilities = { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] }
    s.annotations = { ...s.annotations, 'io.ns.label/app': 'web', 'io.ns.limits': 'best-effort', other: 'x' }
    expect(checkSpec(s, policy)).toEqual(s)
    // The same, sysfs writable or a host sysctl: refused.
    s.mounts[4]!.options = ['nosuid', 'ro', 'rw']
    expect(refusal(() => checkSpec(s, policy)).field).toBe('spec.mounts[4].options')
  })

  it("explicit id maps pass within the server's own ids (a user's server: its id and subordinate range), not past them", () => {
    const own: Policy = {
      ...policy,
      ids: {
        uid: [
          { containerID: 0, hostID: 1000, size: 1 },
          { containerID: 1, hostID: 200_000, size: 65536 },
        ],
        gid: [
          { containerID: 0, hostID: 1000, size: 1 },
          { containerID: 1, hostID: 200_000, size: 65536 },
        ],
      },
    }
    const maps = (gid: object[]) =>
      spec({
        linux: {
          ...spec().linux,
          uidMappings: [
            { containerID: 0, hostID: 1000, size: 1 },
            { containerID: 1, hostID: 200_000, size: 1000 },
          ],
          gidMappings: gid as never,
        },
      })
    const inside = maps([
      { containerID: 0, hostID: 1000, size: 1 },
      { containerID: 1, hostID: 264_535, size: 1001 },
    ])
    expect(checkSpec(inside, own).linux!.gidMappings).toHaveLength(2)
    const shadow = maps([{ containerID: 0, hostID: 42, size: 1 }])
    expect(refusal(() => checkSpec(shadow, own))).toEqual({ status: 403, field: 'spec.linux.gidMappings[0]' })
    // One past the end of the range.
    const past = maps([
      { containerID: 0, hostID: 1000, size: 1 },
      { containerID: 1, hostID: 264_535, size: 1002 },
    ])
    expect(refusal(() => checkSpec(past, own)).field).toBe('spec.linux.gidMappings[1]')
    // Root's server has none to give: every container gets a range leased for it.
    const root: Policy = { ...policy, ids: { uid: [], gid: [] } }
    expect(refusal(() => checkSpec(inside, root)).field).toBe('spec.linux.uidMappings[0]')
  })

  it("friendly options: the sandbox's binds of host directories are the server's own; the same binds in a client's spec are refused", () => {
    const { spec: built } = admitOptions({ command: ['true'] }, policy)
    expect(built.mounts!.filter((m) => m.type === 'bind').map((m) => m.source)).toContain('/usr')
    const { 'io.ns.bind.roots': _, ...annotations } = built.annotations!
    expect(refusal(() => checkSpec({ ...built, annotations }, policy))).toEqual({
      status: 403,
      field: 'spec.mounts[0].source',
    })
  })

  it("a root filesystem is not idmapped for an unprivileged client (root's container writes there as its leased range); with --allow-privileged it is, as ns does by default", () => {
    const o = { command: ['true'], rootfs: fixtureRootfs }
    const roots = { ...policy, allowBind: [fixtureRootfs] }
    expect(admitOptions(o, roots).spec.annotations!['io.ns.root.idmap']).toBeUndefined()
    // The builder asks for it for root's leased range only.
    expect(admitOptions(o, { ...roots, allowPrivileged: true }).spec.annotations!['io.ns.root.idmap']).toBe(
      isRoot ? 'true' : undefined,
    )
    // Asked for in a spec, it is refused.
    const idmapped = spec({ root: { path: fixtureRootfs }, annotations: { 'io.ns.root.idmap': 'true' } })
    expect(refusal(() => checkSpec(idmapped, roots)).field).toBe('spec.annotations.io.ns.root.idmap')
  })

  it("io.ns.bind.roots on every spec the server runs: the operator's roots (and the sandbox's directories), whatever the client sent", () => {
    const roots = (s: OciSpec) => JSON.parse(s.annotations!['io.ns.bind.roots']!) as string[]
    const withVolume = admitOptions({ command: ['true'], volumes: [`${dir}/ok:/data`] }, policy).spec
    expect(roots(withVolume)).toEqual([
      `${dir}/ok`,
      ...withVolume.mounts!.filter((m) => m.type === 'bind' && m.source !== `${dir}/ok`).map((m) => m.source),
    ])
    expect(roots(withVolume)).toContain('/usr')
    const fromRootfs = admitOptions({ command: ['true'], rootfs: `${dir}/ok` }, policy).spec
    expect(roots(fromRootfs)).toEqual([`${dir}/ok`])
    // A privileged client's own value is replaced; no roots at all: nothing may be bound.
    const open: Policy = { allowBind: [], allowPrivileged: true }
    const sent = spec({ annotations: { 'io.ns.bind.roots': '["/"]' } })
    expect(roots(admitSpec(sent, open, 'x'))).toEqual([])
    expect(roots(admitSpec(sent, { ...open, allowBind: [`${dir}/ok`] }, 'x'))).toEqual([`${dir}/ok`])
  })

  it("a spec given no id maps gets what friendly options get: a leased range (root), the server's ids (anyone else); its id is the container's", () => {
    const bare = spec()
    delete bare.linux!.uidMappings
    delete bare.linux!.gidMappings
    delete bare.annotations!['io.ns.userns']
    const leased = admitSpec(bare, { ...policy, ids: { uid: [], gid: [] } }, 'box')
    expect(leased.annotations).toMatchObject({ 'io.ns.userns': 'auto', 'io.ns.id': 'box' })
    expect(leased.linux!.uidMappings).toBeUndefined()
    const ids = { uid: [{ containerID: 0, hostID: 1000, size: 1 }], gid: [{ containerID: 0, hostID: 1001, size: 1 }] }
    const mapped = admitSpec(bare, { ...policy, ids }, 'box')
    expect(mapped.linux).toMatchObject({ uidMappings: ids.uid, gidMappings: ids.gid })
    expect(mapped.annotations!['io.ns.userns']).toBeUndefined()
  })
})

describe('bearer token', () => {
  it('tokens are 32 random bytes; comparison is by equal-length digests', () => {
    const t = generateToken()
    expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(generateToken()).not.toBe(t)
    const expected = createHash('sha256').update(t).digest()
    expect(tokenMatches(t, expected)).toBe(true)
    expect(tokenMatches(`${t}x`, expected)).toBe(false)
    expect(tokenMatches('', expected)).toBe(false)
  })

  it('the middleware: 401 with a challenge without the token, through with it, health open', async () => {
    const app = new Hono()
    app.onError(errorResponse)
    app.use(bearerAuth('0123456789abcdef0123'))
    app.get('/v1/containers', (c) => c.json([]))
    app.get('/v1/health', (c) => c.json({ ok: true }))
    const none = await app.request('/v1/containers')
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="ns"')
    expect((await app.request('/v1/containers', { headers: { authorization: 'Basic abc' } })).status).toBe(401)
    expect(
      (await app.request('/v1/containers', { headers: { authorization: 'Bearer 0123456789abcdef0123' } })).status,
    ).toBe(200)
    expect(
      (await app.request('/v1/containers', { headers: { authorization: 'bearer 0123456789abcdef0123' } })).status,
    ).toBe(200)
    expect((await app.request('/v1/health')).status).toBe(200)
  })

  it('--listen takes HOST:PORT and [V6]:PORT', () => {
    expect(parseListen('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 })
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 })
    expect(parseListen('localhost:1')).toEqual({ host: 'localhost', port: 1 })
    expect(() => parseListen('8080')).toThrow('listen: "8080" must be HOST:PORT')
    expect(() => parseListen('::1:80')).toThrow('must be HOST:PORT')
    expect(() => parseListen('a:70000')).toThrow('must be HOST:PORT')
  })
})

// ---------------------------------------------------------------------------------------------
// The policy field by field, through the routes: each request is refused (403, naming the
// field) by a server without --allow-privileged, and let through by one with it. Let through
// means created (then deleted), or, where the kernel itself says no to a user namespace's root
// (a host sysctl, a lower oom_score_adj, a host id newuidmap does not grant), refused by the
// runtime at its step, not by the policy.

describe('the policy, field by field, over app.request()', () => {
  const state = join(dir, 'state')
  const allowBind = [join(dir, 'ok'), fixtureRootfs]
  const closed = createApp({ root: state, allowBind })
  // --allow-privileged; a bind outside the roots passes once its directory is allowed.
  const open = createApp({ root: state, allowBind: [...allowBind, join(dir, 'no')], allowPrivileged: true })
  const post = (app: ReturnType<typeof createApp>, path: string, body: unknown) =>
    app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

  /** A spec that keeps to the policy, with a root filesystem, then `edit`ed. */
  const specWith = (edit: (s: OciSpec) => void) => {
    const { spec } = buildSpec(parseRunOptions({ command: ['true'], rootfs: fixtureRootfs }))
    // Root's builder asks for an idmapped root filesystem; a client may not (see below).
    delete spec.annotations!['io.ns.root.idmap']
    edit(spec)
    return { spec }
  }
  const addCap = (...sets: ('bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient')[]) =>
    specWith((s) => {
      for (const set of sets) s.process.capabilities![set] = [...(s.process.capabilities![set] ?? []), 'CAP_SYS_ADMIN']
    })
  const standard = specWith(() => {}).spec.mounts!
  /** The index of a mount added after the standard ones. */
  const added = standard.length
  const mount = (m: object) => specWith((s) => s.mounts!.push({ destination: '/data', ...m }))
  const annotate = (key: string, value: string) => specWith((s) => (s.annotations![key] = value))
  const coreDump = readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim()
  /** Created as root; as anyone else newuidmap (or the kernel) refuses what is not theirs, or needs root. */
  const rootOnly = isRoot ? 201 : ('runtime' as const)

  interface Case {
    body: Record<string, unknown>
    field: string
    /** With --allow-privileged: 201, or 'runtime' (the runtime refuses it at a step of its own). */
    open?: 201 | 'runtime'
  }
  const friendly = (o: object) => ({ command: ['true'], ...o })
  const cases: Record<string, Case> = {
    'capabilities beyond the default set (capAdd)': { body: friendly({ capAdd: ['ALL'] }), field: 'capAdd' },
    'seccomp unconfined': { body: friendly({ seccomp: 'unconfined' }), field: 'seccomp' },
    'a seccomp profile of its own': {
      body: friendly({ seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [] } }),
      field: 'seccomp',
    },
    'noNewPrivileges: false': { body: friendly({ noNewPrivileges: false }), field: 'noNewPrivileges' },
    "the host's network namespace": { body: friendly({ namespaces: { network: false } }), field: 'namespaces.network' },
    'a joined IPC namespace': {
      body: friendly({ namespaces: { ipc: '/proc/self/ns/ipc' } }),
      field: 'namespaces.ipc',
      open: rootOnly,
    },
    "userns: host (the host's user namespace)": { body: friendly({ userns: 'host' }), field: 'userns', open: rootOnly },
    'explicit uidMappings outside the lease': {
      body: friendly({ uidMappings: [{ containerID: 0, hostID: isRoot ? 100_000 : 0, size: 1 }] }),
      field: 'uidMappings[0]',
      open: rootOnly,
    },
    'explicit gidMappings (group shadow)': {
      body: friendly({ gidMappings: [{ containerID: 0, hostID: 42, size: 1 }] }),
      field: isRoot ? 'gidMappings' : 'gidMappings[0]',
      open: rootOnly,
    },
    'an idmapped volume': {
      body: friendly({ volumes: [`${dir}/ok:/data:idmap`] }),
      field: 'volumes[0]',
      open: rootOnly,
    },
    'an idmapped bind mount': {
      body: friendly({ mounts: [{ type: 'bind', source: `${dir}/ok`, target: '/data', idmap: true }] }),
      field: 'mounts[0].idmap',
      open: rootOnly,
    },
    'spec: no capabilities at all (all of them kept)': {
      body: specWith((s) => delete s.process.capabilities),
      field: 'spec.process.capabilities',
    },
    'spec: CAP_SYS_ADMIN in the bounding set': {
      body: addCap('bounding'),
      field: 'spec.process.capabilities.bounding',
    },
    'spec: CAP_SYS_ADMIN permitted': { body: addCap('permitted'), field: 'spec.process.capabilities.permitted' },
    'spec: CAP_SYS_ADMIN in effect': {
      body: addCap('bounding', 'permitted', 'effective'),
      field: 'spec.process.capabilities.effective',
    },
    'spec: CAP_SYS_ADMIN inheritable': {
      body: addCap('bounding', 'permitted', 'inheritable'),
      field: 'spec.process.capabilities.inheritable',
    },
    'spec: CAP_SYS_ADMIN ambient': {
      body: addCap('bounding', 'permitted', 'inheritable', 'ambient'),
      field: 'spec.process.capabilities.ambient',
    },
    'spec: no seccomp profile': { body: specWith((s) => delete s.linux!.seccomp), field: 'spec.linux.seccomp' },
    'spec: the default profile less a rule': {
      body: specWith((s) => (s.linux!.seccomp = { ...defaultSeccompProfile([]), syscalls: [] })),
      field: 'spec.linux.seccomp',
    },
    'spec: no new network namespace': {
      body: specWith((s) => (s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'network'))),
      field: 'spec.linux.namespaces',
    },
    'spec: a joined namespace': {
      body: specWith((s) => {
        const i = s.linux!.namespaces!.findIndex((n) => n.type === 'ipc')
        s.linux!.namespaces![i] = { type: 'ipc', path: '/proc/self/ns/ipc' }
      }),
      field: `spec.linux.namespaces[${specWith(() => {}).spec.linux!.namespaces!.findIndex((n) => n.type === 'ipc')}].path`,
      open: rootOnly,
    },
    'spec: linux.cgroupsPath': {
      body: specWith((s) => (s.linux!.cgroupsPath = `ns-policy-test-${process.pid}`)),
      field: 'spec.linux.cgroupsPath',
    },
    'spec: uidMappings outside the lease': {
      body: specWith((s) => {
        const map = isRoot ? { containerID: 0, hostID: 100_000, size: 65536 } : { containerID: 0, hostID: 0, size: 1 }
        s.linux!.uidMappings = [map]
        s.linux!.gidMappings = [map]
        delete s.annotations!['io.ns.userns']
      }),
      field: 'spec.linux.uidMappings[0]',
      open: rootOnly,
    },
    'spec: an idmapped bind': {
      body: mount({ type: 'bind', source: `${dir}/ok`, options: ['rbind', 'idmap'] }),
      field: `spec.mounts[${added}].options`,
      open: rootOnly,
    },
    'spec: an idmapped root filesystem (io.ns.root.idmap)': {
      body: annotate('io.ns.root.idmap', 'true'),
      field: 'spec.annotations.io.ns.root.idmap',
      open: rootOnly,
    },
    'spec: a bind source outside --allow-bind': {
      body: mount({ type: 'bind', source: `${dir}/no`, options: ['rbind', 'ro'] }),
      field: `spec.mounts[${added}].source`,
    },
    'spec: an overlay of host directories': {
      body: mount({ type: 'overlay', source: 'overlay', options: [`lowerdir=${dir}/no:${dir}/ok`] }),
      field: `spec.mounts[${added}].type`,
    },
    'spec: proc away from /proc': {
      body: mount({ type: 'proc', source: 'proc' }),
      field: `spec.mounts[${added}].destination`,
    },
    'spec: sysfs read-write': {
      body: specWith((s) => {
        const sys = s.mounts!.find((m) => m.type === 'sysfs')!
        sys.options = sys.options!.filter((o) => o !== 'ro')
      }),
      field: `spec.mounts[${standard.findIndex((m) => m.type === 'sysfs')}].options`,
    },
    'spec: host devices (linux.devices)': {
      // A node every host has (the runtime binds the host's into a user namespace, or refuses).
      body: specWith((s) => (s.linux!.devices = [{ path: '/dev/kmsg', type: 'c', major: 1, minor: 11 }])),
      field: 'spec.linux.devices',
    },
    'spec: a device cgroup rule that allows': {
      body: specWith((s) => (s.linux!.resources = { devices: [{ allow: true, access: 'rwm' }] })),
      field: 'spec.linux.resources.devices[0]',
    },
    "spec: a sysctl of the host's (kernel.core_pattern)": {
      body: specWith((s) => (s.linux!.sysctl = { 'kernel.core_pattern': coreDump })),
      field: 'spec.linux.sysctl.kernel.core_pattern',
      open: 'runtime',
    },
    'spec: hooks': {
      body: specWith((s) => Object.assign(s, { hooks: { createRuntime: [{ path: '/bin/true' }] } })),
      field: 'spec.hooks',
    },
    'spec: fewer masked paths': {
      body: specWith((s) => (s.linux!.maskedPaths = s.linux!.maskedPaths!.filter((p) => p !== '/proc/kcore'))),
      field: 'spec.linux.maskedPaths',
    },
    'spec: fewer read-only paths': {
      body: specWith((s) => (s.linux!.readonlyPaths = [])),
      field: 'spec.linux.readonlyPaths',
    },
    'spec: noNewPrivileges false': {
      body: specWith((s) => (s.process.noNewPrivileges = false)),
      field: 'spec.process.noNewPrivileges',
    },
    'spec: an AppArmor profile': {
      body: specWith((s) => (s.process.apparmorProfile = 'unconfined')),
      field: 'spec.process.apparmorProfile',
    },
    'spec: an SELinux label': {
      body: specWith((s) => (s.process.selinuxLabel = 'system_u:system_r:spc_t:s0')),
      field: 'spec.process.selinuxLabel',
    },
    'spec: a mount label': {
      body: specWith((s) => (s.linux!.mountLabel = 'system_u:object_r:container_file_t:s0')),
      field: 'spec.linux.mountLabel',
    },
    'spec: a negative oomScoreAdj': {
      body: specWith((s) => (s.process.oomScoreAdj = -1000)),
      field: 'spec.process.oomScoreAdj',
      open: 'runtime',
    },
    'spec: io.ns.userns other than auto': {
      body: annotate('io.ns.userns', 'host'),
      field: 'spec.annotations.io.ns.userns',
      open: 'runtime',
    },
    'spec: io.ns.bind.roots from the client': {
      body: annotate('io.ns.bind.roots', '["/"]'),
      field: 'spec.annotations.io.ns.bind.roots',
    },
    'spec: an io.ns annotation the server does not know': {
      body: annotate('io.ns.zygote', '0'),
      field: 'spec.annotations.io.ns.zygote',
    },
    'spec: a field the server does not judge (linux.intelRdt)': {
      body: specWith((s) => (s.linux!.intelRdt = { closID: 'ns' })),
      field: 'spec.linux.intelRdt',
      // The runtime places the container in a resctrl group where the host has resctrl (and
      // root may write it); elsewhere it refuses the field.
      open: isRoot && existsSync('/sys/fs/resctrl/schemata') ? 201 : 'runtime',
    },
    'spec: a field the server does not judge (process.scheduler)': {
      // A policy that needs no privilege over the host, so the runtime applies it (a realtime one
      // needs CAP_SYS_NICE on the host, which no user namespace gives).
      body: specWith((s) => (s.process.scheduler = { policy: 'SCHED_BATCH', nice: 5 })),
      field: 'spec.process.scheduler',
    },
  }

  afterEach(async () => {
    for (const s of list(state)) await get(s.id, state).delete({ force: true })
  })

  for (const [what, c] of Object.entries(cases)) {
    itNs(`${what}: 403 naming ${c.field} without --allow-privileged, let through with it`, async () => {
      const routes = 'spec' in c.body ? ['/v1/containers'] : ['/v1/containers', '/v1/run']
      for (const route of routes) {
        const refused = await post(closed, route, c.body)
        const body = (await refused.json()) as { error: { code: string; field?: string; message: string } }
        expect(refused.status, JSON.stringify(body)).toBe(403)
        expect(body.error).toMatchObject({ code: 'EPERM', field: c.field })
        expect(body.error.message.startsWith(`${c.field}: `), body.error.message).toBe(true)
      }
      expect(list(state)).toEqual([])

      const passed = await post(open, '/v1/containers', c.body)
      const answer = (await passed.json()) as { id?: string; error?: { step?: string } }
      if ((c.open ?? 201) === 201) {
        expect(passed.status, JSON.stringify(answer)).toBe(201)
        expect(get(answer.id!, state).state().status).toBe('created')
      } else {
        expect(passed.status, JSON.stringify(answer)).not.toBe(403)
        expect(answer.error?.step, JSON.stringify(answer)).toBeDefined()
      }
    })
  }
})
