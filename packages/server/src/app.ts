// The hono app: middleware (request log, bearer token, body limit), the routes, the API's
// description. Testable as is with `app.request()`; `serve` puts it on a socket.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { bodyLimit } from 'hono/body-limit'

import { defaultRoot } from '@ns/core'

import { router, type AppContext } from './context.js'
import { errorBody, errorResponse } from './errors.js'
import { EventHub } from './events.js'
import { defaultLimits, Slots, type Limits } from './limits.js'
import { docsHtml, openApiDocument } from './openapi.js'
import { Sessions, terminalRoutes } from './routes/attach.js'
import { containerRoutes } from './routes/containers.js'
import { eventRoutes } from './routes/events.js'
import { execRoutes } from './routes/exec.js'
import { lifecycleRoutes } from './routes/lifecycle.js'
import { logRoutes } from './routes/logs.js'
import { runRoutes } from './routes/run.js'
import { statsRoutes } from './routes/stats.js'
import { systemRoutes } from './routes/system.js'
import { bearerAuth, resolveAllowedRoots } from './security.js'

export interface RequestLog {
  time: string
  method: string
  path: string
  status: number
  ms: number
}

export interface AppOptions {
  /** State directory of the containers, given to every core call (default: the core's). */
  root?: string
  /** Directories under which bind mounts and root filesystems may be (symlinks resolved). */
  allowBind?: readonly string[]
  /** Allow host namespaces, maps of the host's root, `/` as root, specs without a user namespace. */
  allowPrivileged?: boolean
  /** Require `Authorization: Bearer <token>` (always over TCP). */
  token?: string
  limits?: Partial<Limits>
  /** Called once per request, when its response starts. */
  onRequest?: (entry: RequestLog) => void
  /** When it aborts, streams end and polling stops: the server is going away. */
  signal?: AbortSignal
}

export function createApp(options: AppOptions = {}): OpenAPIHono {
  const limits = { ...defaultLimits, ...options.limits }
  const root = options.root ?? defaultRoot()
  const shutdown = options.signal ?? new AbortController().signal
  const ctx: AppContext = {
    root,
    policy: { allowBind: resolveAllowedRoots(options.allowBind ?? []), allowPrivileged: options.allowPrivileged ?? false },
    limits,
    slots: new Slots(limits.maxConcurrent),
    events: new EventHub(root, limits.eventsPollMs),
    terminals: new Sessions(limits.maxTerminals),
    shutdown,
  }
  shutdown.addEventListener(
    'abort',
    () => {
      ctx.events.close()
      ctx.terminals.closeAll()
    },
    { once: true },
  )

  const app = router()
  app.onError(errorResponse)
  app.notFound((c) => c.json(errorBody('ENOENT', `no such route: ${c.req.method} ${c.req.path}`), 404))

  const onRequest = options.onRequest
  if (onRequest) {
    app.use(async (c, next) => {
      const t0 = performance.now()
      await next()
      onRequest({
        time: new Date().toISOString(),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round((performance.now() - t0) * 10) / 10,
      })
    })
  }
  if (options.token !== undefined) app.use(bearerAuth(options.token))
  app.use(
    bodyLimit({
      maxSize: limits.maxBodyBytes,
      onError: (c) => c.json(errorBody('E2BIG', `body: larger than ${limits.maxBodyBytes} bytes`, { field: 'body' }), 413),
    }),
  )

  app.route('/', systemRoutes())
  app.route('/', containerRoutes(ctx))
  app.route('/', lifecycleRoutes(ctx))
  app.route('/', runRoutes(ctx))
  app.route('/', execRoutes(ctx))
  app.route('/', logRoutes(ctx))
  app.route('/', statsRoutes(ctx))
  app.route('/', eventRoutes(ctx))
  app.route('/', terminalRoutes(ctx))

  let doc: ReturnType<typeof openApiDocument> | undefined
  let html: string | undefined
  const document = () => (doc ??= openApiDocument(app, { bearer: options.token !== undefined }))
  app.get('/openapi.json', (c) => c.json(document()))
  app.get('/docs', (c) => c.html((html ??= docsHtml(document()))))

  return app
}
