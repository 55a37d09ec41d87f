// What a client may ask for. One judge, `judgeSpec`, reads the OCI runtime spec a request would
// run: a full spec as the client sent it, or friendly options once the server has compiled them
// with the core's builder. Without --allow-privileged nothing in it may reach outside the
// container's own namespaces, its own ids and the operator's --allow-bind directories; the
// server then adds what only it decides (`admitSpec`, `admitOptions`). What a pull may reach
// is judged in pull-policy.ts.
import { realpathSync, statSync } from 'node:fs'
import { isAbsolute, posix } from 'node:path'

import {
  defaultCapabilities,
  defaultIdMappings,
  defaultMaskedPaths,
  defaultReadonlyPaths,
  defaultSeccompProfile,
  inInitialUserNamespace,
  makeSpec,
  NsError,
  type BuiltSpec,
  type IdMapping,
  type OciSpec,
} from '@ns/core'

import { ApiError } from './errors.js'
import type { AllowedRegistry } from './pull-policy.js'
import type { ContainerOptions } from './schemas.js'

export interface IdRanges {
  uid: readonly IdMapping[]
  gid: readonly IdMapping[]
}

export interface Policy {
  /** Host directories (symlinks resolved) under which bind mounts and root filesystems may be. */
  allowBind: readonly string[]
  /** Allow what reaches outside the container's own namespaces (host namespaces, host root...). */
  allowPrivileged: boolean
  /**
   * Host ids explicit id maps may use (`hostID` ranges). Default: those of this process, see
   * `grantableIds`.
   */
  ids?: IdRanges | undefined
  /**
   * The operator's `--allow-registry` registries (see `parseAllowedRegistries`). None: a client
   * may pull from any registry at a public address; some: from those alone.
   */
  allowRegistry?: readonly AllowedRegistry[] | undefined
}

/**
 * The host ids a container of this server may be mapped to by explicit maps. Root of the host:
 * none, each container gets a range leased for it alone (`io.ns.userns: auto`), and any other
 * host id (0, a group such as `shadow`, a user's subordinate range) is someone else's. Anyone
 * else: the ids ns maps by default, their own and their /etc/subuid range, which every one of
 * their containers shares anyway.
 */
export function grantableIds(): IdRanges {
  if ((process.geteuid?.() ?? 0) === 0 && inInitialUserNamespace()) return { uid: [], gid: [] }
  return defaultIdMappings()
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

// ---------------------------------------------------------------------------------------------
// Host paths

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
  if (real === undefined) {
    // Whether a path outside the allowed roots exists is none of the client's business.
    const lexical = posix.normalize(source)
    if (!policy.allowBind.some((r) => isUnder(lexical, r))) throw outsideRoots(field, source)
    throw ApiError.invalid(field, `${source} does not exist`)
  }
  if (!policy.allowBind.some((r) => isUnder(real, r)))
    throw outsideRoots(field, real === source ? source : `${source} (${real})`)
  return real
}

function outsideRoots(field: string, shown: string): ApiError {
  return ApiError.refused(field, `${shown} is outside the directories allowed for bind mounts (--allow-bind)`)
}

/**
 * A host path the container is to see: it must exist and, symlinks resolved, lie under one of the
 * allowed roots. Returns the resolved path, which is what gets mounted; the runtime opens it
 * again beneath the allowed roots (`io.ns.bind.roots`), so a rename racing between the check and
 * the mount cannot lead out of them.
 */
function checkHostPath(field: string, source: string, policy: Policy): string {
  if (!isAbsolute(source)) throw ApiError.invalid(field, `${source} must be an absolute path`)
  return allowedPath(field, source, realPath(source), policy)
}

const privileged = '(needs --allow-privileged)'

/** A container's root directory: a host path as above, and not the host's own root unless privileged. */
function checkRootPath(field: string, path: string, policy: Policy): string {
  const real = realPath(path)
  if (!policy.allowPrivileged && (real ?? path) === '/')
    throw ApiError.refused(field, `the host's root as the container's root ${privileged}`)
  if (!isAbsolute(path)) throw ApiError.invalid(field, `${path} must be an absolute path`)
  return allowedPath(field, path, real, policy)
}

// ---------------------------------------------------------------------------------------------
// The judge

/**
 * The request's name for a field of the spec (`linux.seccomp`, `mounts[3].source`): `spec.` and
 * the path for a full spec, the friendly option it was compiled from otherwise. `namespace` is
 * the type, for fields of `linux.namespaces`.
 */
export type FieldNames = (path: string, namespace?: string) => string

export interface Judging {
  names: FieldNames
  /** Mounts the server itself put in the spec (the default sandbox's read-only binds of /usr, /etc...). */
  own?: ReadonlySet<number>
}

/** Fields the judge knows, by where they are; any other is refused as unjudged unless privileged. */
const knownFields = {
  '': ['ociVersion', 'process', 'root', 'hostname', 'domainname', 'mounts', 'linux', 'annotations', 'hooks'],
  process: [
    'terminal',
    'consoleSize',
    'user',
    'args',
    'env',
    'cwd',
    'rlimits',
    'noNewPrivileges',
    'oomScoreAdj',
    'capabilities',
    'apparmorProfile',
    'selinuxLabel',
  ],
  linux: [
    'namespaces',
    'uidMappings',
    'gidMappings',
    'timeOffsets',
    'maskedPaths',
    'readonlyPaths',
    'rootfsPropagation',
    'sysctl',
    'resources',
    'cgroupsPath',
    'seccomp',
    'devices',
    'mountLabel',
  ],
  'linux.resources': ['memory', 'cpu', 'pids', 'blockIO', 'devices'],
} as const

/** The namespaces a spec must create, unless privileged (time may be shared, as by default). */
const requiredNamespaces = ['user', 'pid', 'mount', 'network', 'uts', 'ipc', 'cgroup'] as const

/**
 * Filesystems of the kernel's own that a container needs, each at the one place the default spec
 * mounts it: there they show the container's own namespaces and are covered by the masked and
 * read-only paths. Elsewhere (a second /proc at /x) they would not be. `ro`: only read-only.
 */
const kernelMounts: Record<string, { destination: string; ro?: true }> = {
  proc: { destination: '/proc' },
  sysfs: { destination: '/sys', ro: true },
  devpts: { destination: '/dev/pts' },
  mqueue: { destination: '/dev/mqueue' },
  cgroup: { destination: '/sys/fs/cgroup', ro: true },
  cgroup2: { destination: '/sys/fs/cgroup', ro: true },
}

/**
 * Sysctls of namespaces every container has of its own (network, IPC, UTS): writing them changes
 * nothing outside. Any other is the host's.
 */
const namespacedSysctl =
  /^(net\.[\w-]+(\.[\w-]+)*|fs\.mqueue\.[\w-]+|kernel\.(shmmax|shmall|shmmni|shm_rmid_forced|msgmax|msgmnb|msgmni|sem|hostname|domainname))$/

/** Annotations of ns that steer the runtime, and what a client may set them to. */
const runtimeAnnotations: Record<string, (v: string) => boolean> = {
  // Set by the server to the container's id whatever the client sent.
  'io.ns.id': () => true,
  // A marker of the default sandbox.
  'io.ns.root': (v) => v === 'sandbox',
  // Limits the container asked for itself, applied or not: its own business.
  'io.ns.limits': () => true,
  'io.ns.root.readonly': () => true,
  // A range of host ids leased for the container alone: what root's containers get anyway.
  'io.ns.userns': (v) => v === 'auto',
  // Container root writing as the files' owners (host root) on the root filesystem.
  'io.ns.root.idmap': (v) => v !== 'true',
  // The server's own (the operator's --allow-bind roots).
  'io.ns.bind.roots': () => false,
}

const annotationReasons: Record<string, string> = {
  'io.ns.userns': 'only auto (a leased range of host ids) is allowed',
  'io.ns.root.idmap': 'an idmapped root filesystem (container root writes as host root there)',
  'io.ns.bind.roots': "is set by the server (the operator's --allow-bind directories)",
}

/** The default seccomp profile for the default capabilities (and any subset of them: none shapes it). */
const defaultProfile = defaultSeccompProfile(defaultCapabilities)
/** Profiles found equal to the default: the builder shares one frozen object between specs. */
const knownDefault = new WeakSet<object>()

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  return ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

function isDefaultProfile(p: unknown): boolean {
  if (typeof p !== 'object' || p === null) return false
  if (knownDefault.has(p)) return true
  const same = sameJson(p, defaultProfile)
  if (same && Object.isFrozen(p)) knownDefault.add(p)
  return same
}

/** The five sets, each before those it may only hold a part of (effective of permitted...). */
const capabilitySets = ['ambient', 'inheritable', 'effective', 'permitted', 'bounding'] as const
const allowedCaps = new Set<string>(defaultCapabilities)

/** Does `maps` lie within `ranges`, range by range? The first map that does not, if any. */
function outsideRanges(maps: readonly IdMapping[], ranges: readonly IdMapping[]): number {
  return maps.findIndex((m) => !ranges.some((r) => m.hostID >= r.hostID && m.hostID + m.size <= r.hostID + r.size))
}

/** Which of `wanted` are missing from `list`. */
function missing(list: readonly string[] | undefined, wanted: readonly string[]): string[] {
  const have = new Set((list ?? []).map((p) => posix.normalize(p)))
  return wanted.filter((p) => !have.has(p))
}

/** The last of `ro`/`rw` in a mount's options decides (as the runtime reads them). */
function readOnly(options: readonly string[] | undefined): boolean {
  let ro = false
  for (const o of options ?? []) {
    if (o === 'ro') ro = true
    else if (o === 'rw') ro = false
  }
  return ro
}

function unknownFields(spec: OciSpec, refuse: (path: string, reason: string) => never): void {
  for (const [where, known] of Object.entries(knownFields)) {
    let value: unknown = spec
    for (const part of where ? where.split('.') : []) value = (value as Record<string, unknown> | undefined)?.[part]
    if (typeof value !== 'object' || value === null) continue
    const set = new Set<string>(known)
    for (const k of Object.keys(value)) {
      if (!set.has(k)) refuse(where ? `${where}.${k}` : k, `not a field this server judges ${privileged}`)
    }
  }
}

/**
 * The policy. Throws a 403 naming the first field an unprivileged client may not ask for (a 400
 * for a host path that is not absolute, or missing under an allowed root); returns the spec with
 * its root and bind sources resolved, which is what gets mounted.
 *
 * Bind sources and the root filesystem must lie under --allow-bind whatever the privileges: that
 * is the operator's bind policy, and `--allow-bind /` opens it all.
 */
export function judgeSpec(spec: OciSpec, policy: Policy, judging: Judging): OciSpec {
  const { names, own } = judging
  function refuse(path: string, reason: string, ns?: string): never {
    throw ApiError.refused(names(path, ns), reason)
  }
  const gated = !policy.allowPrivileged
  const linux: NonNullable<OciSpec['linux']> = spec.linux ?? {}
  const out: OciSpec = { ...spec }

  if (gated) {
    unknownFields(spec, refuse)
    // Namespaces: all new, none joined.
    const namespaces = linux.namespaces ?? []
    for (const [i, n] of namespaces.entries()) {
      if (n.path) refuse(`linux.namespaces[${i}].path`, `joining namespace ${n.path} ${privileged}`, n.type)
    }
    for (const type of requiredNamespaces) {
      if (!namespaces.some((n) => n.type === type)) {
        const what =
          type === 'user' ? "the host's user namespace (root inside is root outside)" : `the host's ${type} namespace`
        refuse('linux.namespaces', `no new ${type} namespace: it would share ${what} ${privileged}`, type)
      }
    }
  }

  // The root filesystem and the mounts: host paths under the allowed roots, nothing idmapped,
  // the kernel's filesystems only where they belong, no other kind of filesystem.
  if (spec.root) {
    if (!isAbsolute(spec.root.path))
      throw ApiError.invalid(names('root.path'), 'must be an absolute path (there is no bundle directory over HTTP)')
    out.root = { ...spec.root, path: checkRootPath(names('root.path'), spec.root.path, policy) }
  }
  if (spec.mounts) {
    out.mounts = spec.mounts.map((m, i) => {
      if (own?.has(i)) return m
      const options = m.options ?? []
      const bind = m.type === 'bind' || options.some((o) => o === 'bind' || o === 'rbind')
      if (gated && options.some((o) => o === 'idmap' || o === 'ridmap')) {
        refuse(`mounts[${i}].options`, `an idmapped bind (container root writes as host root there) ${privileged}`)
      }
      if (bind) return { ...m, source: checkHostPath(names(`mounts[${i}].source`), m.source ?? '', policy) }
      if (gated && m.type !== 'tmpfs') {
        const kernel = kernelMounts[m.type ?? '']
        if (!kernel) refuse(`mounts[${i}].type`, `mount type ${JSON.stringify(m.type ?? '')} ${privileged}`)
        const destination = posix.normalize(m.destination).replace(/(.)\/$/, '$1')
        if (destination !== kernel.destination) {
          refuse(
            `mounts[${i}].destination`,
            `${m.type} belongs at ${kernel.destination} (elsewhere the masked and read-only paths miss it) ${privileged}`,
          )
        }
        if (kernel.ro && !readOnly(options)) refuse(`mounts[${i}].options`, `${m.type} read-write ${privileged}`)
      }
      return m
    })
  }
  if (!gated) return out

  // Programs the runtime runs on the host, as the server's user.
  const hooks = spec.hooks
  if (hooks !== undefined) {
    if (
      typeof hooks !== 'object' ||
      hooks === null ||
      Object.values(hooks).some((h) => !Array.isArray(h) || h.length > 0)
    ) {
      refuse('hooks', `hooks run on the host ${privileged}`)
    }
  }

  // Id maps: host ids of the container's own only.
  const ids = policy.ids ?? grantableIds()
  for (const kind of ['uid', 'gid'] as const) {
    const maps = linux[`${kind}Mappings`] ?? []
    const ranges = ids[kind]
    const bad = outsideRanges(maps, ranges)
    if (bad >= 0) {
      const m = maps[bad]!
      const span = m.size === 1 ? `host ${kind} ${m.hostID}` : `host ${kind}s ${m.hostID}-${m.hostID + m.size - 1}`
      refuse(
        `linux.${kind}Mappings[${bad}]`,
        ranges.length === 0
          ? `maps ${span}: this server leases a range of host ids for each container, give no id maps ${privileged}`
          : `maps ${span}, outside the ids this server gives its containers ${privileged}`,
      )
    }
  }

  // The process: the default capabilities at most, no_new_privs, no labels of the host's.
  const proc = spec.process
  const caps = proc.capabilities
  if (!caps) refuse('process.capabilities', `none given: the process would keep every capability ${privileged}`)
  for (const set of capabilitySets) {
    const extra = (caps[set] ?? []).filter((c) => !allowedCaps.has(c))
    if (extra.length) refuse(`process.capabilities.${set}`, `${extra.join(', ')} beyond the default set ${privileged}`)
  }
  if (proc.noNewPrivileges !== true)
    refuse('process.noNewPrivileges', `must be true (setuid programs could gain privileges) ${privileged}`)
  for (const label of ['apparmorProfile', 'selinuxLabel'] as const) {
    if (proc[label]) refuse(`process.${label}`, `a label of the host's security modules ${privileged}`)
  }
  if (proc.oomScoreAdj !== undefined && proc.oomScoreAdj < 0)
    refuse('process.oomScoreAdj', `below 0 (spared by the OOM killer at others' expense) ${privileged}`)

  // The kernel's view: the default seccomp profile, the masked and read-only paths, sysctls of
  // the container's own namespaces, its own cgroup, no devices.
  if (linux.seccomp === undefined) refuse('linux.seccomp', `none: every system call allowed ${privileged}`)
  if (!isDefaultProfile(linux.seccomp)) refuse('linux.seccomp', `a profile other than the default ${privileged}`)
  const unmasked = missing(linux.maskedPaths, defaultMaskedPaths)
  if (unmasked.length) refuse('linux.maskedPaths', `leaves ${unmasked.join(', ')} unmasked ${privileged}`)
  const writable = missing(linux.readonlyPaths, defaultReadonlyPaths)
  if (writable.length) refuse('linux.readonlyPaths', `leaves ${writable.join(', ')} writable ${privileged}`)
  for (const key of Object.keys(linux.sysctl ?? {})) {
    if (!namespacedSysctl.test(key))
      refuse(`linux.sysctl.${key}`, `not a sysctl of the container's own namespaces ${privileged}`)
  }
  if (linux.cgroupsPath !== undefined && linux.cgroupsPath !== '')
    refuse('linux.cgroupsPath', `a cgroup of the host's choosing ${privileged}`)
  if (linux.devices !== undefined && !(Array.isArray(linux.devices) && linux.devices.length === 0))
    refuse('linux.devices', `device nodes of the host ${privileged}`)
  const rules = (linux.resources as { devices?: unknown } | undefined)?.devices
  if (Array.isArray(rules)) {
    for (const [i, r] of rules.entries()) {
      if ((r as { allow?: unknown } | null)?.allow !== false)
        refuse(`linux.resources.devices[${i}]`, `a rule that allows devices ${privileged}`)
    }
  }
  if (linux.mountLabel) refuse('linux.mountLabel', `a label of the host's security modules ${privileged}`)

  // ns's own annotations steer the runtime.
  for (const [key, value] of Object.entries(spec.annotations ?? {})) {
    if (!key.startsWith('io.ns.') || key.startsWith('io.ns.label/')) continue
    const ok = runtimeAnnotations[key]
    if (!ok?.(value)) {
      refuse(
        `annotations.${key}`,
        `${annotationReasons[key] ?? 'steers the runtime, and is not one this server judges'} ${privileged}`,
      )
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Admission: judged, then completed by the server

/** A full OCI spec checked against the policy (fields named `spec.…`); paths resolved. */
export function checkSpec(spec: OciSpec, policy: Policy, prefix = 'spec'): OciSpec {
  return judgeSpec(spec, policy, { names: (path) => `${prefix}.${path}` })
}

/**
 * What only the server decides, on every spec it runs: the container's id; the directories the
 * runtime opens bind sources and the root beneath (the operator's --allow-bind roots, and the
 * host directories of the server's own sandbox); and, for a new user namespace given no id maps,
 * the ids friendly options get (a leased range for root, the server's own ids otherwise).
 */
function complete(spec: OciSpec, policy: Policy, id: string, ownSources: readonly string[]): OciSpec {
  const annotations: Record<string, string> = { ...spec.annotations }
  annotations['io.ns.id'] = id
  annotations['io.ns.bind.roots'] = JSON.stringify([...new Set([...policy.allowBind, ...ownSources])])
  const out: OciSpec = { ...spec, annotations }
  const linux = spec.linux
  const newUser = linux?.namespaces?.some((n) => n.type === 'user' && !n.path) ?? false
  if (linux && newUser && !linux.uidMappings?.length && !linux.gidMappings?.length && !annotations['io.ns.userns']) {
    const ids = policy.ids ?? grantableIds()
    if (ids.uid.length === 0) annotations['io.ns.userns'] = 'auto'
    else out.linux = { ...linux, uidMappings: [...ids.uid], gidMappings: [...ids.gid] }
  }
  return out
}

/** A client's full spec, judged and completed: what the server runs for it. */
export function admitSpec(spec: OciSpec, policy: Policy, id: string): OciSpec {
  return complete(checkSpec(spec, policy), policy, id, [])
}

export interface Admitted<T> extends BuiltSpec {
  /** The options with their host paths resolved (what the spec mounts). */
  options: T
}

/**
 * Friendly options compiled into the spec they stand for, judged, and completed. Their host paths
 * are resolved first (absolute, symlinks followed, under the allowed roots), so the builder sees
 * only paths that may be shown. The root filesystem of an unprivileged client is not idmapped:
 * its container's root then writes there as the leased range (or the server's own ids), never as
 * the owner of the files, host root included; with --allow-privileged it is, as ns does by
 * default.
 */
export function admitOptions<T extends ContainerOptions>(o: T, policy: Policy, id?: string): Admitted<T> {
  const resolved: T = { ...o }
  if (o.rootfs !== undefined) resolved.rootfs = checkRootPath('rootfs', o.rootfs, policy)
  if (o.volumes) {
    resolved.volumes = o.volumes.map((v, i) => {
      const [src, ...rest] = v.split(':')
      return [checkHostPath(`volumes[${i}]`, src!, policy), ...rest].join(':')
    })
  }
  if (o.mounts) {
    resolved.mounts = o.mounts.map((m, i) =>
      m.type === 'bind' ? { ...m, source: checkHostPath(`mounts[${i}].source`, m.source, policy) } : m,
    )
  }
  const built = makeSpec(resolved, id)
  const { spec } = built
  if (!policy.allowPrivileged && spec.annotations?.['io.ns.root.idmap'] !== undefined) {
    const { 'io.ns.root.idmap': _, ...rest } = spec.annotations
    spec.annotations = rest
  }
  // The builder's own mounts come first, the client's volumes and mounts after them: of the
  // first, the binds are the default sandbox's.
  const mounts = spec.mounts ?? []
  const base = mounts.length - (o.volumes?.length ?? 0) - (o.mounts?.length ?? 0)
  const own = new Set<number>()
  for (let i = 0; i < base; i++) if (mounts[i]!.type === 'bind') own.add(i)
  const judged = judgeSpec(spec, policy, { names: friendlyNames(o, base), own })
  const ownSources = [...own].map((i) => mounts[i]!.source!)
  return {
    spec: complete(judged, policy, judged.annotations?.['io.ns.id'] ?? id ?? '', ownSources),
    init: built.init,
    options: resolved,
  }
}

/** Friendly options checked against the policy; returns them with their host paths resolved. */
export function checkOptions<T extends ContainerOptions>(o: T, policy: Policy): T {
  return admitOptions(o, policy).options
}

/** The friendly option a field of the spec built from `o` comes from. */
function friendlyNames(o: ContainerOptions, base: number): FieldNames {
  const volumes = o.volumes?.length ?? 0
  return (path, namespace) => {
    const mount = /^mounts\[(\d+)\](?:\.(\w+))?$/.exec(path)
    if (mount) {
      const i = Number(mount[1]) - base
      if (i < 0) return 'mounts'
      if (i < volumes) return `volumes[${i}]`
      const sub = mount[2] === 'source' ? '.source' : mount[2] === 'options' ? '.idmap' : ''
      return `mounts[${i - volumes}]${sub}`
    }
    const map = /^linux\.(uid|gid)Mappings(\[\d+\])$/.exec(path)
    if (map) {
      // Given one kind of map alone, the builder copies it to the other (uid to gid) or picks
      // the default for it (gid given): the option given is the one to blame.
      if (o[`${map[1] as 'uid' | 'gid'}Mappings`]) return `${map[1]}Mappings${map[2]}`
      return map[1] === 'gid' ? `uidMappings${map[2]}` : 'gidMappings'
    }
    if (path.startsWith('linux.namespaces'))
      return namespace === 'user' && o.userns === 'host' ? 'userns' : `namespaces.${namespace}`
    if (path.startsWith('process.capabilities')) return 'capAdd'
    const direct: Record<string, string> = {
      'root.path': 'rootfs',
      'process.noNewPrivileges': 'noNewPrivileges',
      'linux.seccomp': 'seccomp',
    }
    return direct[path] ?? path
  }
}
