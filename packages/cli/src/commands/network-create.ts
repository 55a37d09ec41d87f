import { networks } from '@ns/core'

import { defineCommand } from '../command.js'
import { bool, list, value } from '../flags.js'

export default defineCommand({
  description: 'create a bridge network (its bridge, gateways, NAT and name resolution)',
  args: [['<name>']],
  flags: {
    subnet: list('--subnet <cidr>', 'a subnet, IPv4 or IPv6 (default: a free range of 10.88.0.0/16, 10.89.0.0/16, …)', {
      field: 'subnet',
    }),
    gateway: list('--gateway <ip>', "the gateway of each --subnet, in order (default: the subnet's first address)", {
      field: 'gateway',
    }),
    ipRange: list('--ip-range <cidr>', "where each --subnet's dynamic addresses come from", { field: 'ipRange' }),
    ipv6: bool('--ipv6', 'an IPv6 subnet too (a unique local /64 of its own without --subnet)'),
    mtu: value('--mtu <bytes>', "the bridge's MTU (default: the host's default route's)", { field: 'mtu' }),
    internal: bool('--internal', 'no way out: nothing forwarded off the bridge, no published ports'),
    label: list('--label <key=value>', 'a label of the network', { field: 'labels' }),
    dns: bool('--no-dns', 'no resolver for the names of its containers'),
    quiet: bool('-q, --quiet', 'print only the name'),
  },
  action([name], o) {
    const labels: Record<string, string> = {}
    for (const l of o.label ?? []) {
      const at = l.indexOf('=')
      labels[at < 0 ? l : l.slice(0, at)] = at < 0 ? '' : l.slice(at + 1)
    }
    const mtu = o.mtu === undefined ? undefined : Number(o.mtu)
    const n = networks().create({
      name: name as string,
      ...(o.subnet?.length ? { subnet: o.subnet } : {}),
      ...(o.gateway?.length ? { gateway: o.gateway } : {}),
      ...(o.ipRange?.length ? { ipRange: o.ipRange } : {}),
      ...(o.ipv6 ? { ipv6: true } : {}),
      ...(mtu !== undefined ? { mtu } : {}),
      ...(o.internal ? { internal: true } : {}),
      ...(Object.keys(labels).length ? { labels } : {}),
      ...(o.dns === false ? { dns: false } : {}),
    })
    process.stdout.write(o.quiet ? `${n.name}\n` : `${n.name} ${n.definition.subnets.map((s) => s.subnet).join(' ')}\n`)
  },
})
