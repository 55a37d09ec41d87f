// A container's log, as the monitor keeps it: all at once as JSON, or followed as Server-Sent
// Events until the container stops.
import { createRoute, z } from '@hono/zod-openapi'
import { streamSSE } from 'hono/streaming'

import type { LogEntry } from '@ns/core'

import { lookup, router, type AppContext } from '../context.js'
import { exitStatus } from '../events.js'
import { sleep, whileAny } from '../limits.js'
import { errors, eventStream, idParams, logEntry, queryBool } from '../schemas.js'

const followPollMs = 100

/** An ISO 8601 time, or a duration ago: `10s`, `5m`, `2h`. */
function parseSince(v: string): Date | undefined {
  const rel = /^(\d+)([smh])$/.exec(v)
  const t = rel
    ? new Date(Date.now() - Number(rel[1]) * { s: 1e3, m: 6e4, h: 3.6e6 }[rel[2] as 's' | 'm' | 'h'])
    : new Date(v)
  return Number.isNaN(t.getTime()) || !/\d/.test(v) ? undefined : t
}

const logsQuery = z.object({
  tail: z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .optional()
    .openapi({ description: 'Only the last N entries (of the stream asked for).', example: '100' }),
  since: z
    .string()
    .refine((v) => parseSince(v) !== undefined, 'must be a time (ISO 8601) or a duration like 10s, 5m, 2h')
    .transform((v) => parseSince(v)!)
    .optional()
    .openapi({
      description: 'Only entries written since: an ISO 8601 time or a duration ago (10s, 5m, 2h).',
      example: '5m',
    }),
  follow: queryBool.openapi({
    description:
      'Stream as Server-Sent Events (`event: stdout|stderr`, `data:` the line) until the container stops; then one `event: exit` with how it ended.',
  }),
  stream: z.enum(['stdout', 'stderr']).optional().openapi({ description: 'Only this stream.' }),
})

const getLogs = createRoute({
  method: 'get',
  path: '/v1/containers/{id}/logs',
  tags: ['logs'],
  summary: "A container's output",
  request: { params: idParams, query: logsQuery },
  responses: {
    200: {
      description: 'The log entries (JSON), or with `follow` an event stream',
      content: {
        'application/json': { schema: z.array(logEntry) },
        'text/event-stream': eventStream('').content['text/event-stream'],
      },
    },
    ...errors(400, 401, 404, 500),
  },
})

export function logRoutes(ctx: AppContext) {
  const app = router()

  app.openapi(getLogs, (c) => {
    const { id } = c.req.valid('param')
    const { tail, since, follow, stream } = c.req.valid('query')
    const container = lookup(ctx, id)
    const wanted = (e: LogEntry) => stream === undefined || e.stream === stream
    const select = (all: LogEntry[]) => {
      let out = all.filter((e) => wanted(e) && (since === undefined || new Date(e.time) >= since))
      if (tail !== undefined) out = tail === 0 ? [] : out.slice(-tail)
      return out
    }
    if (!follow) return c.json(select(container.logs()), 200)

    return streamSSE(c, (sse) =>
      whileAny([c.req.raw.signal, ctx.shutdown], async (gone) => {
        const send = (e: LogEntry) => sse.writeSSE({ event: e.stream, data: e.log.replace(/\r?\n$/, '') })
        let all = container.logs()
        for (const e of select(all)) await send(e)
        let shown = all.length
        while (!gone.aborted && !sse.aborted) {
          let state
          try {
            state = container.state()
            // The monitor records the exit once it has reaped and drained: then the log is whole.
            for (let i = 0; i < 20 && state.status === 'stopped' && !state.exit; i++) {
              await sleep(50, gone)
              state = container.state()
            }
          } catch {
            break // deleted meanwhile
          }
          // Read after looking at the state: whatever it wrote before it stopped is in.
          all = container.logs()
          for (const e of all.slice(shown)) if (wanted(e)) await send(e)
          shown = all.length
          if (state.status === 'stopped') {
            if (state.exit) await sse.writeSSE({ event: 'exit', data: JSON.stringify(exitStatus(state.exit)) })
            break
          }
          await sleep(followPollMs, gone)
        }
      }),
    )
  })

  return app
}
