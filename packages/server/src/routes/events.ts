// Lifecycle events as Server-Sent Events: `event: created|started|oom|exited|deleted`, data the
// event as JSON. Those the server causes come at once; others within the hub's poll period.
import { createRoute, z } from '@hono/zod-openapi'
import { streamSSE } from 'hono/streaming'

import { router, type AppContext } from '../context.js'
import type { ContainerEvent } from '../events.js'
import { sleep, whileAny } from '../limits.js'
import { errors, eventStream } from '../schemas.js'

const heartbeatMs = 15_000
const maxQueued = 10_000

const getEvents = createRoute({
  method: 'get',
  path: '/v1/events',
  tags: ['events'],
  summary: 'Lifecycle events, as they happen',
  description:
    'Server-Sent Events: `event:` is created, started, oom (the OOM killer ended it; exited follows), exited or deleted; ' +
    '`data:` is `{ type, id, time, labels, exitCode?, signal?, oomKilled? }`. ' +
    "Optionally only one container's (`id`). Comment lines keep the connection alive.",
  request: { query: z.object({ id: z.string().optional().openapi({ description: "Only this container's events." }) }) },
  responses: { 200: eventStream('The event stream'), ...errors(400, 401, 500) },
})

export function eventRoutes(ctx: AppContext) {
  const app = router()

  app.openapi(getEvents, (c) => {
    const { id } = c.req.valid('query')
    return streamSSE(c, (sse) =>
      whileAny([c.req.raw.signal, ctx.shutdown], async (gone) => {
        const queue: ContainerEvent[] = []
        let wake: (() => void) | undefined
        // Subscribed before the response goes out: a client that has the headers misses nothing.
        const unsubscribe = ctx.events.subscribe((e) => {
          if (id !== undefined && e.id !== id) return
          if (queue.length >= maxQueued) queue.shift()
          queue.push(e)
          wake?.()
        })
        try {
          await sse.write(': subscribed\n\n')
          while (!gone.aborted && !sse.aborted) {
            for (let e = queue.shift(); e; e = queue.shift())
              await sse.writeSSE({ event: e.type, data: JSON.stringify(e) })
            const tick = new AbortController()
            wake = () => tick.abort()
            await whileAny([gone, tick.signal], (woken) => sleep(heartbeatMs, woken))
            wake = undefined
            if (!tick.signal.aborted && !gone.aborted) await sse.write(': keep-alive\n\n')
          }
        } finally {
          unsubscribe()
        }
      }),
    )
  })

  return app
}
