// The hono app: middleware (request log, bearer token, body limit), the routes, the API's
// description. Testable as is with `app.request()`; `serve` puts it on a socket.
import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Context, MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'

import { defaultRoot, openImages } from '@ns/core'

import { router, type AppContext } from './context.js'
import { guardedFetch } from './egress.js'
import { errorBody, errorResponse } from './errors.js'
import { EventHub } from './events.js'
import { defaultLimits, Slots, type Limits } from './limits.js'
import { docsHtml, openApiDocument } from './openapi.js'
import { parseAllowedRegistries } from './policy.js'
import { serverPool, type ServerPool } from './pool.js'
import { Sessions, terminalRoutes } from './routes/attach.js'
import { containerRoutes } from './routes/containers.js'
import { eventRoutes } from './routes/events.js'
import { execRoutes } from './routes/exec.js'
import { imageRoutes, loadPath } from './routes/images.js'
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
  /**
   * Registries (`HOST[:PORT]`) clients may pull from, at any address. None: any registry at a
   * public address (not loopback, link-local, private...), see `judgePull`.
   */
  allowRegistry?: readonly string[]
  /** The image store and how the server reaches registries. */
  images?: ServerImagesOptions
  /** Require `Authorization: Bearer <token>` (always over TCP). */
  token?: string
  limits?: Partial<Limits>
  /** Called once per request, when its response starts. */
  onRequest?: (entry: RequestLog) => void
  /** When it aborts, streams end and polling stops: the server is going away. */
  signal?: AbortSignal
  /**
   * Keep this many sandboxes warm (`ns serve --pool N`) for POST /v1/run requests whose
   * options, but for command, env, cwd, input and timeout, are `poolOptions` (default `{}`: the
   * default sandbox). Closed when `signal` aborts (`closePool` waits for it).
   */
  pool?: number
  poolOptions?: Record<string, unknown>
}

/** The warm sandboxes of apps made with `pool`, to be waited for as they close. */
const pools = new WeakMap<object, ServerPool>()

/** Close the app's pool, if it has one, and resolve once every sandbox of it has ended. */
export async function closePool(app: object): Promise<void> {
  await pools.get(app)?.pool.close()
}

export interface ServerImagesOptions {
  /** The store directory (default: the core's, `/var/lib/ns` for root). */
  store?: string
  /**
   * The credentials file the server logs in to registries with (default: its user's, as podman
   * finds it). Clients never send or read credentials.
   */
  authFile?: string
  /** Registries (`host[:port]`) reached over plain HTTP; loopback always is. */
  insecureRegistries?: readonly string[]
  /** Of the registry client: attempts after the first, time limit of an answer, back-off base. */
  retries?: number
  timeoutMs?: number
  retryDelayMs?: number
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
    // An image archive is bounded by a limit of its own, counted as it is written to disk.
    if (bodiless.has(c.req.method) || (c.req.method === 'POST' && c.req.path === loadPath)) return next()
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
  const policy = {
    allowBind: resolveAllowedRoots(options.allowBind ?? []),
    allowPrivileged: options.allowPrivileged ?? false,
    ids: grantableIds(),
    allowRegistry: parseAllowedRegistries(options.allowRegistry ?? []),
  }
  const egress = guardedFetch(policy)
  const io = options.images ?? {}
  const ctx: AppContext = {
    root,
    policy,
    limits,
    slots: new Slots(limits.maxConcurrent),
    events: new EventHub(root, limits.eventsPollMs),
    terminals: new Sessions(limits.maxTerminals),
    images: openImages({
      store: io.store,
      authFile: io.authFile,
      insecureRegistries: io.insecureRegistries,
      retries: io.retries,
      timeoutMs: io.timeoutMs,
      retryDelayMs: io.retryDelayMs,
      fetch: egress.fetch,
    }),
    imageSlots: new Slots(limits.maxImageJobs, 'image pulls, loads and saves'),
    shutdown,
    ...(options.pool !== undefined ? { pool: serverPool(options.pool, options.poolOptions ?? {}, policy) } : {}),
  }
  shutdown.addEventListener(
    'abort',
    () => {
      ctx.events.close()
      ctx.terminals.closeAll()
      void ctx.pool?.pool.close()
      egress.close().catch(() => {})
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
  app.route('/', imageRoutes(ctx))

  if (ctx.pool) pools.set(app, ctx.pool)

  let doc: ReturnType<typeof openApiDocument> | undefined
  let html: string | undefined
  const document = () => (doc ??= openApiDocument(app, { bearer: options.token !== undefined }))
  app.get('/openapi.json', (c) => c.json(document()))
  app.get('/docs', (c) => c.html((html ??= docsHtml(document()))))

  return app
}
