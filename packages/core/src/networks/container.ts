// A container's options that concern its networks and namespaces, compiled into its spec: the
// namespaces it shares (`host`, `container:ID`) and, on bridge networks, the `io.ns.network`
// plan the runtime attaches from, with the binds of its /etc files.
import { join } from 'node:path'

import native from '@ns/native'

import { NsError } from '../errors.js'
import type { NamespaceName } from '../names.js'
import type { ParsedRunOptions } from '../options.js'
import { PORT_FORM } from '../rules.js'
import type { OciMount } from '../spec.js'
import { overlaps } from './cidr.js'
import { needRoot } from './root.js'
import { networks } from './store.js'

/** The annotation that carries a container's network plan to the runtime. */
export const NETWORK_ANNOTATION = 'io.ns.network'

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
