// Container networks: their definitions (stored here, one JSON file each), the options of a
// container that name them (compiled into its runtime spec: the `io.ns.network` plan the
// helper attaches from, the binds of its /etc files, the namespaces it shares), and the
// operations of `ns network` (create, ls, inspect, rm, prune). The kernel's side of each is
// the runtime's (`ns_runtime::network`, through the addon): bridges, addresses, firewall,
// resolvers. Every call here is synchronous and takes plain data, so that the routes of a
// server can be thin wrappers of it.
//
// A file a part: `definition.ts` (what a network is), `store.ts` (the store and the operations
// of `ns network`), `container.ts` (a container's options into its spec), `attachments.ts`
// (what a container's record says it is attached to); `cidr.ts` and `root.ts` are what they
// share (subnets compared; bridge networks are root's).
export type { NetworkDefinition, NetworkInfo, Pool } from './definition.js'
export {
  DEFAULT_NETWORK,
  defaultNetworkStore,
  defaultRunDir,
  Networks,
  networks,
  type NetworkCreateOptions,
  type NetworkDetails,
  type NetworksOptions,
  type Reconciled,
} from './store.js'
export { applySharing, NETWORK_ANNOTATION, networkSpec, type NetworkSpecPart } from './container.js'
export { attachmentsOf, type ContainerNetwork } from './attachments.js'
