// Run to completion in one call: the foreground path of @ns/core (no state directory, no
// monitor: the fastest), bounded in time and output, killed if the client goes away.
import { createRoute } from '@hono/zod-openapi'

import { spawnSpec } from '@ns/core'

import { runCaptured } from '../capture.js'
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
    '`timeout` (ms) is bounded by the server; the container is killed if it elapses or if the client disconnects.',
  request: { body: jsonBody(runBody) },
  responses: { 200: json(runResult, 'It ran: its exit code and output'), ...errors(400, 401, 403, 413, 429, 500) },
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
    const { spec, init } = admitOptions(options, ctx.policy)
    const id = spec.annotations!['io.ns.id']!
    const result = await whileAny([c.req.raw.signal, ctx.shutdown], (signal) =>
      runCaptured(
        ctx.slots,
        (io) => spawnSpec(spec, { id, init, ...io }),
        input,
        limit,
        signal,
        ctx.limits.maxOutputBytes,
      ),
    )
    return c.json(result, 200)
  })

  return app
}
