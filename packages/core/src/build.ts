// Friendly options -> OCI runtime spec. Everything `run` and `spawn` accept is sugar over it.
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { randomFillSync } from 'node:crypto'

import { NsError } from './errors.js'
import { defaultIdMappings, inInitialUserNamespace, isMapped, sandboxPaths } from './host.js'
import { checkBuiltSpec } from './check.js'
import { capabilityNames, defaultCapabilities, namespaceNames, normalizeCap, type NamespaceName } from './names.js'
import type { PreparedImage } from './images/run.js'
import type { ParsedRunOptions } from './options.js'
import { hostnameFor, nameFits, NAME_PROBLEM, parseSize } from './rules.js'
import { applySharing, NETWORK_ANNOTATION, networkSpec } from './networks/index.js'
import { frozenSeccompProfile } from './seccomp.js'
import type { OciMount, OciSpec } from './spec.js'

/** Annotation keys that carry labels. */
export const labelPrefix = 'io.ns.label/'

/** The labels of a container, from its annotations. */
export function labelsOf(annotations: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(annotations ?? {})
      .filter(([k]) => k.startsWith(labelPrefix))
      .map(([k, v]) => [k.slice(labelPrefix.length), v]),
  )
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Paths hidden from the container, and paths it may only read: the runtime spec's defaults. */
export const defaultMaskedPaths = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
]
export const defaultReadonlyPaths = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']

export function parseUser(u: ParsedRunOptions['user']): { uid: number; gid: number; additionalGids?: number[] } {
  if (u === undefined) return { uid: 0, gid: 0 }
  if (typeof u === 'string') {
    if (!/^\d+(:\d+)?$/.test(u))
      throw NsError.invalid('user', "names are looked up in an image's /etc/passwd: without an image give UID[:GID]")
    const [uid, gid] = u.split(':').map(Number)
    return { uid: uid!, gid: gid ?? uid! }
  }
  return { uid: u.uid, gid: u.gid ?? u.uid, ...(u.additionalGids ? { additionalGids: u.additionalGids } : {}) }
}

export function envList(env: ParsedRunOptions['env']): string[] {
  if (env === undefined) return []
  return Array.isArray(env) ? env : Object.entries(env).map(([k, v]) => `${k}=${v}`)
}

/** Merge environment lists: later entries replace earlier ones with the same key. */
function mergeEnv(...lists: string[][]): string[] {
  const m = new Map<string, string>()
  for (const l of lists) for (const e of l) m.set(e.slice(0, e.indexOf('=')), e)
  return [...m.values()]
}

/** The capability sets of the process: Docker's default set, with `capAdd` and `capDrop`. */
export function capabilitySets(o: Pick<ParsedRunOptions, 'capAdd' | 'capDrop'>, uid: number) {
  let set = new Set<string>(defaultCapabilities)
  for (const c of (o.capDrop ?? []).map(normalizeCap)) {
    if (c === 'ALL') set = new Set()
    else set.delete(c)
  }
  for (const c of (o.capAdd ?? []).map(normalizeCap)) {
    if (c === 'ALL') for (const n of capabilityNames) set.add(n)
    else set.add(c)
  }
  const list = capabilityNames.filter((n) => set.has(n))
  // As with docker: root gets the set; another user has it only as a bound, not in effect.
  const inEffect = uid === 0 ? list : []
  return { bounding: list, effective: [...inEffect], inheritable: [], permitted: [...inEffect], ambient: [] }
}

export { parseSize }

/** `linux.resources` from the friendly limits, or undefined when none is asked for. */
export function resourcesOf(o: ParsedRunOptions) {
  const memory = {
    ...(o.memory !== undefined ? { limit: parseSize(o.memory) } : {}),
    ...(o.memoryReservation !== undefined ? { reservation: parseSize(o.memoryReservation) } : {}),
    ...(o.memorySwap !== undefined ? { swap: o.memorySwap === -1 ? -1 : parseSize(o.memorySwap) } : {}),
  }
  const cpu = {
    ...(o.cpus !== undefined ? { quota: Math.round(o.cpus * 100_000), period: 100_000 } : {}),
    ...(o.cpuShares !== undefined ? { shares: o.cpuShares } : {}),
    ...(o.cpusetCpus !== undefined ? { cpus: o.cpusetCpus } : {}),
  }
  const r = {
    ...(Object.keys(memory).length ? { memory } : {}),
    ...(Object.keys(cpu).length ? { cpu } : {}),
    ...(o.pidsLimit !== undefined ? { pids: { limit: o.pidsLimit } } : {}),
    ...(o.blkioWeight !== undefined ? { blockIO: { weight: o.blkioWeight } } : {}),
  }
  return Object.keys(r).length ? r : undefined
}

/** Random bytes for ids, drawn from the system a batch at a time. */
const idBytes = Buffer.alloc(6 * 256)
let idOffset = idBytes.length

/** 12 random hex digits. */
export function newContainerId(): string {
  if (idOffset === idBytes.length) {
    randomFillSync(idBytes)
    idOffset = 0
  }
  idOffset += 6
  return idBytes.toString('hex', idOffset - 6, idOffset)
}

export interface BuiltSpec {
  spec: OciSpec
  init: boolean
}

/**
 * The runtime spec of parsed run options, for the caller to change before it runs it: every part
 * is its own (the default seccomp profile a fresh copy). With an image, `image` is what
 * `prepareImage` made of it.
 */
export function buildSpec(o: ParsedRunOptions, id = newContainerId(), image?: PreparedImage): BuiltSpec {
  const built = makeSpec(o, id, image)
  const seccomp = built.spec.linux?.seccomp
  if (seccomp && Object.isFrozen(seccomp)) built.spec.linux!.seccomp = structuredClone(seccomp)
  return built
}

/**
 * `buildSpec` for specs that run as they are built (run, spawn, create): the default seccomp
 * profile is shared between them, and frozen.
 */
export function makeSpec(o: ParsedRunOptions, id = newContainerId(), image?: PreparedImage): BuiltSpec {
  if (!nameFits(id)) throw NsError.invalid('name', NAME_PROBLEM)
  if (o.image !== undefined && o.rootfs !== undefined)
    throw NsError.invalid('rootfs', 'an image is the root filesystem: give a rootfs or an image, not both')
  if (o.image !== undefined && !image)
    throw NsError.invalid(
      'image',
      'an image is made ready first (prepareImage): run it with run(), launch() or create()',
    )
  // An image's Entrypoint and Cmd, with the command given in place of Cmd (see processOf).
  const command = image ? image.args : o.command
  if (!command?.length) {
    throw NsError.invalid(
      'command',
      image
        ? `must name a program: the image ${image.reference} has neither Entrypoint nor Cmd`
        : 'must name a program',
    )
  }
  const ns = new Map<NamespaceName, boolean | string>()
  for (const n of namespaceNames) ns.set(n, n !== 'time')
  if (o.userns === 'host') {
    if (o.namespaces?.user !== undefined && o.namespaces.user !== false)
      throw NsError.invalid('userns', 'host conflicts with namespaces.user')
    if (o.uidMappings || o.gidMappings)
      throw NsError.invalid('userns', 'host means no user namespace: give no uidMappings')
    ns.set('user', false)
  }
  for (const [k, v] of Object.entries(o.namespaces ?? {})) if (v !== undefined) ns.set(k as NamespaceName, v)
  // --network host|container:ID, --ipc, --pid, --uts: the host's or another container's.
  applySharing(o, ns)
  if (o.timeOffsets && o.namespaces?.time === undefined) ns.set('time', true)
  const isNew = (n: NamespaceName) => ns.get(n) === true

  if (o.rootfs !== undefined && !existsSync(o.rootfs)) throw NsError.invalid('rootfs', `${o.rootfs} does not exist`)
  if (!isNew('mount') && image) throw NsError.invalid('namespaces.mount', "an image's root needs a new mount namespace")
  if (!isNew('mount') && (o.rootfs || o.volumes?.length || o.mounts?.length)) {
    throw NsError.invalid('namespaces.mount', 'a rootfs, volumes and mounts need a new mount namespace')
  }
  if (!isNew('uts') && typeof ns.get('uts') !== 'string' && (o.hostname || o.domainname)) {
    throw NsError.invalid('hostname', 'needs a new uts namespace')
  }
  if ((o.uidMappings || o.gidMappings) && !isNew('user'))
    throw NsError.invalid('uidMappings', 'needs a new user namespace')
  if (o.timeOffsets && !isNew('time')) throw NsError.invalid('timeOffsets', 'needs a new time namespace')

  // An image's user was resolved in its own /etc/passwd (with `o.user` over its User).
  const user = image ? image.user : parseUser(o.user)
  // Root's default: the runtime leases a range of host ids for the container (root inside is
  // nobody outside). Its size is known here; where it starts is decided at start-up.
  const euid = process.geteuid?.() ?? 0
  const autoUserns = isNew('user') && euid === 0 && !o.uidMappings && !o.gidMappings && inInitialUserNamespace()
  if (o.userns === 'auto' && !autoUserns) {
    throw NsError.invalid(
      'userns',
      euid !== 0
        ? 'auto needs root (others map their own id)'
        : !inInitialUserNamespace()
          ? "auto needs the host's root (this is root of a user namespace)"
          : 'auto needs a new user namespace and no explicit uidMappings',
    )
  }
  const defaults = isNew('user') && !autoUserns ? defaultIdMappings() : undefined
  const uidMappings = o.uidMappings ?? defaults?.uid
  const gidMappings = o.gidMappings ?? o.uidMappings ?? defaults?.gid
  // A leased range maps container ids 0 to 65535.
  const leased = autoUserns ? [{ containerID: 0, hostID: 0, size: 65536 }] : undefined
  const uids = uidMappings ?? leased
  const gids = gidMappings ?? leased
  if (uids && !isMapped(uids, user.uid))
    throw NsError.invalid('user', `uid ${user.uid} is not mapped in the user namespace`)
  if (gids && !isMapped(gids, user.gid))
    throw NsError.invalid('user', `gid ${user.gid} is not mapped in the user namespace`)
  const idmapOk = isNew('user')

  const hostname = o.hostname ?? (isNew('uts') ? hostnameFor(id) : undefined)
  const sandbox = o.rootfs === undefined && !image
  const mounts: OciMount[] = []
  // The option each mount of the spec comes from, by its index (the runtime names mounts[i]).
  const origins: string[] = []
  if (isNew('mount')) {
    if (sandbox) {
      for (const p of sandboxPaths) {
        if (existsSync(p))
          // Recursive forms: every mount below the host path is read-only too, not only its own.
          mounts.push({ destination: p, type: 'bind', source: p, options: ['rbind', 'rro', 'rnosuid', 'rnodev'] })
      }
    }
    const devpts = ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620']
    if (!gidMappings || isMapped(gidMappings, 5)) devpts.push('gid=5')
    mounts.push(
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: devpts },
      {
        destination: '/dev/shm',
        type: 'tmpfs',
        source: 'shm',
        options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
      },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
    )
    // The image's anonymous volumes (directories of the container's own in the store).
    mounts.push(...(image?.mounts ?? []))
    for (const [i, v] of (o.volumes ?? []).entries()) {
      origins[mounts.length] = `volumes[${i}]`
      const [src, dst, opts] = v.split(':') as [string, string, string | undefined]
      const flags = (opts ?? '').split(',')
      const source = resolve(src)
      if (!existsSync(source)) throw NsError.invalid(`volumes[${i}]`, `${source} does not exist`)
      if (flags.includes('idmap') && !idmapOk)
        throw NsError.invalid(`volumes[${i}]`, 'idmap needs a new user namespace')
      mounts.push({
        destination: dst,
        type: 'bind',
        source,
        options: ['rbind', flags.includes('ro') ? 'rro' : 'rw', ...(flags.includes('idmap') ? ['ridmap'] : [])],
      })
    }
    for (const [i, m] of (o.mounts ?? []).entries()) {
      origins[mounts.length] = `mounts[${i}]`
      if (m.type === 'bind') {
        const source = resolve(m.source)
        if (!existsSync(source)) throw NsError.invalid(`mounts[${i}].source`, `${source} does not exist`)
        if (m.idmap && !idmapOk) throw NsError.invalid(`mounts[${i}].idmap`, 'needs a new user namespace')
        mounts.push({
          destination: m.target,
          type: 'bind',
          source,
          options: ['rbind', m.readOnly ? 'rro' : 'rw', ...(m.idmap ? ['ridmap'] : [])],
        })
      } else {
        const opts = ['nosuid', 'nodev', `mode=${m.mode ?? '1777'}`]
        if (m.size) opts.push(`size=${m.size}`)
        mounts.push({ destination: m.target, type: 'tmpfs', source: 'tmpfs', options: opts })
      }
    }
  }

  // Bridge networks: the plan the runtime attaches from, and the binds of the /etc files it
  // writes (after the container's own mounts, which win over them).
  const net = networkSpec(
    o,
    id,
    isNew('network'),
    isNew('mount'),
    mounts.slice(mounts.length - (o.volumes?.length ?? 0) - (o.mounts?.length ?? 0)).map((m) => m.destination),
  )
  mounts.push(...net.mounts)

  const home = image ? image.home : user.uid === 0 ? '/root' : '/'
  const env = mergeEnv(
    [`PATH=${DEFAULT_PATH}`, `HOME=${home}`, ...(hostname ? [`HOSTNAME=${hostname}`] : [])],
    image?.env ?? [],
    envList(o.env),
  )
  const capabilities = capabilitySets(o, user.uid)
  const seccomp =
    o.seccomp === 'unconfined'
      ? undefined
      : typeof o.seccomp === 'object'
        ? o.seccomp
        : frozenSeccompProfile(capabilities.bounding)
  const timeOffsets: Record<string, { secs: number; nanosecs: number }> = {}
  for (const [k, v] of Object.entries(o.timeOffsets ?? {}))
    if (v !== undefined) timeOffsets[k] = { secs: v, nanosecs: 0 }
  const resources = resourcesOf(o)
  const annotations: Record<string, string> = {
    'io.ns.id': id,
    ...(sandbox ? { 'io.ns.root': 'sandbox' } : {}),
    ...(o.bestEffortLimits ? { 'io.ns.limits': 'best-effort' } : {}),
    // A leased range; a root filesystem given then belongs to the container's root (idmapped).
    ...(autoUserns ? { 'io.ns.userns': 'auto', ...(sandbox || image ? {} : { 'io.ns.root.idmap': 'true' }) } : {}),
    ...image?.annotations,
    ...Object.fromEntries(Object.entries({ ...image?.labels, ...o.labels }).map(([k, v]) => [`${labelPrefix}${k}`, v])),
    ...(net.annotation ? { [NETWORK_ANNOTATION]: net.annotation } : {}),
  }
  // An image's root is writable (its own upper layer) unless asked.
  if (image && o.readOnly) annotations['io.ns.root.readonly'] = 'true'
  // The sandbox root (a fresh tmpfs filled with read-only binds) is read-only unless asked.
  if (sandbox && isNew('mount') && (o.readOnly ?? true)) annotations['io.ns.root.readonly'] = 'true'

  // Made in the form the spec's schema gives (its keys in its order): validated options compile
  // to a valid spec, so it is not validated again as a whole (see `checkLooser`).
  const spec: OciSpec = {
    ociVersion: '1.2.0',
    process: {
      terminal: o.tty ?? false,
      user,
      args: [...command],
      env,
      cwd: o.cwd ?? image?.cwd ?? '/',
      ...(o.rlimits ? { rlimits: o.rlimits } : {}),
      noNewPrivileges: o.noNewPrivileges ?? true,
      capabilities,
    },
    ...(o.rootfs !== undefined ? { root: { path: resolve(o.rootfs), readonly: o.readOnly ?? false } } : {}),
    ...(hostname ? { hostname } : {}),
    ...(o.domainname ? { domainname: o.domainname } : {}),
    mounts,
    linux: {
      namespaces: [...ns.entries()]
        .filter(([, v]) => v !== false)
        .map(([type, v]) => (typeof v === 'string' ? { type, path: v } : { type })),
      ...(uidMappings ? { uidMappings, gidMappings } : {}),
      ...(Object.keys(timeOffsets).length ? { timeOffsets } : {}),
      ...(isNew('mount') ? { maskedPaths: [...defaultMaskedPaths], readonlyPaths: [...defaultReadonlyPaths] } : {}),
      ...(resources ? { resources } : {}),
      ...(seccomp ? { seccomp } : {}),
    },
    annotations,
  }
  checkLooser(spec)
  if (origins.length) mountOrigins.set(spec, origins)
  return { spec, init: o.init ?? true }
}

/** For specs built from options: which option each of their mounts comes from. */
const mountOrigins = new WeakMap<OciSpec, string[]>()

/** An error of the runtime, as the helper reports it. */
export interface RuntimeError {
  step: string
  path?: string
  errno?: number
  code: string
  message: string
  hint?: string
}

/**
 * A runtime's refusal of `mounts[i]` of a spec built from options, told as being about the
 * option the mount comes from (`volumes[0]`, not `mounts[14]` of a spec the caller never saw);
 * any other error as it is.
 */
export function optionError(spec: OciSpec, e: RuntimeError): RuntimeError & { field?: string } {
  const m = /^mounts\[(\d+)\](\.[A-Za-z]+)?$/.exec(e.step === 'validate config' ? (e.path ?? '') : '')
  const origin = m ? mountOrigins.get(spec)?.[Number(m[1])] : undefined
  if (!m || !origin) return e
  const { path: _path, ...rest } = e
  const reason = e.message.startsWith(`${e.path}: `) ? e.message.slice(e.path!.length + 2) : e.message
  return { ...rest, field: origin, message: `${origin}: ${reason}` }
}

/**
 * The values of a built spec that its options allow more freely than the spec does, with the
 * spec's own rules for them: ids past 2^32 - 1, an environment key that is empty, id maps read
 * from the host. All else of a built spec meets the spec's schema by construction.
 */
function checkLooser(spec: OciSpec): void {
  checkBuiltSpec(spec)
}
