import { NsError } from '@ns/core'
import type { RequestLog } from '@ns/server'

import { defineCommand } from '../command.js'
import { bool, list, value } from '../flags.js'

/** Given by bin/ns.js to the bundle, whose own import() cannot run (a script with a code cache). */
declare const __nsImport: ((specifier: string) => Promise<unknown>) | undefined

/** The server, its routes and its schemas: loaded for this command only. */
function loadServer(): Promise<typeof import('@ns/server')> {
  return (typeof __nsImport === 'function' ? __nsImport('@ns/server') : import('@ns/server')) as Promise<
    typeof import('@ns/server')
  >
}

/** One line per request: plain text for a person at a terminal, JSON lines for anything else. */
function requestLogger(): (e: RequestLog) => void {
  if (process.stdout.isTTY)
    return (e) => process.stdout.write(`${e.time} ${e.method} ${e.path} ${e.status} ${e.ms}ms\n`)
  return (e) => process.stdout.write(`${JSON.stringify(e)}\n`)
}

export default defineCommand({
  description: 'serve the HTTP API: on a unix socket (mode 0660), or on TCP with --listen behind a bearer token',
  flags: {
    socket: value(
      '--socket <path>',
      'unix socket to listen on (default: /run/ns/ns.sock as root, $XDG_RUNTIME_DIR/ns/ns.sock otherwise)',
    ),
    listen: value(
      '--listen <host:port>',
      'listen on TCP instead; needs a bearer token: --token, $NS_TOKEN, or one is generated and printed',
    ),
    token: value('--token <token>', 'bearer token clients must send (Authorization: Bearer <token>)'),
    allowBind: list(
      '--allow-bind <dir>',
      'allow bind mounts and root filesystems under this directory, symlinks resolved',
    ),
    allowPrivileged: bool(
      '--allow-privileged',
      "allow host namespaces, maps of the host's root, / as root, specs without a user namespace, hooks",
    ),
    allowRegistry: list(
      '--allow-registry <host[:port]>',
      'let clients pull from this registry even where it resolves to a loopback, private or link-local address',
      { field: 'allowRegistry' },
    ),
    root: value('--root <dir>', 'state directory of containers (as ns --root)'),
    pool: value(
      '--pool <n>',
      'keep N sandboxes warm (set up ahead, used once) for POST /v1/run requests with the --pool-options',
    ),
    poolOptions: value(
      '--pool-options <json>',
      'the run options of the warm sandboxes, as a request body without command, env, cwd, input, timeout (default {})',
    ),
  },
  /** The HTTP API until SIGTERM or SIGINT; then the server closes and its socket goes. */
  async action(_args, o, ctx) {
    const { serve, generateToken } = await loadServer()
    // Over TCP a token is a must: the one given, $NS_TOKEN (kept out of `ps`), or a fresh one shown once.
    let token = o.token ?? (o.listen !== undefined ? process.env.NS_TOKEN : undefined)
    let generated = false
    if (o.listen !== undefined && !token) {
      token = generateToken()
      generated = true
    }
    const root = ctx.root()
    const pool = o.pool === undefined ? undefined : Number(o.pool)
    if (pool !== undefined && !(Number.isInteger(pool) && pool >= 1))
      throw NsError.invalid('--pool', `${JSON.stringify(o.pool)} must be a whole number >= 1`)
    let poolOptions: Record<string, unknown> | undefined
    if (o.poolOptions !== undefined) {
      if (pool === undefined) throw NsError.invalid('--pool-options', 'needs --pool')
      try {
        poolOptions = JSON.parse(o.poolOptions) as Record<string, unknown>
      } catch (e) {
        throw NsError.invalid('--pool-options', `is not JSON (${(e as Error).message})`)
      }
    }
    const server = await serve({
      root,
      ...(o.socket !== undefined ? { socket: o.socket } : {}),
      ...(o.listen !== undefined ? { listen: o.listen } : {}),
      ...(token !== undefined ? { token } : {}),
      allowBind: o.allowBind ?? [],
      allowPrivileged: o.allowPrivileged ?? false,
      allowRegistry: o.allowRegistry ?? [],
      ...(pool !== undefined ? { pool, ...(poolOptions ? { poolOptions } : {}) } : {}),
      onRequest: requestLogger(),
    })
    process.stderr.write(`ns serve: listening on ${server.url} (state root ${root})\n`)
    if (generated) process.stderr.write(`ns serve: bearer token: ${token}\n`)
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGTERM', stop)
        process.off('SIGINT', stop)
        resolve()
      }
      process.on('SIGTERM', stop)
      process.on('SIGINT', stop)
    })
    await server.close()
    process.stderr.write('ns serve: closed\n')
  },
})
