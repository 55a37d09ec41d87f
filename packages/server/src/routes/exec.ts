// A command run to completion inside a running container: it joins all its namespaces.
import { createRoute } from '@hono/zod-openapi'

import { runCaptured } from '../capture.js'
import { lookup, router, type AppContext } from '../context.js'
import { whileAny } from '../limits.js'
import { errors, execBody, idParams, json, jsonBody, runResult } from '../schemas.js'
import { boundedTimeout } from './run.js'

const execInContainer = createRoute({
  method: 'post',
  path: '/v1/containers/{id}/exec',
  tags: ['run'],
  summary: 'Run a command in a running container, to completion',
  description:
    "With the container's environment, working directory and user unless given. `timeout` (ms) is bounded by the server.",
  request: { params: idParams, body: jsonBody(execBody) },
  responses: { 200: json(runResult, 'It ran: its exit code and output'), ...errors(400, 401, 404, 409, 413, 429, 500) },
})

export function execRoutes(ctx: AppContext) {
  const app = router()

  app.openapi(execInContainer, async (c) => {
    const { id } = c.req.valid('param')
    const { timeout, input, ...options } = c.req.valid('json')
    const limit = boundedTimeout(ctx, timeout)
    const container = lookup(ctx, id)
    const result = await whileAny([c.req.raw.signal, ctx.shutdown], (signal) =>
      runCaptured(
        ctx.slots,
        (io) => container.exec({ ...options, ...io }),
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
