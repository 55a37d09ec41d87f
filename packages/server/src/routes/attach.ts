// Terminals over WebSockets: attach to a detached container's terminal, or run an interactive
// exec in a running container. Binary messages carry keys one way and output the other; text
// messages carry JSON: `{"type":"resize","cols","rows"}` from the client, and at the end
// `{"type":"exit","exitCode","signal","oomKilled"}` from the server before it closes (1000).
import { createRoute, type z } from '@hono/zod-openapi'
import { upgradeWebSocket } from '@hono/node-server'
import type { MiddlewareHandler } from 'hono'
import type { WSContext, WSEvents } from 'hono/ws'

import { NsError, type Attachment, type Container, type DetachedContainer } from '@ns/core'

import { lookup, router, type AppContext } from '../context.js'
import { ApiError, fromZodError } from '../errors.js'
import { errors, execSession, idParams, terminalMessage } from '../schemas.js'

const tags = ['terminals']

const protocol =
  'Binary messages from the client are keys; text messages are JSON: `{"type":"resize","cols":N,"rows":N}`, ' +
  '`{"type":"input","data":"..."}` or `{"type":"close-stdin"}`. The server sends the output as binary messages, ' +
  'then `{"type":"exit","exitCode":N,"signal":S,"oomKilled":B}` as text and closes with 1000. ' +
  'A bad message is answered `{"type":"error","error":{...}}` and the session goes on.'

const attachRoute = createRoute({
  method: 'get',
  path: '/v1/containers/{id}/attach',
  tags,
  summary: "Attach to a container's terminal (WebSocket)",
  description:
    'Upgrades to a WebSocket carrying the terminal of a container created with `tty: true`, both ways. ' +
    'Several clients may attach at once; closing the socket detaches and leaves the container running. ' +
    protocol,
  request: { params: idParams },
  responses: { 101: { description: 'Switching to the WebSocket protocol' }, ...errors(400, 401, 404, 409, 429, 500) },
})

const execRoute = createRoute({
  method: 'get',
  path: '/v1/containers/{id}/exec/attach',
  tags,
  summary: 'Run an interactive command in a running container (WebSocket)',
  description:
    'Upgrades to a WebSocket. The first message (text) says what to run: an `ExecSession` ' +
    '(`command`, `env`, `cwd`, `user`, `tty` (default true), `cols`, `rows`). Without a terminal, each binary ' +
    'message from the server starts with one byte naming the stream (1 stdout, 2 stderr). Closing the socket kills the command. ' +
    protocol,
  request: { params: idParams },
  responses: { 101: { description: 'Switching to the WebSocket protocol' }, ...errors(400, 401, 404, 409, 429, 500) },
})

/** Open terminal sessions: bounded, and all closed when the server shuts down. */
export class Sessions {
  readonly #open = new Set<() => void>()

  constructor(readonly limit: number) {}

  get size(): number {
    return this.#open.size
  }

  /** Room for one more, or a 429. */
  check(): void {
    if (this.#open.size >= this.limit) {
      throw new ApiError(
        429,
        'EBUSY',
        `too many terminal sessions open on this server (limit ${this.limit}); retry later`,
        {
          headers: { 'Retry-After': '1' },
        },
      )
    }
  }

  add(close: () => void): () => void {
    this.#open.add(close)
    return () => this.#open.delete(close)
  }

  closeAll(): void {
    for (const close of Array.from(this.#open)) close()
  }
}

/** An upgrade request, or a 400 that says this route speaks WebSocket only. */
const needsUpgrade: MiddlewareHandler = async (c, next) => {
  if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
    throw new ApiError(400, 'EINVAL', `${c.req.path} speaks WebSocket only: send an upgrade request`)
  }
  await next()
}

type Ws = WSContext<unknown>

function sendJson(ws: Ws, message: Record<string, unknown>): void {
  if (ws.readyState === 1) ws.send(JSON.stringify(message))
}

function sendError(ws: Ws, e: unknown): void {
  const err =
    e instanceof ApiError || e instanceof NsError
      ? { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) }
      : { code: 'EIO', message: (e as Error)?.message ?? String(e) }
  sendJson(ws, { type: 'error', error: err })
}

function bytesOf(data: unknown): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  return new Uint8Array()
}

/** A text message from the client, parsed and checked against `schema`. */
function parseMessage<S extends z.ZodType>(schema: S, text: string, notJson: string): z.output<S> {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw ApiError.invalid('message', notJson)
  }
  const r = schema.safeParse(raw)
  if (!r.success) throw fromZodError(r.error, raw, 'message')
  return r.data
}

const controlMessage = (text: string) => parseMessage(terminalMessage, text, 'must be JSON (binary messages are keys)')

/** The exit of a detached container once its terminal is gone (it may take a moment). */
async function exitOf(container: DetachedContainer): Promise<Record<string, unknown>> {
  try {
    const e = await Promise.race([
      container.wait(),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000)),
    ])
    if (e) return { exitCode: e.exitCode, signal: e.signal, oomKilled: e.oomKilled ?? false }
  } catch {
    // deleted meanwhile
  }
  return { exitCode: null, signal: null, oomKilled: false }
}

export function terminalRoutes(ctx: AppContext) {
  const app = router()

  app.openapi(
    { ...attachRoute, middleware: [needsUpgrade] },
    // Attaching happens before the upgrade, so a refusal is an HTTP status (404, 409).
    upgradeWebSocket(async (c): Promise<WSEvents<unknown>> => {
      const container = lookup(ctx, c.req.param('id')!)
      ctx.terminals.check()
      const attachment: Attachment = await container.attach()
      let forget = () => {}
      return {
        onOpen(_evt, ws) {
          forget = ctx.terminals.add(() => ws.close(1001, 'server shutting down'))
          attachment.output.on('data', (chunk: Buffer) => {
            if (ws.readyState === 1) ws.send(new Uint8Array(chunk))
          })
          void attachment.closed.then(async () => {
            if (ws.readyState !== 1) return
            sendJson(ws, { type: 'exit', ...(await exitOf(container)) })
            ws.close(1000, 'exited')
          })
        },
        onMessage(evt, ws) {
          try {
            if (typeof evt.data !== 'string') return attachment.write(bytesOf(evt.data))
            const m = controlMessage(evt.data)
            if (m.type === 'resize') attachment.resize(m.cols, m.rows)
            else if (m.type === 'input') attachment.write(m.data)
            // A container's terminal is shared: one client cannot close it for the others.
          } catch (e) {
            sendError(ws, e)
          }
        },
        onClose() {
          forget()
          attachment.close()
        },
        onError() {
          forget()
          attachment.close()
        },
      }
    }) as never,
  )

  app.openapi(
    { ...execRoute, middleware: [needsUpgrade] },
    upgradeWebSocket(async (c): Promise<WSEvents<unknown>> => {
      const container = lookup(ctx, c.req.param('id')!)
      if (container.state().status !== 'running') {
        throw new NsError({ code: 'ESTATE', step: 'exec', message: `container "${container.id}" is not running` })
      }
      ctx.terminals.check()
      let proc: Container | undefined
      let tty = true
      let forget = () => {}
      const begin = (ws: Ws, text: string) => {
        const {
          cols,
          rows,
          tty: wantTty,
          ...options
        } = parseMessage(execSession, text, 'the first message must be the JSON of what to run')
        tty = wantTty ?? true
        const p = container.exec({ ...options, tty, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe' })
        proc = p
        if (tty && cols && rows) p.resize(cols, rows)
        const forward = (stream: number) => (chunk: Buffer) => {
          if (ws.readyState !== 1) return
          ws.send(new Uint8Array(tty ? chunk : Buffer.concat([Buffer.from([stream]), chunk])))
        }
        p.stdout?.on('data', forward(1))
        p.stderr?.on('data', forward(2))
        void p.exited.then(
          (e) => {
            // The output pipes close with the process: let them drain first.
            setImmediate(() => {
              sendJson(ws, { type: 'exit', exitCode: e.exitCode, signal: e.signal, oomKilled: e.oomKilled })
              ws.close(1000, 'exited')
            })
          },
          (e: unknown) => {
            sendError(ws, e)
            ws.close(1011, 'exec failed')
          },
        )
      }
      return {
        onOpen(_evt, ws) {
          forget = ctx.terminals.add(() => ws.close(1001, 'server shutting down'))
        },
        onMessage(evt, ws) {
          try {
            if (!proc) {
              if (typeof evt.data !== 'string')
                throw ApiError.invalid('message', 'the first message must be the JSON of what to run')
              return begin(ws, evt.data)
            }
            if (typeof evt.data !== 'string') {
              proc.stdin?.write(bytesOf(evt.data))
              return
            }
            const m = controlMessage(evt.data)
            if (m.type === 'resize') proc.resize(m.cols, m.rows)
            else if (m.type === 'input') proc.stdin?.write(m.data)
            // A terminal has no end of its input: its end-of-file key (^D) says the same.
            else if (tty) proc.stdin?.write('\x04')
            else proc.stdin?.end()
          } catch (e) {
            sendError(ws, e)
          }
        },
        onClose() {
          forget()
          void proc?.kill('SIGKILL')
        },
        onError() {
          forget()
          void proc?.kill('SIGKILL')
        },
      }
    }) as never,
  )

  return app
}
