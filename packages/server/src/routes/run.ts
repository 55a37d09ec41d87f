// Run to completion in one call: the foreground path of @ns/core (no state directory, no
// monitor: the fastest), bounded in time and output, killed if the client goes away.
import { createRoute, z } from '@hono/zod-openapi'

import { spawnSpec, type Container } from '@ns/core'

import { runCaptured, type CapturedRunOptions } from '../capture.js'
import { router, type AppContext } from '../context.js'
import { ApiError } from '../errors.js'
import { whileAny } from '../limits.js'
import { errors, json, jsonBody, runBody, runResult } from '../schemas.js'
import { admitOptions } from '../security.js'

const runContainer = createRoute({
  method: 'post',
  path: '/v1/run',
  tags: ['run'],
  summary: 'Run a command in a new container, to completion',
  description:
    'Creates, starts, waits for and removes an isolated process in one call, and returns its exit code and output. ' +
    '`timeout` (ms) is bounded by the server; the container is killed if it elapses or if the client disconnects. ' +
    'On a server with warm sandboxes (`ns serve --pool N`), a request whose other fields than command, env, cwd, ' +
    "input and timeout are the pool's options runs in one of them (set up ahead of time, used once).",
  request: { body: jsonBody(runBody) },
  responses: { 200: json(runResult, 'It ran: its exit code and output'), ...errors(400, 401, 403, 413, 429, 500) },
})

const poolState = createRoute({
  method: 'get',
  path: '/v1/pool',
  tags: ['run'],
  summary: 'The warm sandboxes of POST /v1/run (ns serve --pool)',
  description:
    'How many sandboxes the server keeps warm, how many are ready now, how many runs were started in one (warm) ' +
    'or cold, and the options a request must have (but for command, env, cwd, input, timeout) to run in one. ' +
    '404 when the server keeps none.',
  responses: {
    200: json(
      z.object({
        size: z.number().int(),
        ready: z.number().int(),
        warm: z.number().int(),
        cold: z.number().int(),
        options: z.record(z.string(), z.unknown()),
      }),
      'The pool',
    ),
    ...errors(401, 404),
  },
})

/** A run's or an exec's time limit: the one asked for, within the server's bound. */
export function boundedTimeout(ctx: AppContext, asked: number | undefined): number {
  if (asked !== undefined && asked > ctx.limits.maxRunTimeoutMs) {
    throw ApiError.invalid('timeout', `must be at most ${ctx.limits.maxRunTimeoutMs} ms on this server`)
  }
  return asked ?? ctx.limits.runTimeoutMs
}

export function runRoutes(ctx: AppContext) {
  const app = router()

  app.openapi(runContainer, async (c) => {
    const { timeout, input, ...options } = c.req.valid('json')
    const limit = boundedTimeout(ctx, timeout)
    let start: (io: CapturedRunOptions) => Container
    const pool = ctx.pool
    const command = options.command
    if (pool?.matches(options) && command) {
      // The pool's options, judged when it was made: the request brings its own fields only.
      const { env, cwd } = options
      start = (io) => pool.pool.spawn(command, { ...(env ? { env } : {}), ...(cwd ? { cwd } : {}), ...io })
    } else {
      const { spec, init } = admitOptions(options, ctx.policy)
      const id = spec.annotations!['io.ns.id']!
      start = (io) => spawnSpec(spec, { id, init, ...io })
    }
    const result = await whileAny([c.req.raw.signal, ctx.shutdown], (signal) =>
      runCaptured(ctx.slots, start, input, limit, signal, ctx.limits.maxOutputBytes),
    )
    return c.json(result, 200)
  })

  app.openapi(poolState, (c) => {
    const p = ctx.pool
    if (!p) throw new ApiError(404, 'ENOENT', 'this server keeps no warm sandboxes (ns serve --pool N)')
    return c.json({ size: p.pool.size, ready: p.pool.ready, ...p.pool.stats, options: p.options }, 200)
  })

  return app
}
