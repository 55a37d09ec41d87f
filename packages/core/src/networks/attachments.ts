// What a container is attached to, as the runtime's record of its attachment has it (for
// `inspect`): its networks, addresses and published ports.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { NETWORK_ANNOTATION } from './container.js'
import type { NetworkDefinition } from './definition.js'

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
