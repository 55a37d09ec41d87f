// The names ns knows: namespaces and capabilities, and the default set of the latter.

import { capabilityNames, namespaceNames } from './generated/facts.js'

/** The runtime's own names (generated from its tables): every namespace type and capability it knows. */
export { capabilityNames, namespaceNames }
export type NamespaceName = (typeof namespaceNames)[number]

/** Docker's default capability set. */
export const defaultCapabilities = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
] as const

/** `SYS_ADMIN`, `cap_sys_admin` and `CAP_SYS_ADMIN` all name CAP_SYS_ADMIN. */
export function normalizeCap(name: string): string {
  const up = name.toUpperCase()
  return up === 'ALL' ? 'ALL' : up.startsWith('CAP_') ? up : `CAP_${up}`
}
