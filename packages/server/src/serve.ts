// Put the app on a socket: a unix socket by default (its file mode is the access control), TCP
// only when asked and then only with a bearer token.
import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync, type Stats } from 'node:fs'
import { createConnection } from 'node:net'
import type { Server } from 'node:http'
import { dirname, join } from 'node:path'

import { createAdaptorServer, type WebSocketServerLike } from '@hono/node-server'
import { WebSocketServer } from 'ws'

import { NsError } from '@ns/core'

import { closePool, createApp, type AppOptions } from './app.js'

export interface ServeOptions extends AppOptions {
  /** Unix socket path (default: `defaultSocketPath()`). */
  socket?: string
  /** `HOST:PORT` (`[::1]:8080` for IPv6) to listen on TCP instead; needs `token`. */
  listen?: string
}

export interface RunningServer {
  server: Server
  /** `unix:/path` or `http://host:port`. */
  url: string
  socket?: string
  host?: string
  port?: number
  /** Stop accepting, end streams, close connections, remove the socket file. */
  close(): Promise<void>
}

/** Mode of the socket file: owner and group may connect, nobody else. */
export const socketMode = 0o660
/** Time open connections get to finish when the server closes. */
const closeGraceMs = 2000

/** `/run/ns/ns.sock` for root, `$XDG_RUNTIME_DIR/ns/ns.sock` otherwise (`/tmp/ns-UID/ns.sock` without it). */
export function defaultSocketPath(): string {
  const uid = process.geteuid?.() ?? 0
  if (uid === 0) return '/run/ns/ns.sock'
  const xdg = process.env.XDG_RUNTIME_DIR
  return xdg ? join(xdg, 'ns', 'ns.sock') : `/tmp/ns-${uid}/ns.sock`
}

/** `HOST:PORT` or `[V6]:PORT`. */
export function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(v)
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535)
    throw NsError.invalid('listen', `${JSON.stringify(v)} must be HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080)`)
  return { host: (m[1] ?? m[2])!, port }
}

/** Is something accepting connections on this socket path? */
function answering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path)
    s.once('connect', () => (s.destroy(), resolve(true)))
    s.once('error', () => resolve(false))
  })
}

/**
 * Make the socket's folder (the default one only: a folder the operator names must exist, or a
 * typo would make a tree of folders), and clear a socket file a dead server left behind.
 */
async function prepareSocket(path: string): Promise<void> {
  const dir = dirname(path)
  if (dir === dirname(defaultSocketPath())) {
    // Reachable by the socket's group, not listable: the socket's own mode decides who connects.
    mkdirSync(dir, { recursive: true, mode: 0o711 })
  } else if (!existsSync(dir)) {
    throw new NsError({
      code: 'ENOENT',
      field: 'socket',
      path: dir,
      message: `socket: ${dir} does not exist (only the default socket's folder is made)`,
    })
  }
  // A folder someone else made (in /tmp, say) could be swapped under us: it must be our own.
  const d = lstatSync(dir)
  const uid = process.geteuid?.() ?? 0
  if (!d.isDirectory() || (d.uid !== uid && d.uid !== 0)) {
    throw new NsError({ code: 'EPERM', path: dir, message: `${dir} must be a directory owned by uid ${uid} (or root)` })
  }
  let st: Stats | undefined
  try {
    st = lstatSync(path)
  } catch {
    return
  }
  if (!st.isSocket()) throw new NsError({ code: 'EEXIST', path, message: `${path} exists and is not a socket` })
  if (await answering(path))
    throw new NsError({ code: 'EADDRINUSE', path, message: `a server already listens on ${path}` })
  unlinkSync(path)
}

function listen(server: Server, bind: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (e: NodeJS.ErrnoException) =>
      reject(new NsError({ code: e.code ?? 'EIO', message: `cannot listen: ${e.message}` }))
    server.once('error', fail)
    server.once('listening', () => {
      server.off('error', fail)
      resolve()
    })
    bind()
  })
}

/** Start the server; resolves once it listens. */
export async function serve(options: ServeOptions = {}): Promise<RunningServer> {
  const { socket: socketOpt, listen: listenOpt, ...appOptions } = options
  if (socketOpt !== undefined && listenOpt !== undefined)
    throw NsError.invalid('listen', 'give either a unix socket or a TCP address, not both')
  const tcp = listenOpt === undefined ? undefined : parseListen(listenOpt)
  if (tcp && !appOptions.token) throw NsError.invalid('token', 'listening on TCP needs a bearer token')
  if (appOptions.token !== undefined && appOptions.token.length < 16)
    throw NsError.invalid('token', 'must be at least 16 characters')

  const shutdown = new AbortController()
  const app = createApp({ ...appOptions, signal: shutdown.signal })
  // WebSockets (terminals) are upgraded by the same app, through `ws` without a server of its own.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 })
  const server = createAdaptorServer({
    fetch: app.fetch,
    websocket: { server: wss as unknown as WebSocketServerLike },
  }) as Server
  // Slow clients may not hold a connection open forever while sending a request.
  server.headersTimeout = 30_000
  server.requestTimeout = 120_000

  let socket: string | undefined
  let socketIno: number | undefined
  if (tcp) {
    await listen(server, () => server.listen(tcp.port, tcp.host))
  } else {
    socket = socketOpt ?? defaultSocketPath()
    await prepareSocket(socket)
    const path = socket
    // The socket is made with the umask's mode: no moment when others could connect. (Worker
    // threads cannot change the umask: there the chmod below is all.)
    let umask: number | undefined
    try {
      umask = process.umask(0o117)
    } catch {
      umask = undefined
    }
    try {
      await listen(server, () => server.listen(path))
    } finally {
      if (umask !== undefined) process.umask(umask)
    }
    chmodSync(socket, socketMode)
    socketIno = lstatSync(socket).ino
  }

  const address = server.address()
  const port = tcp && address && typeof address === 'object' ? address.port : undefined
  const url = tcp ? `http://${tcp.host.includes(':') ? `[${tcp.host}]` : tcp.host}:${port}` : `unix:${socket}`

  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= new Promise<void>((resolve) => {
      shutdown.abort()
      // Streams end on the abort and their connections turn idle: close those as they do, and
      // whatever is still busy after the grace period.
      const sweep = setInterval(() => server.closeIdleConnections(), 50)
      const force = setTimeout(() => server.closeAllConnections(), closeGraceMs)
      force.unref()
      server.close(async () => {
        clearInterval(sweep)
        clearTimeout(force)
        // Its warm sandboxes (`--pool`), ended by the abort: gone before the server says it is.
        await closePool(app)
        // Only the socket we made: another server may have taken the path since.
        try {
          if (socket && lstatSync(socket).ino === socketIno) unlinkSync(socket)
        } catch {
          // already gone
        }
        resolve()
      })
    }))

  return { server, url, ...(socket ? { socket } : {}), ...(tcp ? { host: tcp.host, port: port! } : {}), close }
}
