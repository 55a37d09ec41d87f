// Container networks: their definitions (stored here, one JSON file each), the options of a
// container that name them (compiled into its runtime spec: the `io.ns.network` plan the
// helper attaches from, the binds of its /etc files, the namespaces it shares), and the
// operations of `ns network` (create, ls, inspect, rm, prune). The kernel's side of each is
// the runtime's (`ns_runtime::network`, through the addon): bridges, addresses, firewall,
// resolvers. Every call here is synchronous and takes plain data, so that the routes of a
// server can be thin wrappers of it.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

import native from '@ns/native'

import { NsError } from './errors.js'
import type { NamespaceName } from './names.js'
import type { ParsedRunOptions } from './options.js'
import { isIpAddress, NETWORK_NAME_FORM, NETWORK_NAME_PROBLEM, PORT_FORM } from './rules.js'
import type { OciMount } from './spec.js'

/** The name of the default network (docker's), made on first use. */
export const DEFAULT_NETWORK = 'bridge'
/** The annotation that carries a container's network plan to the runtime. */
export const NETWORK_ANNOTATION = 'io.ns.network'

/** A subnet of a network as the runtime keeps it. */
export interface Pool {
  subnet: string
  gateway: string
  ipRange?: string
}

/** A network's definition as the runtime takes it (`ns_net::Network`). */
export interface NetworkDefinition {
  name: string
  bridge: string
  subnets: Pool[]
  internal: boolean
  mtu?: number
}

/** A stored network. */
export interface NetworkInfo {
  name: string
  id: string
  driver: 'bridge'
  created: string
  internal: boolean
  ipv6: boolean
  /** Names of its containers are answered by a resolver on its gateways. */
  dns: boolean
  labels: Record<string, string>
  definition: NetworkDefinition
}

export interface NetworkCreateOptions {
  name: string
  /** One IPv4 and/or one IPv6 subnet (`10.89.0.0/24`); without one, the first of ns's ranges that no route of the host touches. */
  subnet?: string | string[]
  /** The gateway of each subnet, in the same order (default: its first address). */
  gateway?: string | string[]
  /** Where each subnet's dynamic addresses come from. */
  ipRange?: string | string[]
  /** Give it an IPv6 subnet too (a unique local /64 of its own when none is given). */
  ipv6?: boolean
  mtu?: number
  /** No way out: nothing forwarded off its bridge, no published ports, names but no forwarding. */
  internal?: boolean
  labels?: Record<string, string>
  /** A resolver for its containers' names (default true). */
  dns?: boolean
}

export interface NetworkDetails extends NetworkInfo {
  /** The bridge as the kernel has it now (null: not made yet, or gone with a reboot). */
  bridge: { name: string; up: boolean; mtu: number } | null
  /** Containers with an address on it; `live` while their process holds it. */
  containers: Array<{ id: string; addresses: string[]; live: boolean }>
  /** The sysctls ns sets for it, with what they were (when this process made the bridge). */
  sysctls: Array<{ key: string; value: string; previous?: string | null }>
}

export interface NetworksOptions {
  /** Where definitions are stored. Default: `NS_NETWORK_STORE`, else /var/lib/ns/networks (root) or $XDG_DATA_HOME/ns/networks. */
  store?: string
  /** The runtime's folder: allocations, resolvers, containers' files. Default /run/ns (root) or $XDG_RUNTIME_DIR/ns. */
  runDir?: string
  /** The containers' state root (for which exist, and `container:ID`). Default the runtime's. */
  stateRoot?: string
}

/** An error of the runtime (JSON in a thrown Error's message) as an NsError. */
function nativeCall<T>(op: string, args: unknown): T {
  try {
    return JSON.parse(native.networkCall(op, JSON.stringify(args))) as T
  } catch (e) {
    const msg = (e as Error)?.message ?? String(e)
    let j: { code?: string; message?: string } | undefined
    try {
      j = JSON.parse(msg) as typeof j
    } catch {
      j = undefined
    }
    if (j && typeof j.code === 'string' && typeof j.message === 'string') throw new NsError(j as never)
    throw new NsError({ code: 'EIO', message: msg })
  }
}

const euid = () => process.geteuid?.() ?? 0

export function defaultNetworkStore(): string {
  if (process.env.NS_NETWORK_STORE) return process.env.NS_NETWORK_STORE
  if (euid() === 0) return '/var/lib/ns/networks'
  const data = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share')
  return join(data, 'ns', 'networks')
}

export function defaultRunDir(): string {
  if (euid() === 0) return '/run/ns'
  return join(process.env.XDG_RUNTIME_DIR || `/run/user/${euid()}`, 'ns')
}

const rootlessHint =
  'bridge networks need root; rootless networking (pasta, slirp4netns) is not supported yet: use --network none (loopback only) or --network host'

function needRoot(field: string): void {
  if (euid() !== 0)
    throw new NsError({
      code: 'EPERM',
      field,
      step: 'validate options',
      message: `${field}: bridge networks need root`,
      hint: rootlessHint,
    })
}

/** The networks of one store. */
export class Networks {
  readonly store: string
  readonly runDir: string
  readonly stateRoot: string | undefined

  constructor(opts: NetworksOptions = {}) {
    this.store = opts.store ?? defaultNetworkStore()
    this.runDir = opts.runDir ?? defaultRunDir()
    this.stateRoot = opts.stateRoot
  }

  /** Allocations (one folder per network). */
  get stateDir(): string {
    return join(this.runDir, 'net', 'ipam')
  }
  get dnsDir(): string {
    return join(this.runDir, 'dns')
  }
  /** Each container's attachment record and /etc files. */
  get containersDir(): string {
    return join(this.runDir, 'net', 'containers')
  }

  private file(name: string): string {
    return join(this.store, `${name}.json`)
  }

  private save(info: NetworkInfo): void {
    mkdirSync(this.store, { recursive: true, mode: 0o755 })
    const tmp = `${this.file(info.name)}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n', { mode: 0o644 })
    renameSync(tmp, this.file(info.name))
  }

  /** A stored network, or undefined. */
  find(name: string): NetworkInfo | undefined {
    if (!NETWORK_NAME_FORM.test(name)) return undefined
    try {
      return JSON.parse(readFileSync(this.file(name), 'utf8')) as NetworkInfo
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new NsError({ code: 'EIO', path: this.file(name), message: `cannot read network ${name}: ${String(e)}` })
    }
  }

  /** A stored network; the default one is made on first use. */
  get(name: string, field = 'network'): NetworkInfo {
    const n = this.find(name) ?? (name === DEFAULT_NETWORK ? this.makeDefault() : undefined)
    if (!n)
      throw new NsError({
        code: 'ENOENT',
        field,
        message: `${field}: no network named ${name}`,
        hint: `create it: ns network create ${name}`,
      })
    return n
  }

  private makeDefault(): NetworkInfo {
    needRoot('network')
    return this.create({ name: DEFAULT_NETWORK })
  }

  create(o: NetworkCreateOptions): NetworkInfo {
    if (typeof o?.name !== 'string' || !NETWORK_NAME_FORM.test(o.name))
      throw NsError.invalid('name', NETWORK_NAME_PROBLEM)
    if (['none', 'host'].includes(o.name) || o.name.startsWith('container'))
      throw NsError.invalid('name', `${o.name} is a network mode, not a name`)
    needRoot('name')
    if (this.find(o.name))
      throw new NsError({ code: 'EEXIST', field: 'name', message: `name: network ${o.name} exists` })
    const list = (v: string | string[] | undefined, field: string) => {
      const a = v === undefined ? [] : Array.isArray(v) ? v : [v]
      for (const [i, x] of a.entries())
        if (typeof x !== 'string') throw NsError.invalid(a.length > 1 ? `${field}[${i}]` : field, 'must be a string')
      return a
    }
    const subnets = list(o.subnet, 'subnet')
    const gateways = list(o.gateway, 'gateway')
    const ranges = list(o.ipRange, 'ipRange')
    if (gateways.length > subnets.length) throw NsError.invalid('gateway', 'needs a subnet of its own')
    if (ranges.length > subnets.length) throw NsError.invalid('ipRange', 'needs a subnet of its own')
    for (const [i, g] of gateways.entries())
      if (!isIpAddress(g))
        throw NsError.invalid(gateways.length > 1 ? `gateway[${i}]` : 'gateway', `${g} is not an IP address`)
    if (o.mtu !== undefined && (!Number.isInteger(o.mtu) || o.mtu < 576 || o.mtu > 65535))
      throw NsError.invalid('mtu', 'must be 576-65535')
    const specs = subnets.map((subnet, i) => ({
      subnet,
      ...(gateways[i] ? { gateway: gateways[i] } : {}),
      ...(ranges[i] ? { ipRange: ranges[i] } : {}),
    }))
    if (subnets.length === 0) {
      // The default network's choice of range (one no route of the host touches), named.
      const avoid = this.list().flatMap((n) => n.definition.subnets.map((p) => p.subnet))
      const d = this.newDefinition({ name: o.name, subnets: [], internal: o.internal ?? false, avoid }, 'subnet')
      specs.push(...d.subnets.map((p) => ({ subnet: p.subnet })))
    }
    if (o.ipv6 && !specs.some((s) => s.subnet.includes(':'))) specs.push({ subnet: uniqueLocal(o.name) })
    const definition = this.newDefinition(
      { name: o.name, subnets: specs, internal: o.internal ?? false, ...(o.mtu ? { mtu: o.mtu } : {}) },
      'subnet',
    )
    const clash = this.list().find((n) =>
      n.definition.subnets.some((a) => definition.subnets.some((b) => overlaps(a.subnet, b.subnet))),
    )
    if (clash)
      throw NsError.invalid(
        'subnet',
        `${definition.subnets.map((s) => s.subnet).join(', ')} overlaps network ${clash.name} (${clash.definition.subnets.map((s) => s.subnet).join(', ')})`,
      )
    const info: NetworkInfo = {
      name: o.name,
      id: randomBytes(32).toString('hex'),
      driver: 'bridge',
      created: new Date().toISOString(),
      internal: o.internal ?? false,
      ipv6: definition.subnets.some((s) => s.subnet.includes(':')),
      dns: o.dns ?? true,
      labels: { ...o.labels },
      definition,
    }
    // The bridge now: a subnet a route of the host covers is refused here, not at a start.
    let status: { sysctls: NetworkDetails['sysctls'] }
    try {
      status = nativeCall('ensure', { network: definition, stateDir: this.stateDir })
    } catch (e) {
      throw subnetField(e, specs.length, 'subnet')
    }
    this.save(info)
    this.saveSysctls(info.name, status.sysctls)
    return info
  }

  private newDefinition(
    args: {
      name: string
      subnets: Array<{ subnet: string; gateway?: string; ipRange?: string }>
      internal: boolean
      mtu?: number
      avoid?: string[]
    },
    field: string,
  ): NetworkDefinition {
    try {
      return nativeCall<NetworkDefinition>('new', args)
    } catch (e) {
      throw subnetField(e, args.subnets.length, field)
    }
  }

  private sysctlFile(name: string): string {
    return join(this.runDir, 'net', 'sysctls', `${name}.json`)
  }

  private saveSysctls(name: string, sysctls: NetworkDetails['sysctls']): void {
    try {
      mkdirSync(join(this.runDir, 'net', 'sysctls'), { recursive: true })
      writeFileSync(this.sysctlFile(name), JSON.stringify(sysctls))
    } catch {
      // only inspect reads it
    }
  }

  list(filter: { label?: Record<string, string> } = {}): NetworkInfo[] {
    let names: string[]
    try {
      names = readdirSync(this.store).filter((f) => f.endsWith('.json'))
    } catch {
      return []
    }
    return names
      .map((f) => this.find(f.slice(0, -5)))
      .filter((n): n is NetworkInfo => n !== undefined)
      .filter((n) => Object.entries(filter.label ?? {}).every(([k, v]) => n.labels[k] === v))
      .sort((a, b) => a.name.localeCompare(b.name))
  }

  inspect(name: string): NetworkDetails {
    const n = this.get(name, 'name')
    const st = nativeCall<Pick<NetworkDetails, 'bridge' | 'containers'>>('status', {
      network: n.definition,
      stateDir: this.stateDir,
    })
    let sysctls: NetworkDetails['sysctls'] = []
    try {
      sysctls = JSON.parse(readFileSync(this.sysctlFile(name), 'utf8')) as NetworkDetails['sysctls']
    } catch {
      // the bridge was made by a container's start: ensure reports them again
      if (euid() === 0 && st.bridge)
        sysctls = nativeCall<{ sysctls: NetworkDetails['sysctls'] }>('ensure', {
          network: n.definition,
          stateDir: this.stateDir,
        }).sysctls
    }
    return { ...n, ...st, sysctls }
  }

  /** Ids of the containers that exist (in the state root), whatever their status. */
  private liveContainers(): string[] {
    const root = this.stateRoot ?? native.defaultStateRoot()
    try {
      return readdirSync(root).filter((id) => existsSync(join(root, id, 'state.json')) || existsSync(join(root, id)))
    } catch {
      return []
    }
  }

  /** Gives back what containers that are gone left on the networks (after a crash). */
  reconcile(): Reconciled {
    needRoot('networks')
    return nativeCall<Reconciled>('reconcile', {
      networks: this.list().map((n) => n.definition),
      live: this.liveContainers(),
      stateDir: this.stateDir,
      dnsDir: this.dnsDir,
      containersDir: this.containersDir,
    })
  }

  /** Removes a network; refused (`NETWORK_IN_USE`) while a container is attached to it. */
  remove(name: string): void {
    const n = this.get(name, 'name')
    needRoot('name')
    this.reconcile()
    const st = nativeCall<Pick<NetworkDetails, 'containers'>>('status', {
      network: n.definition,
      stateDir: this.stateDir,
    })
    if (st.containers.length > 0)
      throw new NsError({
        code: 'NETWORK_IN_USE',
        errno: 16,
        field: 'name',
        step: 'remove network',
        message: `network ${name} is in use by ${st.containers.map((c) => c.id).join(', ')}`,
        hint: 'remove those containers first',
      })
    nativeCall('remove', { network: n.definition, stateDir: this.stateDir, dnsDir: this.dnsDir })
    rmSync(this.file(name), { force: true })
    rmSync(this.sysctlFile(name), { force: true })
  }

  /** What containers that are gone left is given back; then every network without containers but the default is removed. */
  prune(): { removed: string[]; reconciled: Reconciled } {
    const reconciled = this.reconcile()
    const removed: string[] = []
    for (const n of this.list()) {
      if (n.name === DEFAULT_NETWORK) continue
      const st = nativeCall<Pick<NetworkDetails, 'containers'>>('status', {
        network: n.definition,
        stateDir: this.stateDir,
      })
      if (st.containers.length === 0) {
        this.remove(n.name)
        removed.push(n.name)
      }
    }
    return { removed, reconciled }
  }
}

/** The runtime names `subnets[0].subnet`; the option is `subnet` (`subnet[0]` when there are several). */
function subnetField(e: unknown, count: number, field: string): unknown {
  const err = e as NsError
  if (!(err instanceof NsError) || err.code !== 'EINVAL' || err.field !== undefined) return e
  const m = /^(subnets\[(\d+)\](?:\.(subnet|gateway|ipRange))?): (.*)$/.exec(err.message)
  if (!m) return e
  const key = m[3] ?? field
  const f = count > 1 ? `${key}[${m[2]}]` : key
  const out = NsError.invalid(f, m[4]!)
  return err.hint ? new NsError({ ...out, code: out.code, message: out.message, field: f, hint: err.hint }) : out
}

export interface Reconciled {
  allocations: string[]
  published: unknown[]
  devices: string[]
  dns: string[]
  folders: string[]
  errors: Array<{ message: string }>
}

/** The networks of a store (default: the machine's). */
export function networks(opts: NetworksOptions = {}): Networks {
  return new Networks(opts)
}

/** A unique local IPv6 /64 of a network's own, from its name. */
function uniqueLocal(name: string): string {
  let h = 0x811c9dc5
  for (const c of Buffer.from(name)) h = Math.imul(h ^ c, 0x01000193) >>> 0
  const w = (n: number) => (n & 0xffff).toString(16)
  return `fd${((h >>> 24) & 0xff).toString(16).padStart(2, '0')}:${w(h >>> 8)}:${w(h * 31 + 7)}::/64`
}

function parseCidr(c: string): { v6: boolean; bits: bigint; prefix: number } | undefined {
  const [addr, p] = c.split('/')
  if (!addr || p === undefined) return undefined
  const prefix = Number(p)
  if (addr.includes(':')) {
    const [head = '', tail = ''] = addr.split('::')
    const h = head ? head.split(':') : []
    const t = tail ? tail.split(':') : []
    const groups = addr.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
    let bits = 0n
    for (const g of groups) bits = (bits << 16n) | BigInt(parseInt(g || '0', 16))
    return { v6: true, bits, prefix }
  }
  let bits = 0n
  for (const o of addr.split('.')) bits = (bits << 8n) | BigInt(Number(o))
  return { v6: false, bits, prefix }
}

function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a)
  const y = parseCidr(b)
  if (!x || !y || x.v6 !== y.v6) return false
  const width = x.v6 ? 128n : 32n
  const p = BigInt(Math.min(x.prefix, y.prefix))
  return x.bits >> (width - p) === y.bits >> (width - p)
}

// ---------------------------------------------------------------- a container's options

/** A running container's namespace of `kind` (`container:ID`), by path; a clear error when it is not running. */
function containerNamespace(field: string, value: string, kind: string, stateRoot?: string): string {
  const id = value.slice('container:'.length)
  const root = stateRoot ?? native.defaultStateRoot()
  let state: { status?: string; pid?: number }
  try {
    state = JSON.parse(native.containerState(root, id)) as typeof state
  } catch {
    throw new NsError({
      code: 'ENOENT',
      field,
      step: 'validate options',
      message: `${field}: no container ${id}`,
    })
  }
  if (state.status !== 'running' && state.status !== 'created' && state.status !== 'paused') {
    throw new NsError({
      code: 'ESRCH',
      field,
      step: 'validate options',
      message: `${field}: container ${id} is not running (it is ${state.status ?? 'gone'})`,
      hint: `start it first: ns start ${id}`,
    })
  }
  return `/proc/${state.pid}/ns/${kind}`
}

/**
 * The namespaces of `network`, `ipc`, `pid` and `uts`: `host` the host's, `container:ID` a
 * running container's (by path), `private` (and a network by name) a new one.
 */
export function applySharing(o: ParsedRunOptions, ns: Map<NamespaceName, boolean | string>): void {
  const nets = o.network === undefined ? [] : Array.isArray(o.network) ? o.network : [o.network]
  const modes = nets.filter((n) => n === 'none' || n === 'host' || n.startsWith('container:'))
  if (modes.length && nets.length > 1)
    throw NsError.invalid('network', `${modes[0]} cannot be combined with other networks`)
  const given = (k: NamespaceName) => o.namespaces?.[k] !== undefined
  const set = (k: NamespaceName, field: string, v: string) => {
    if (given(k)) throw NsError.invalid(field, `conflicts with namespaces.${k}`)
    ns.set(k, v === 'host' ? false : v === 'private' ? true : containerNamespace(field, v, kindOf(k)))
  }
  const first = nets[0]
  if (first === 'host' || first?.startsWith('container:')) set('network', 'network', first)
  if (o.ipc) set('ipc', 'ipc', o.ipc)
  if (o.pid) set('pid', 'pid', o.pid)
  if (o.uts) set('uts', 'uts', o.uts)
}

function kindOf(k: NamespaceName): string {
  return k === 'network' ? 'net' : k
}

/** What a container's network options add to its spec. */
export interface NetworkSpecPart {
  annotation?: string
  mounts: OciMount[]
}

/**
 * The `io.ns.network` plan of a container on bridge networks, and the binds of its /etc files;
 * nothing for `none`, `host` and `container:ID`. `userMounts` are the destinations of the
 * container's own mounts: one of its own over a file (or a folder above it) wins.
 */
export function networkSpec(
  o: ParsedRunOptions,
  id: string,
  netnsNew: boolean,
  mountNsNew: boolean,
  userMounts: string[],
): NetworkSpecPart {
  const nets = o.network === undefined ? [] : Array.isArray(o.network) ? o.network : [o.network]
  const named = nets.filter((n) => n !== 'none' && n !== 'host' && !n.startsWith('container:'))
  if (named.length === 0) {
    for (const k of ['ip', 'ports', 'networkAlias'] as const)
      if (o[k] !== undefined && (!Array.isArray(o[k]) || o[k].length > 0))
        throw NsError.invalid(
          k,
          `needs a bridge network (--network bridge or a network's name), not ${nets[0] ?? 'none'}`,
        )
    return { mounts: [] }
  }
  if (!netnsNew) throw NsError.invalid('network', 'a bridge network needs a new network namespace (namespaces.network)')
  needRoot('network')
  const store = networks()
  const infos = named.map((n, i) => store.get(n, named.length > 1 ? `network[${i}]` : 'network'))
  if (o.ip !== undefined) {
    const v6 = o.ip.includes(':')
    const pool = infos[0]!.definition.subnets.find((s) => s.subnet.includes(':') === v6)
    if (!pool) throw NsError.invalid('ip', `network ${infos[0]!.name} has no IPv${v6 ? 6 : 4} subnet`)
    if (!overlaps(pool.subnet, `${o.ip}/${v6 ? 128 : 32}`))
      throw NsError.invalid('ip', `${o.ip} is outside network ${infos[0]!.name}'s subnet ${pool.subnet}`)
  }
  const ports = (o.ports ?? []).map(parsePort)
  if (ports.length && infos[0]!.internal)
    throw NsError.invalid('ports', `network ${infos[0]!.name} is internal: it has no published ports`)
  const dir = join(store.containersDir, id)
  const plan = {
    id,
    name: id,
    dir,
    stateDir: store.stateDir,
    dnsDir: store.dnsDir,
    networks: infos.map((n, i) => ({
      network: n.definition,
      ...(i === 0 && o.ip ? { ips: [o.ip] } : {}),
      ...(o.networkAlias?.length ? { aliases: o.networkAlias } : {}),
      dns: n.dns,
    })),
    ...(ports.length ? { ports } : {}),
    ...(o.dns?.length ? { dns: o.dns } : {}),
    ...(o.dnsSearch?.length ? { dnsSearch: o.dnsSearch } : {}),
    ...(o.dnsOption?.length ? { dnsOptions: o.dnsOption } : {}),
    ...(o.addHost?.length ? { addHosts: o.addHost } : {}),
  }
  const mounts: OciMount[] = []
  if (mountNsNew) {
    const covered = (file: string) =>
      userMounts.some((m) => {
        const d = m.replace(/\/+$/, '')
        return d === file || (d !== '' && file.startsWith(`${d}/`))
      })
    for (const [name, dest] of [
      ['hosts', '/etc/hosts'],
      ['resolv.conf', '/etc/resolv.conf'],
      ['hostname', '/etc/hostname'],
    ] as const) {
      if (!covered(dest))
        mounts.push({
          destination: dest,
          type: 'bind',
          source: join(dir, name),
          options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'],
        })
    }
  }
  return { annotation: JSON.stringify(plan), mounts }
}

/** A published port of the options as the runtime takes it. */
function parsePort(v: string): {
  hostIp?: string
  hostPort: number
  containerPort: number
  count: number
  protocol: 'tcp' | 'udp'
} {
  const m = PORT_FORM.exec(v)!
  const [, ip6, ip4, h1, , c1, c2] = m
  const hostIp = ip6 ?? ip4
  const count = c2 === undefined ? 1 : Number(c2) - Number(c1) + 1
  return {
    ...(hostIp ? { hostIp } : {}),
    hostPort: h1 === undefined ? 0 : Number(h1),
    containerPort: Number(c1),
    count,
    protocol: (m[7] as 'tcp' | 'udp' | undefined) ?? 'tcp',
  }
}

/** A container's attachments as its record has them (its networks, addresses, published ports); empty without one. */
export function attachmentsOf(annotations: Record<string, string> | undefined): ContainerNetwork[] {
  const text = annotations?.[NETWORK_ANNOTATION]
  if (!text) return []
  try {
    const plan = JSON.parse(text) as { dir: string }
    const rec = JSON.parse(readFileSync(join(plan.dir, 'attachments.json'), 'utf8')) as {
      attachments: Array<{ network: NetworkDefinition; attachment: RecordedAttachment }>
    }
    return rec.attachments.map(({ network, attachment: a }) => ({
      network: network.name,
      interface: a.interface,
      mac: a.mac,
      addresses: a.addresses,
      gateways: a.gateways,
      ports: a.published.map((p) => ({
        protocol: p.proto,
        ...(p.hostIp ? { hostIp: p.hostIp } : {}),
        hostPort: p.hostPort,
        containerPort: p.toPort,
      })),
    }))
  } catch {
    return []
  }
}

interface RecordedAttachment {
  interface: string
  mac: string
  addresses: string[]
  gateways: string[]
  published: Array<{ proto: 'tcp' | 'udp'; hostIp?: string; hostPort: number; to: string; toPort: number }>
}

/** A network of a container, as `inspect` shows it. */
export interface ContainerNetwork {
  network: string
  interface: string
  mac: string
  addresses: string[]
  gateways: string[]
  ports: Array<{ protocol: 'tcp' | 'udp'; hostIp?: string; hostPort: number; containerPort: number }>
}
