// Who may call, and what a caller may ask for: the bearer token, and the operator's policy on
// bind mounts (host directories shown to a container) and privileged options.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { realpathSync, statSync } from 'node:fs'
import { isAbsolute } from 'node:path'

import type { MiddlewareHandler } from 'hono'

import { NsError, type OciSpec } from '@ns/core'

import { ApiError } from './errors.js'
import type { ContainerOptions } from './schemas.js'

// ---------------------------------------------------------------------------------------------
// Bearer token

/** A fresh token: 32 random bytes, base64url. */
export function generateToken(): string {
  return randomBytes(32).toString('base64url')
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest()

/** Does `given` equal the token? In constant time: both sides are hashed to equal-length digests. */
export function tokenMatches(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected)
}

/** Paths anyone may read without a token: liveness and the API's own description. */
export const publicPaths = new Set(['/v1/health', '/openapi.json', '/docs'])

/** `Authorization: Bearer <token>` on every request but the public ones; 401 otherwise. */
export function bearerAuth(token: string): MiddlewareHandler {
  const expected = digest(token)
  const challenge = { 'WWW-Authenticate': 'Bearer realm="ns"' }
  return async (c, next) => {
    if (!(c.req.method === 'GET' && publicPaths.has(c.req.path))) {
      const m = /^Bearer +(\S+) *$/i.exec(c.req.header('authorization') ?? '')
      if (!m)
        throw new ApiError(401, 'EAUTH', 'missing bearer token (Authorization: Bearer <token>)', { headers: challenge })
      if (!tokenMatches(m[1]!, expected))
        throw new ApiError(401, 'EAUTH', 'invalid bearer token', { headers: challenge })
    }
    await next()
  }
}

// ---------------------------------------------------------------------------------------------
// Policy

export interface Policy {
  /** Host directories (symlinks resolved) under which bind mounts and root filesystems may be. */
  allowBind: readonly string[]
  /** Allow what reaches outside the container's own namespaces (host namespaces, host root...). */
  allowPrivileged: boolean
}

/** The operator's `--allow-bind` directories, resolved once; a missing one is a start-up error. */
export function resolveAllowedRoots(dirs: readonly string[]): string[] {
  return dirs.map((d, i) => {
    let real: string
    try {
      real = realpathSync(d)
    } catch (e) {
      throw NsError.invalid(
        `allowBind[${i}]`,
        `${d}: cannot resolve it (${(e as NodeJS.ErrnoException).code ?? 'EIO'})`,
      )
    }
    if (!statSync(real).isDirectory()) throw NsError.invalid(`allowBind[${i}]`, `${d} is not a directory`)
    return real
  })
}

function isUnder(path: string, root: string): boolean {
  return path === root || root === '/' || path.startsWith(`${root}/`)
}

/** `path` with symlinks resolved; undefined if it does not exist (or cannot be resolved). */
function realPath(path: string): string | undefined {
  try {
    return realpathSync(path)
  } catch {
    return undefined
  }
}

/** `real`, the resolved `source`, if it exists and lies under one of the allowed roots. */
function allowedPath(field: string, source: string, real: string | undefined, policy: Policy): string {
  if (real === undefined) throw ApiError.invalid(field, `${source} does not exist`)
  if (!policy.allowBind.some((r) => isUnder(real, r))) {
    const shown = real === source ? source : `${source} (${real})`
    throw ApiError.refused(field, `${shown} is outside the directories allowed for bind mounts (--allow-bind)`)
  }
  return real
}

/**
 * A host path the container is to see: it must exist and, symlinks resolved, lie under one of the
 * allowed roots. Returns the resolved path, which is what gets mounted: the check and the mount
 * then name the same directory (short of a rename racing between the two).
 */
function checkHostPath(field: string, source: string, policy: Policy): string {
  if (!isAbsolute(source)) throw ApiError.invalid(field, `${source} must be an absolute path`)
  return allowedPath(field, source, realPath(source), policy)
}

const privileged = '(needs --allow-privileged)'

function coversHostRoot(maps: readonly { hostID: number; size: number }[] | undefined, field: string): void {
  for (const [i, m] of (maps ?? []).entries()) {
    if (m.hostID === 0) throw ApiError.refused(`${field}[${i}]`, `maps the host's id 0 ${privileged}`)
  }
}

/** A container's root directory: a host path as above, and not the host's own root unless privileged. */
function checkRootPath(field: string, path: string, policy: Policy): string {
  const real = realPath(path)
  if (!policy.allowPrivileged && (real ?? path) === '/')
    throw ApiError.refused(field, `the host's root as the container's root ${privileged}`)
  if (!isAbsolute(path)) throw ApiError.invalid(field, `${path} must be an absolute path`)
  return allowedPath(field, path, real, policy)
}

/**
 * Check friendly options against the policy; returns them with every bind source resolved.
 * The time namespace is exempt from "no host namespaces": sharing it is the default.
 */
export function checkOptions<T extends ContainerOptions>(o: T, policy: Policy): T {
  if (!policy.allowPrivileged) {
    for (const [name, v] of Object.entries(o.namespaces ?? {})) {
      if (v === false && name !== 'time')
        throw ApiError.refused(`namespaces.${name}`, `sharing the host's ${name} namespace ${privileged}`)
      if (typeof v === 'string') throw ApiError.refused(`namespaces.${name}`, `joining namespace ${v} ${privileged}`)
    }
    coversHostRoot(o.uidMappings, 'uidMappings')
    coversHostRoot(o.gidMappings, 'gidMappings')
    if (o.userns === 'host')
      throw ApiError.refused('userns', `the host's user namespace (root inside is root outside) ${privileged}`)
    // An idmapped bind lets the container's root write there as the owner of the files, host
    // root included (setuid binaries for the host's users to find).
    for (const [i, v] of (o.volumes ?? []).entries()) {
      if ((v.split(':')[2] ?? '').split(',').includes('idmap'))
        throw ApiError.refused(`volumes[${i}]`, `idmap (container root writes as host root there) ${privileged}`)
    }
    for (const [i, m] of (o.mounts ?? []).entries()) {
      if (m.type === 'bind' && m.idmap)
        throw ApiError.refused(
          `mounts[${i}].idmap`,
          `an idmapped bind (container root writes as host root there) ${privileged}`,
        )
    }
  }
  const out = { ...o }
  if (o.rootfs !== undefined) out.rootfs = checkRootPath('rootfs', o.rootfs, policy)
  if (o.volumes) {
    out.volumes = o.volumes.map((v, i) => {
      const [src, ...rest] = v.split(':')
      return [checkHostPath(`volumes[${i}]`, src!, policy), ...rest].join(':')
    })
  }
  if (o.mounts) {
    out.mounts = o.mounts.map((m, i) =>
      m.type === 'bind' ? { ...m, source: checkHostPath(`mounts[${i}].source`, m.source, policy) } : m,
    )
  }
  return out
}

/** Mount types that show the container nothing of the host's files. */
const safeMountTypes = new Set(['proc', 'sysfs', 'tmpfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2'])
/** The namespaces a spec must create, unless privileged (time may be shared, as by default). */
const requiredNamespaces = ['user', 'pid', 'mount', 'network', 'uts', 'ipc', 'cgroup'] as const

/** Check a full OCI runtime spec against the policy; returns it with every bind source resolved. */
export function checkSpec(spec: OciSpec, policy: Policy, prefix = 'spec'): OciSpec {
  const out: OciSpec = { ...spec }
  if (!policy.allowPrivileged) {
    const namespaces = spec.linux?.namespaces ?? []
    for (const [i, n] of namespaces.entries()) {
      if (n.path)
        throw ApiError.refused(`${prefix}.linux.namespaces[${i}].path`, `joining namespace ${n.path} ${privileged}`)
    }
    for (const type of requiredNamespaces) {
      if (!namespaces.some((n) => n.type === type)) {
        throw ApiError.refused(
          `${prefix}.linux.namespaces`,
          `no new ${type} namespace: the container would share the host's ${privileged}`,
        )
      }
    }
    coversHostRoot(spec.linux?.uidMappings, `${prefix}.linux.uidMappings`)
    coversHostRoot(spec.linux?.gidMappings, `${prefix}.linux.gidMappings`)
    // Hooks are programs the runtime runs on the host, as the server's user.
    const hooks = (spec as { hooks?: Record<string, unknown[] | undefined> }).hooks
    if (hooks && Object.values(hooks).some((h) => Array.isArray(h) && h.length > 0)) {
      throw ApiError.refused(`${prefix}.hooks`, `hooks run on the host ${privileged}`)
    }
  }
  if (spec.root) {
    if (!isAbsolute(spec.root.path))
      throw ApiError.invalid(`${prefix}.root.path`, 'must be an absolute path (there is no bundle directory over HTTP)')
    out.root = { ...spec.root, path: checkRootPath(`${prefix}.root.path`, spec.root.path, policy) }
  }
  if (spec.mounts) {
    out.mounts = spec.mounts.map((m, i) => {
      const field = `${prefix}.mounts[${i}]`
      const bind = m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind')
      if (!policy.allowPrivileged && (m.options ?? []).some((o) => o === 'idmap' || o === 'ridmap')) {
        throw ApiError.refused(
          `${field}.options`,
          `an idmapped bind (container root writes as host root there) ${privileged}`,
        )
      }
      if (bind) return { ...m, source: checkHostPath(`${field}.source`, m.source ?? '', policy) }
      if (!policy.allowPrivileged && !safeMountTypes.has(m.type ?? '')) {
        throw ApiError.refused(`${field}.type`, `mount type ${JSON.stringify(m.type ?? '')} ${privileged}`)
      }
      return m
    })
  }
  return out
}
