// The verbs of a container's life: start, pause, resume, update, stop, kill, wait.
import { watch, type FSWatcher } from 'node:fs'

import { createRoute, z } from '@hono/zod-openapi'

import { lookup, router, withLabels, type AppContext } from '../context.js'
import { ApiError } from '../errors.js'
import { exitStatus } from '../events.js'
import { whileAny, withDeadline } from '../limits.js'
import {
  errors,
  exitStatus as exitStatusSchema,
  idAndState,
  idParams,
  json,
  queryBool,
  querySeconds,
  querySignal,
  bodySignal,
  signalOf,
  updateBody,
  jsonBody,
} from '../schemas.js'

const tags = ['lifecycle']
const maxStopSeconds = 300

const startContainer = createRoute({
  method: 'post',
  path: '/v1/containers/{id}/start',
  tags,
  summary: 'Start a created container',
  request: { params: idParams },
  responses: { 200: json(idAndState, 'Started'), ...errors(400, 401, 404, 408, 409, 500) },
})

const stopContainer = createRoute({
  method: 'post',
  path: '/v1/containers/{id}/stop',
  tags,
  summary: 'Stop a container',
  description:
    'SIGTERM, then SIGKILL to every process once `timeout` seconds have passed. A stopped container is left as it is.',
  request: {
    params: idParams,
    query: z.object({ timeout: querySeconds(maxStopSeconds, 'Seconds to wait before SIGKILL (default 10).') }),
  },
  responses: {
    200: json(idAndState.extend({ exit: exitStatusSchema }), 'Stopped: its state and how it ended'),
    ...errors(400, 401, 404, 408, 500),
  },
})

const pauseContainer = createRoute({
  method: 'post',
  path: '/v1/containers/{id}/pause',
  tags,
  summary: 'Freeze every process of a container',
  description:
    'Its cgroup is frozen (a container with limits has one); its status is `paused` until resumed. Answers once the kernel says it is frozen.',
  request: { params: idParams },
  responses: { 200: json(idAndState, 'Paused'), ...errors(400, 401, 404, 408, 409, 500) },
})

const resumeContainer = createRoute({
  method: 'post',
  path: '/v1/containers/{id}/resume',
  tags,
  summary: 'Thaw a paused container',
  request: { params: idParams },
  responses: { 200: json(idAndState, 'Running again'), ...errors(400, 401, 404, 408, 409, 500) },
})

const updateContainer = createRoute({
  method: 'post',
  path: '/v1/containers/{id}/update',
  tags,
  summary: 'Change the limits of a running container',
  description:
    'The limits given are written to its cgroup (a container with limits has one) and kept in its config; the others stay.',
  request: { params: idParams, body: jsonBody(updateBody) },
  responses: { 200: json(idAndState, 'Updated'), ...errors(400, 401, 404, 408, 409, 500) },
})

const allDescription = 'To every process of the container, not only its first.'

const killContainer = createRoute({
  method: 'post',
  path: '/v1/containers/{id}/kill',
  tags,
  summary: 'Send a signal to a container',
  description: 'The signal and `all` may be given in the query or in a JSON body (`{"signal": "SIGKILL"}`).',
  request: {
    params: idParams,
    query: z.object({ signal: querySignal, all: queryBool.openapi({ description: allDescription }) }),
    body: {
      required: false,
      content: {
        'application/json': {
          schema: z
            .strictObject({ signal: bodySignal, all: z.boolean().optional().openapi({ description: allDescription }) })
            .openapi('KillBody'),
        },
      },
    },
  },
  responses: { 200: json(idAndState, 'Sent'), ...errors(400, 401, 404, 409, 500) },
})

const waitContainer = createRoute({
  method: 'post',
  path: '/v1/containers/{id}/wait',
  tags,
  summary: 'Wait for a container to end',
  description:
    'Blocks until the container has stopped, at most `timeout` seconds (then 408), and returns how it ended.',
  request: {
    params: idParams,
    query: z.object({
      timeout: querySeconds(24 * 3600, 'Seconds to wait at most (default 300; the server may cap it).'),
    }),
  },
  responses: { 200: json(exitStatusSchema, 'How it ended'), ...errors(400, 401, 404, 408, 500, 503) },
})

/**
 * A watch on `dir` (the monitor writes the exit record there the moment the container ends):
 * `changed` resolves once something changes in it, `ms` pass, or `signal` aborts — woken by
 * inotify, with the time as a fallback. Armed before the caller looks, so that nothing that
 * happens meanwhile is missed; `close` ends it early.
 */
function watchDir(dir: string, ms: number, signal: AbortSignal): { changed: Promise<void>; close: () => void } {
  let close = () => {}
  const changed = new Promise<void>((resolve) => {
    let watcher: FSWatcher | undefined
    const done = () => {
      watcher?.close()
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    close = done
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    try {
      watcher = watch(dir, { persistent: false }, done)
      watcher.on('error', done)
    } catch {
      // gone already: the time decides
    }
  })
  return { changed, close }
}

export function lifecycleRoutes(ctx: AppContext) {
  const app = router()

  app.openapi(startContainer, async (c) => {
    const { id } = c.req.valid('param')
    const container = lookup(ctx, id)
    await withDeadline(container.start(), ctx.limits.opTimeoutMs, `start ${id}`)
    ctx.events.sync({ started: id })
    return c.json({ id, state: withLabels(container.state()) }, 200)
  })

  for (const [route, on] of [
    [pauseContainer, true],
    [resumeContainer, false],
  ] as const) {
    app.openapi(route, async (c) => {
      const { id } = c.req.valid('param')
      const container = lookup(ctx, id)
      await withDeadline(
        on ? container.pause() : container.resume(),
        ctx.limits.opTimeoutMs,
        `${on ? 'pause' : 'resume'} ${id}`,
      )
      ctx.events.sync()
      return c.json({ id, state: withLabels(container.state()) }, 200)
    })
  }

  app.openapi(updateContainer, async (c) => {
    const { id } = c.req.valid('param')
    const container = lookup(ctx, id)
    await withDeadline(container.update(c.req.valid('json')), ctx.limits.opTimeoutMs, `update ${id}`)
    return c.json({ id, state: withLabels(container.state()) }, 200)
  })

  app.openapi(stopContainer, async (c) => {
    const { id } = c.req.valid('param')
    const seconds = c.req.valid('query').timeout ?? 10
    const container = lookup(ctx, id)
    const exit = await withDeadline(
      container.stop(seconds * 1000),
      seconds * 1000 + ctx.limits.opTimeoutMs,
      `stop ${id}`,
    )
    ctx.events.sync()
    return c.json({ id, state: withLabels(container.state()), exit: exitStatus(exit) }, 200)
  })

  app.openapi(killContainer, (c) => {
    const { id } = c.req.valid('param')
    const query = c.req.valid('query')
    const body = c.req.valid('json')
    const inQuery = query.signal === undefined ? undefined : signalOf(query.signal)
    const inBody = body.signal === undefined ? undefined : signalOf(body.signal)
    if (inQuery !== undefined && inBody !== undefined && inQuery !== inBody)
      throw ApiError.invalid('signal', `${query.signal} in the query, ${body.signal} in the body: give one`)
    const sig = inBody ?? inQuery ?? 'SIGTERM'
    const container = lookup(ctx, id)
    container.kill(sig as NodeJS.Signals | number, { all: (body.all ?? false) || (query.all ?? false) })
    ctx.events.sync()
    return c.json({ id, state: withLabels(container.state()) }, 200)
  })

  app.openapi(waitContainer, async (c) => {
    const { id } = c.req.valid('param')
    const seconds = Math.min(c.req.valid('query').timeout ?? ctx.limits.waitTimeoutSec, ctx.limits.maxWaitTimeoutSec)
    const container = lookup(ctx, id)
    const deadline = Date.now() + seconds * 1000
    // Our own polling (not the core's unbounded wait), so a client that leaves or a deadline ends it.
    // Until the monitor has recorded the exit (or cannot any more): the record is renamed into
    // the folder watched, so its arrival wakes us, as the end of the process does.
    const ended = await whileAny([c.req.raw.signal, ctx.shutdown], async (gone) => {
      for (;;) {
        const w = watchDir(container.dir, Math.min(250, Math.max(0, deadline - Date.now())), gone)
        const s = container.state()
        const stop = s.status === 'stopped' && (s.exit || s.exitUnknown || Date.now() >= deadline)
        if (stop || gone.aborted || Date.now() >= deadline) w.close()
        if (stop) return s
        if (gone.aborted) throw new ApiError(503, 'ESHUTDOWN', 'the request ended before the container did')
        if (Date.now() >= deadline)
          throw ApiError.timedOut(`container "${id}" still runs after ${seconds} s (raise ?timeout=)`)
        await w.changed
      }
    })
    const exit = ended.exit ?? (await withDeadline(container.wait(), 5_000, `exit status of ${id}`))
    ctx.events.sync()
    return c.json(exitStatus(exit), 200)
  })

  return app
}
