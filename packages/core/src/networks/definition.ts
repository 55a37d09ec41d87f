// What a network is: its definition as the runtime takes it (`ns_net::Network`), and the
// record the store keeps of it.

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
