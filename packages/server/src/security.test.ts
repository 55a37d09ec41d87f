// The policy and the token, without containers: what is refused, what is let through, and the
// path that gets mounted.
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Hono } from 'hono'
import { afterAll, describe, expect, it } from 'vitest'

import type { OciSpec } from '@ns/core'

import { ApiError, errorResponse } from './errors.js'
import {
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

const spec = (over: Partial<OciSpec> = {}): OciSpec => ({
  ociVersion: '1.2.0',
  process: { user: { uid: 0, gid: 0 }, args: ['true'], cwd: '/' },
  linux: {
    namespaces: ['user', 'pid', 'mount', 'network', 'uts', 'ipc', 'cgroup'].map(
      (type) => ({ type }) as NonNullable<NonNullable<OciSpec['linux']>['namespaces']>[number],
    ),
    uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
  },
  ...over,
})

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
    expect(checkSpec(bind({ type: 'proc', source: 'proc' }), policy).mounts).toHaveLength(1)
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
      field: 'gidMappings[1]',
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
