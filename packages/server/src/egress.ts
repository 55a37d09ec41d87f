// The connections a pull makes for a client, judged as they are made. The pull's registry was
// judged by its name (`judgePull`), but a pull reaches further: a token server named by the
// registry's challenge, blob storage a redirect leads to, and a name that resolved to a public
// address when it was judged may resolve to 127.0.0.1 a second later (DNS rebinding). So every
// connection goes through one connector that checks the address it is about to connect to:
// registries the operator listed at any address, anything else only at a public one.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP, type LookupFunction } from 'node:net'

import { Agent, buildConnector, fetch as undiciFetch } from 'undici'

import { NsError } from '@ns/core'

import { listedConnection, refusedAddress, type PullPolicy } from './pull-policy.js'

/** A connection the policy refused; what fetch rejects with carries it as its cause. */
class Refused extends Error {
  readonly code = 'EPERM'
  constructor(
    readonly host: string,
    readonly address: string,
    readonly why: string,
  ) {
    super(`connection to ${host}${address !== host ? ` (${address})` : ''} refused: ${why}`)
  }
}

/**
 * A lookup that resolves every address of a name and refuses them all when any is refused
 * (net.connect then fails with the refusal); it answers as asked, one address or all of them
 * (Happy Eyeballs asks for all).
 */
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, '', 0)
    for (const a of addresses) {
      const why = refusedAddress(a.address)
      if (why) return callback(new Refused(hostname, a.address, why), '', 0)
    }
    const first = addresses[0]
    if (!first) return callback(Object.assign(new Error(`${hostname}: no address`), { code: 'ENOTFOUND' }), '', 0)
    if (options.all) return callback(null, addresses)
    return callback(null, first.address, first.family)
  })
}

export interface GuardedFetch {
  fetch: typeof fetch
  /** Closes the connections it keeps (on the server's shutdown). */
  close(): Promise<void>
}

/**
 * A `fetch` for the registry client whose every connection the policy judges. A refused one
 * rejects with an NsError (`EPERM`, field `reference`), which the core passes on as it is.
 */
export function guardedFetch(policy: PullPolicy): GuardedFetch {
  const checked = buildConnector({ lookup: guardedLookup })
  const direct = buildConnector({})
  const agent = new Agent({
    connect: (opts, callback) => {
      const host = opts.hostname.replace(/^\[|\]$/g, '')
      const port = Number(opts.port) || (opts.protocol === 'http:' ? 80 : 443)
      if (listedConnection(policy, host, port, opts.protocol)) return direct(opts, callback)
      // An address literal is connected to as it is, without a lookup.
      if (isIP(host)) {
        const why = refusedAddress(host)
        if (why) return callback(new Refused(host, host, why), null)
      }
      return checked(opts, callback)
    },
  })
  const guarded = async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    try {
      return (await undiciFetch(input as Parameters<typeof undiciFetch>[0], {
        ...(init as Parameters<typeof undiciFetch>[1]),
        dispatcher: agent,
      })) as unknown as Response
    } catch (e) {
      const cause = (e as { cause?: unknown }).cause
      if (cause instanceof Refused) {
        throw new NsError({
          code: 'EPERM',
          field: 'reference',
          message: `${cause.message}; this server reaches only public addresses, and the registries of --allow-registry`,
        })
      }
      throw e
    }
  }
  return { fetch: guarded as typeof fetch, close: () => agent.close() }
}
