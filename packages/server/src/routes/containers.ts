// Containers as resources: create (friendly options or a full OCI spec), list, inspect, delete.
import { createRoute, z } from '@hono/zod-openapi'

import { createSpec, list, newContainerId, type DetachedContainer } from '@ns/core'

import { lookup, router, withLabels, type AppContext } from '../context.js'
import { withDeadline } from '../limits.js'
import {
  containerInspect,
  containerState,
  createBody,
  errors,
  idAndState,
  idParams,
  json,
  jsonBody,
  queryBool,
} from '../schemas.js'
import { admitOptions, admitSpec } from '../security.js'

const tags = ['containers']

const createContainer = createRoute({
  method: 'post',
  path: '/v1/containers',
  tags,
  summary: 'Create a container',
  description:
    'From friendly options (those of `run`) or from `{ "spec": <OCI runtime spec> }`. It waits for POST /start unless `start` is true. ' +
    "Bind mounts and root filesystems must lie under the server's --allow-bind directories; privileged options need --allow-privileged.",
  request: { body: jsonBody(createBody) },
  responses: {
    201: json(idAndState, 'Created (and started, with `start`)'),
    ...errors(400, 401, 403, 408, 409, 413, 429, 500),
  },
})

const listContainers = createRoute({
  method: 'get',
  path: '/v1/containers',
  tags,
  summary: 'List containers',
  request: {
    query: z.object({
      status: z
        .enum(['created', 'running', 'paused', 'stopped'])
        .optional()
        .openapi({ description: 'Only containers in this state.' }),
      name: z.string().optional().openapi({ description: 'Only containers whose id contains this.' }),
      label: z
        .union([z.string(), z.array(z.string())])
        .optional()
        .openapi({
          description:
            'Only containers with this label: `key=value`, or `key` for any value. Repeatable (all must match).',
          example: 'app=web',
        }),
    }),
  },
  responses: {
    200: json(z.array(containerState), "The containers under the server's state root"),
    ...errors(400, 401, 500),
  },
})

const inspectContainer = createRoute({
  method: 'get',
  path: '/v1/containers/{id}',
  tags,
  summary: 'Inspect a container',
  description: "State, config, namespaces (inode ids against the host's), host PIDs of its processes and its mounts.",
  request: { params: idParams },
  responses: { 200: json(containerInspect, 'The container'), ...errors(400, 401, 404, 500) },
})

const deleteContainer = createRoute({
  method: 'delete',
  path: '/v1/containers/{id}',
  tags,
  summary: 'Delete a container',
  description:
    'Removes it and everything it took. A running one is refused (409) unless `force`, which kills it first.',
  request: {
    params: idParams,
    query: z.object({ force: queryBool.openapi({ description: 'Kill it first if it runs.' }) }),
  },
  responses: { 204: { description: 'Deleted' }, ...errors(400, 401, 404, 408, 409, 500) },
})

function matchesLabels(labels: Record<string, string>, wanted: string[]): boolean {
  return wanted.every((w) => {
    const eq = w.indexOf('=')
    return eq < 0 ? w in labels : labels[w.slice(0, eq)] === w.slice(eq + 1)
  })
}

export function containerRoutes(ctx: AppContext) {
  const app = router()

  app.openapi(createContainer, async (c) => {
    const body = c.req.valid('json')
    // The policy first: a refused request takes no slot.
    // What runs is the spec that was judged: a client's own, or the one its options compile to.
    const id = body.name ?? newContainerId()
    let make: () => Promise<DetachedContainer>
    if ('spec' in body) {
      const spec = admitSpec(body.spec, ctx.policy, id)
      const { remove, init } = body
      make = () =>
        createSpec(spec, {
          root: ctx.root,
          id,
          ...(remove ? { remove } : {}),
          ...(init !== undefined ? { init } : {}),
        })
    } else {
      const { name: _name, start: _start, remove, ...options } = body
      const { spec, init } = admitOptions(options, ctx.policy, id)
      make = () => createSpec(spec, { root: ctx.root, id, init, ...(remove ? { remove } : {}) })
    }
    // The deadline answers the client; the slot stays taken until the work has really ended.
    const container = await withDeadline(
      ctx.slots.with(async () => {
        const made = await make()
        ctx.events.sync()
        if (body.start) {
          try {
            await made.start()
          } catch (e) {
            // Create-and-start is one request: a container that cannot start is not left behind.
            await made.delete({ force: true }).catch(() => {})
            ctx.events.sync()
            throw e
          }
          ctx.events.sync({ started: made.id })
        }
        return made
      }),
      ctx.limits.opTimeoutMs,
      'create',
    )
    return c.json(
      {
        id: container.id,
        state: withLabels(container.state()),
        ...(container.warnings.length ? { warnings: container.warnings } : {}),
      },
      201,
    )
  })

  app.openapi(listContainers, (c) => {
    const { status, name, label } = c.req.valid('query')
    const labels = label === undefined ? [] : Array.isArray(label) ? label : [label]
    const out = list(ctx.root)
      .map(withLabels)
      .filter((s) => (status ? s.status === status : true))
      .filter((s) => (name ? s.id.includes(name) : true))
      .filter((s) => matchesLabels(s.labels, labels))
    return c.json(out, 200)
  })

  app.openapi(inspectContainer, (c) => {
    const { id } = c.req.valid('param')
    return c.json(withLabels(lookup(ctx, id).inspect()), 200)
  })

  app.openapi(deleteContainer, async (c) => {
    const { id } = c.req.valid('param')
    const { force } = c.req.valid('query')
    const container = lookup(ctx, id)
    // Seen before it goes: listeners learn how it ended, not only that it is gone.
    ctx.events.sync()
    await withDeadline(container.delete({ force: force ?? false }), ctx.limits.opTimeoutMs, `delete ${id}`)
    ctx.events.sync()
    return c.body(null, 204)
  })

  return app
}
