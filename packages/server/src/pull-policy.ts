// What a pull may reach. A server that pulls what a client names fetches URLs for it, so a pull
// goes only to a registry the operator listed (`--allow-registry`) or, with no list, to one at a
// public address: `judgePull` judges the reference before anything is fetched, and
// `refusedAddress` and `listedConnection` judge each connection as it is made (egress.ts).
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'

import { parseSource, NsError, type ImageReference } from '@ns/core'

import { ApiError } from './errors.js'

/** What of a server's policy a pull is judged by: the operator's `--allow-registry` list. */
export interface PullPolicy {
  allowRegistry?: readonly AllowedRegistry[] | undefined
}

/** A registry of `--allow-registry HOST[:PORT]`. */
export interface AllowedRegistry {
  /** As a reference names it (`docker.io`, `127.0.0.1:5000`, `[::1]:5000`). */
  domain: string
  /** The host, lowercase, an IPv6 address without brackets. */
  host: string
  /** Undefined: the default port of the scheme the registry is reached with (443, or 80). */
  port: number | undefined
}

/** Names docker.io is reached by (its API is at registry-1.docker.io). */
const dockerHubHosts = ['docker.io', 'index.docker.io', 'registry-1.docker.io']

/** The operator's `--allow-registry` entries, checked once; a malformed one is a start-up error. */
export function parseAllowedRegistries(entries: readonly string[]): AllowedRegistry[] {
  return entries.map((raw, i) => {
    const field = `allowRegistry[${i}]`
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?))(?::(\d{1,5}))?$/.exec(raw)
    const port = m?.[3] === undefined ? undefined : Number(m[3])
    if (!m || (m[1] !== undefined && isIP(m[1]) !== 6) || (port !== undefined && (port < 1 || port > 65535))) {
      throw NsError.invalid(
        field,
        `${JSON.stringify(raw)} must be HOST or HOST:PORT (registry.example, 127.0.0.1:5000, [::1]:5000), no scheme or path`,
      )
    }
    // As a URL would write it: lowercase, IPv6 compressed.
    const bracketed = new URL(`http://${m[1] !== undefined ? `[${m[1]}]` : m[2]}`).hostname
    let host = bracketed.replace(/^\[|\]$/g, '')
    if (dockerHubHosts.includes(host)) host = 'docker.io'
    const domain = `${host.includes(':') ? `[${host}]` : host}${port === undefined ? '' : `:${port}`}`
    return { domain, host, port }
  })
}

/** An IP address as 128 bits, an IPv4 one as IPv4-mapped IPv6 (`::ffff:a.b.c.d`). */
function addressBits(address: string): bigint | undefined {
  const a = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '')
  const v4 = (s: string) => s.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n)
  const family = isIP(a)
  if (family === 4) return (0xffffn << 32n) | v4(a)
  if (family !== 6) return undefined
  let s = a
  if (s.includes('.')) {
    // A dotted quad at the end stands for the last two groups.
    const at = s.lastIndexOf(':')
    const q = v4(s.slice(at + 1))
    s = `${s.slice(0, at + 1)}${(q >> 16n).toString(16)}:${(q & 0xffffn).toString(16)}`
  }
  const [head = '', tail] = s.split('::')
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
  return groups.reduce((n, g) => (n << 16n) | BigInt(Number.parseInt(g, 16)), 0n)
}

const mapped = (v4: string, bits: number): [bigint, number] => [addressBits(v4)!, 96 + bits]
const v6 = (prefix: string, bits: number): [bigint, number] => [addressBits(prefix)!, bits]

/**
 * Addresses a pull may not reach unless its registry is listed: the server's own host, its
 * networks and the networks of its provider. Documentation ranges (192.0.2.0/24, 2001:db8::/32)
 * are routed nowhere and not listed.
 */
const refusedRanges: { range: [bigint, number]; why: string }[] = [
  { range: mapped('0.0.0.0', 8), why: 'an address of this host ("this network", 0.0.0.0/8)' },
  { range: mapped('127.0.0.0', 8), why: 'a loopback address' },
  { range: mapped('10.0.0.0', 8), why: 'a private address' },
  { range: mapped('172.16.0.0', 12), why: 'a private address' },
  { range: mapped('192.168.0.0', 16), why: 'a private address' },
  { range: mapped('100.64.0.0', 10), why: 'a shared address (carrier-grade NAT, 100.64.0.0/10)' },
  { range: mapped('169.254.0.0', 16), why: 'a link-local address (cloud metadata services live there)' },
  { range: mapped('192.0.0.0', 24), why: 'a reserved address (IETF protocol assignments)' },
  { range: mapped('198.18.0.0', 15), why: 'a reserved address (benchmarking, 198.18.0.0/15)' },
  { range: mapped('224.0.0.0', 4), why: 'a multicast address' },
  { range: mapped('240.0.0.0', 4), why: 'a reserved address (240.0.0.0/4)' },
  { range: v6('::', 128), why: 'the unspecified address (this host)' },
  { range: v6('::1', 128), why: 'a loopback address' },
  { range: v6('fe80::', 10), why: 'a link-local address' },
  { range: v6('fec0::', 10), why: 'a site-local address' },
  { range: v6('fc00::', 7), why: 'a private address (unique local)' },
  { range: v6('ff00::', 8), why: 'a multicast address' },
  { range: v6('100::', 64), why: 'a reserved address (discard, 100::/64)' },
  { range: v6('64:ff9b:1::', 48), why: 'a private address (local NAT64)' },
]

/** IPv6 ranges that carry an IPv4 address, and where it is in them: judged as that address. */
const embedding: { range: [bigint, number]; shift: bigint; how: string }[] = [
  { range: v6('64:ff9b::', 96), shift: 0n, how: 'through NAT64' },
  { range: v6('2002::', 16), shift: 80n, how: 'through 6to4' },
  { range: v6('::', 96), shift: 0n, how: 'IPv4-compatible' },
]

const within = (bits: bigint, [prefix, len]: [bigint, number]) =>
  bits >> BigInt(128 - len) === prefix >> BigInt(128 - len)

/**
 * Why a pull may not connect to `address` (an IP address), or undefined if it may: loopback,
 * link-local, private, shared, unspecified, multicast and reserved addresses, in IPv4 and IPv6,
 * IPv4 ones also as IPv4-mapped, IPv4-compatible, NAT64 and 6to4 addresses.
 */
export function refusedAddress(address: string): string | undefined {
  const bits = addressBits(address)
  if (bits === undefined) return undefined
  const hit = refusedRanges.find((r) => within(bits, r.range))
  if (hit) return hit.why
  for (const e of embedding) {
    if (!within(bits, e.range)) continue
    const v4 = (bits >> e.shift) & 0xffffffffn
    const inner = refusedRanges.find((r) => within((0xffffn << 32n) | v4, r.range))
    if (inner) return `${inner.why} (${e.how})`
  }
  return undefined
}

/**
 * Is a connection to `hostname:port` one to a registry the operator listed? Those are reached
 * at whatever address they have (a registry on the LAN, or on loopback). A listed registry
 * without a port is the default port of the scheme (`https:` 443, `http:` 80).
 */
export function listedConnection(policy: PullPolicy, hostname: string, port: number, protocol: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  const fallback = protocol === 'http:' ? 80 : 443
  return (policy.allowRegistry ?? []).some(
    (r) => (r.host === 'docker.io' ? dockerHubHosts.includes(host) : r.host === host) && (r.port ?? fallback) === port,
  )
}

/** The addresses a name resolves to (all of them); none when it does not resolve. */
export type Resolver = (host: string) => Promise<string[]>

const resolveAll: Resolver = (host) =>
  lookup(host, { all: true, verbatim: true }).then(
    (all) => all.map((a) => a.address),
    () => [],
  )

const allowRegistryHint = (domain: string) => `(an operator allows it with --allow-registry ${domain})`

/**
 * What a client may pull: a registry reference (not `oci:`, `oci-archive:`, `docker-archive:`,
 * which read the server's files), from a registry the operator listed when there is a list,
 * else from any registry whose address is public. Throws a 403 naming `reference` (a 400 for a
 * malformed one); returns the reference. A registry is judged here by its name and what it
 * resolves to now; each connection the pull makes (redirects and token servers included) is
 * judged again as it is made, on the address it is made to (`egress.ts`).
 */
export async function judgePull(
  reference: string,
  policy: PullPolicy,
  resolve: Resolver = resolveAll,
): Promise<ImageReference> {
  const src = parseSource(reference, 'reference')
  if (src.transport !== 'docker') {
    throw ApiError.refused(
      'reference',
      `${src.transport}: reads a file on the server; send the archive to POST /v1/images/load instead`,
    )
  }
  const ref = src.ref
  const listed = policy.allowRegistry ?? []
  const domain = ref.domain.toLowerCase()
  if (listed.length > 0) {
    if (listed.some((r) => r.domain === domain)) return ref
    throw ApiError.refused(
      'reference',
      `registry ${ref.domain} is not one this server pulls from (--allow-registry: ${listed.map((r) => r.domain).join(', ')})`,
    )
  }
  // The host as a URL reads it (`2130706433` and `0x7f.1` are 127.0.0.1 there), as contacted.
  let host = new URL(`http://${domain}`).hostname.replace(/^\[|\]$/g, '')
  if (host === 'docker.io') host = 'registry-1.docker.io'
  const addresses = isIP(host) ? [host] : await resolve(host)
  for (const a of addresses) {
    const why = refusedAddress(a)
    if (why) {
      throw ApiError.refused(
        'reference',
        `registry ${ref.domain} is at ${a}, ${why}: this server pulls only from public addresses ${allowRegistryHint(ref.domain)}`,
      )
    }
  }
  return ref
}
