// The networks of one store: their definitions (one JSON file each) and the operations of
// `ns network` (create, ls, inspect, rm, prune), each with the runtime's side called through
// the addon.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

import native from '@ns/native'

import { NsError } from '../errors.js'
import { isIpAddress, NETWORK_NAME_FORM, NETWORK_NAME_PROBLEM } from '../rules.js'
import { overlaps } from './cidr.js'
import type { NetworkDefinition, NetworkInfo } from './definition.js'
import { euid, needRoot } from './root.js'

/** The name of the default network (docker's), made on first use. */
export const DEFAULT_NETWORK = 'bridge'

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
