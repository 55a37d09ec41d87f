// The hono app: middleware (request log, bearer token, body limit), the routes, the API's
// description. Testable as is with `app.request()`; `serve` puts it on a socket.
import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Context, MiddlewareHandler } from 'hono'
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
import { bearerAuth, grantableIds, resolveAllowedRoots } from './security.js'

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
  /**
   * Allow what reaches outside the container: host or joined namespaces, capabilities beyond the
   * default set, seccomp other than the default, host ids outside the container's own, idmapped
   * mounts, hooks, devices, cgroupsPath, ns's own annotations... (see `judgeSpec`).
   */
  allowPrivileged?: boolean
  /** Require `Authorization: Bearer <token>` (always over TCP). */
  token?: string
  limits?: Partial<Limits>
  /** Called once per request, when its response starts. */
  onRequest?: (entry: RequestLog) => void
  /** When it aborts, streams end and polling stops: the server is going away. */
  signal?: AbortSignal
}

/** Methods whose requests have no body: nothing to limit (hono's middleware finds no body either). */
const bodiless = new Set(['GET', 'HEAD', 'TRACE'])

/**
 * The body limit, as hono's middleware applies it: a body that declares its length (and is not
 * chunked) is judged by that length, any other is counted as it is read. Only the counted case
 * asks for the request's body stream: on @hono/node-server that builds a whole web Request and
 * stream, where the JSON of a body is otherwise read straight from the socket.
 */
function limitBody(maxSize: number, onError: (c: Context) => Response): MiddlewareHandler {
  const counted = bodyLimit({ maxSize, onError })
  return async (c, next) => {
    if (bodiless.has(c.req.method)) return next()
    const length = c.req.header('content-length')
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      return Number.parseInt(length || '0', 10) > maxSize ? onError(c) : next()
    }
    return counted(c, next)
  }
}

export function createApp(options: AppOptions = {}): OpenAPIHono {
  const limits = { ...defaultLimits, ...options.limits }
  const root = options.root ?? defaultRoot()
  const shutdown = options.signal ?? new AbortController().signal
  const ctx: AppContext = {
    root,
    policy: {
      allowBind: resolveAllowedRoots(options.allowBind ?? []),
      allowPrivileged: options.allowPrivileged ?? false,
      ids: grantableIds(),
    },
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
    limitBody(limits.maxBodyBytes, (c) =>
      c.json(errorBody('E2BIG', `body: larger than ${limits.maxBodyBytes} bytes`, { field: 'body' }), 413),
    ),
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
