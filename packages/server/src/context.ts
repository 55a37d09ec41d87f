// What every route shares: the state root, the policy, the limits, the event hub. Nothing about
// containers is kept here: the state directory is the only truth, so the server can die and come
// back without losing any.
import { OpenAPIHono } from '@hono/zod-openapi'

import { get, labelsOf, type ContainerState, type DetachedContainer, type Images } from '@ns/core'

import { ApiError, fromZodError } from './errors.js'
import type { EventHub } from './events.js'
import type { Limits, Slots } from './limits.js'
import type { ServerPool } from './pool.js'
import type { Sessions } from './routes/attach.js'
import type { Policy } from './security.js'

export interface AppContext {
  root: string
  policy: Policy
  limits: Limits
  /** Creates, runs and execs in progress. */
  slots: Slots
  events: EventHub
  /** Open terminal sessions (WebSockets). */
  terminals: Sessions
  /** The image store and registry client (whose connections the policy judges, see egress.ts). */
  images: Images
  /** Pulls, loads and saves in progress. */
  imageSlots: Slots
  /** Aborts when the server shuts down: streams end. */
  shutdown: AbortSignal
  /** Warm sandboxes for POST /v1/run (`--pool`), when there are. */
  pool?: ServerPool
}

/** A router whose validation failures are the API's 400s (naming the field). */
export function router(): OpenAPIHono {
  return new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) throw fromZodError(result.error, (result as { data?: unknown }).data, result.target)
    },
  })
}

/** The container with this id, or a 404. */
export function lookup(ctx: AppContext, id: string): DetachedContainer {
  try {
    return get(id, ctx.root)
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') throw ApiError.noContainer(id)
    throw e
  }
}

/** A state as the API shows it: the OCI state, with the labels. */
export function withLabels<T extends ContainerState>(s: T): T & { labels: Record<string, string> } {
  return { ...s, labels: labelsOf(s.annotations) }
}
