// `ns serve` as a client drives it: real requests over a real unix socket (and TCP), real
// containers behind them; the policy, the errors, and a server killed with SIGKILL that comes
// back to find every container as it left it.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { request, type IncomingHttpHeaders } from 'node:http'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  rmdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'

import { buildSpec, get, hostInfo, list, parseRunOptions } from '@ns/core'
import { createApp, defaultSocketPath, serve, type RunningServer } from '@ns/server'

import { cli, fixtureRootfs, hostNs, isRoot, itNs, itRoot, itWhen, repoRoot, usernsSkipReason } from './helpers.js'
import { ociBin } from './oci-bundle.js'

const tmp = mkdtempSync(join(tmpdir(), 'ns-server-'))
// Root's containers run as a range of their own: what they bind must be open to others.
chmodSync(tmp, 0o755)
const root = join(tmp, 'state')
const socket = join(tmp, 'ns.sock')
// A directory the operator allows for bind mounts, one it does not, and a symlink from the one
// to the other.
const allowed = join(tmp, 'allowed')
const outside = join(tmp, 'outside')
mkdirSync(allowed)
mkdirSync(outside)
writeFileSync(join(allowed, 'data.txt'), 'allowed data\n')
writeFileSync(join(outside, 'secret.txt'), 'secret\n')
symlinkSync(outside, join(allowed, 'escape'))

let server: RunningServer
const servers: RunningServer[] = []
const children: ChildProcess[] = []
const roots = [root]

beforeAll(async () => {
  server = await serve({ socket, root, allowBind: [allowed, fixtureRootfs] })
  servers.push(server)
})

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const s of servers) await s.close()
  for (const r of roots) for (const s of list(r)) await get(s.id, r).delete({ force: true })
  rmSync(tmp, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------------------------
// A small client over the unix socket (or TCP)

interface Reply {
  status: number
  headers: IncomingHttpHeaders
  text: string
  body: any
}

interface Target {
  socketPath?: string
  host?: string
  port?: number
}

/** Sockets whose late errors are already ignored. */
const quietSockets = new WeakSet<object>()

function call(
  method: string,
  path: string,
  body?: unknown,
  opts: { to?: Target; headers?: Record<string, string>; raw?: string } = {},
): Promise<Reply> {
  const to = opts.to ?? { socketPath: socket }
  const payload = opts.raw ?? (body === undefined ? undefined : JSON.stringify(body))
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...to,
        method,
        path,
        headers: { ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
        timeout: 20_000,
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (text += d))
        res.on('end', () => {
          let parsed: unknown
          try {
            parsed = JSON.parse(text)
          } catch {
            parsed = undefined
          }
          resolve({ status: res.statusCode!, headers: res.headers, text, body: parsed })
        })
      },
    )
    req.on('error', reject)
    // A server that answers early (413) closes while the body is still being written: the
    // socket's EPIPE then comes after the answer, and is expected. Once per socket: the agent
    // reuses them.
    req.on('socket', (sock) => {
      if (quietSockets.has(sock)) return
      quietSockets.add(sock)
      sock.on('error', () => {})
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer`)))
    req.end(payload)
  })
}

interface SseEvent {
  event: string
  data: string
}

/** An open Server-Sent Events stream: the events so far, and a way to wait for more. */
function sse(path: string, to: Target = { socketPath: socket }) {
  const events: SseEvent[] = []
  let buffer = ''
  let ended = false
  let notify = () => {}
  let req: ReturnType<typeof request> | undefined
  const opened = new Promise<{ status: number; type: string | undefined }>((resolve, reject) => {
    req = request({ ...to, method: 'GET', path, headers: { accept: 'text/event-stream' } }, (res) => {
      resolve({ status: res.statusCode!, type: res.headers['content-type'] })
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        buffer += d
        for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, i)
          buffer = buffer.slice(i + 2)
          let event = 'message'
          const data: string[] = []
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim()
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
          }
          if (data.length) events.push({ event, data: data.join('\n') })
        }
        notify()
      })
      res.on('end', () => {
        ended = true
        notify()
      })
      res.on('error', () => {})
    })
    req.on('error', reject)
    req.end()
  })
  return {
    events,
    opened,
    get ended() {
      return ended
    },
    /** Wait until `done(events)` holds (or the stream ends, or `ms` pass). */
    async until(done: (e: SseEvent[]) => boolean, ms = 10_000): Promise<SseEvent[]> {
      const deadline = Date.now() + ms
      while (!done(events) && !ended && Date.now() < deadline) {
        await new Promise<void>((r) => {
          notify = r
          setTimeout(r, 50)
        })
      }
      return events
    },
    close() {
      req?.destroy()
    },
  }
}

const sh = (script: string) => ['sh', '-c', script]
/** Id maps that leave the host's root out (root's default maps it 1:1), as the policy asks of a spec. */
const unprivilegedMaps = [{ containerID: 0, hostID: isRoot ? 100_000 : process.geteuid!(), size: 1 }]
/** A full OCI runtime spec, as the core builds it from friendly options. */
const specOf = (o: Parameters<typeof parseRunOptions>[0] & object) =>
  buildSpec(parseRunOptions({ uidMappings: unprivilegedMaps, ...o })).spec
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------------------------------------

describe('ns serve: the socket and the API description', () => {
  it('listens on a unix socket of mode 0660; health and version answer', async () => {
    const st = statSync(socket)
    expect(st.isSocket()).toBe(true)
    expect(st.mode & 0o777).toBe(0o660)
    expect((await call('GET', '/v1/health')).body).toEqual({ ok: true })
    expect((await call('GET', '/v1/version')).body).toEqual({ version: hostInfo().version, ociVersion: '1.2.0' })
  })

  it('GET /openapi.json is an OpenAPI 3.1 document made from the schemas that validate; /docs renders it with nothing fetched from elsewhere', async () => {
    const doc = (await call('GET', '/openapi.json')).body
    expect(doc.openapi).toBe('3.1.0')
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/v1/containers',
      '/v1/containers/{id}',
      '/v1/containers/{id}/attach',
      '/v1/containers/{id}/exec',
      '/v1/containers/{id}/exec/attach',
      '/v1/containers/{id}/kill',
      '/v1/containers/{id}/logs',
      '/v1/containers/{id}/pause',
      '/v1/containers/{id}/resume',
      '/v1/containers/{id}/start',
      '/v1/containers/{id}/stats',
      '/v1/containers/{id}/stop',
      '/v1/containers/{id}/update',
      '/v1/containers/{id}/wait',
      '/v1/events',
      '/v1/health',
      '/v1/images',
      '/v1/images/load',
      '/v1/images/prune',
      '/v1/images/pull',
      '/v1/images/{ref}',
      '/v1/images/{ref}/save',
      '/v1/images/{ref}/tag',
      '/v1/pool',
      '/v1/run',
      '/v1/version',
    ])
    expect(Object.keys(doc.paths['/v1/containers/{id}'])).toEqual(['get', 'delete'])
    // The run body is the core's option schema: the same constraint that validates shows here.
    const run = doc.components.schemas.RunBody
    expect(run.properties.command).toEqual({ type: 'array', items: { type: 'string' }, minItems: 1 })
    expect(run.properties.hostname.pattern).toBe('^[A-Za-z0-9][A-Za-z0-9.-]*$')
    expect(run.additionalProperties).toBe(false)
    expect(doc.components.schemas.OciSpec.required).toEqual(['ociVersion', 'process'])
    const wait = doc.paths['/v1/containers/{id}/wait'].post
    expect(wait.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`)).toEqual([
      'path:id',
      'query:timeout',
    ])
    expect(Object.keys(wait.responses)).toEqual(['200', '400', '401', '404', '408', '500', '503'])

    const page = await call('GET', '/docs')
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
    expect(page.text).toContain('<code>/v1/containers/{id}/logs</code>')
    expect(page.text).toContain('id="schema-OciSpec"')
    expect(page.text).not.toMatch(/<script|<link|src="|href="https?:/)
  })
})

describe('ns serve: the server itself', () => {
  it('default socket: /run/ns/ns.sock for root, $XDG_RUNTIME_DIR/ns/ns.sock for anyone else', () => {
    if (isRoot) expect(defaultSocketPath()).toBe('/run/ns/ns.sock')
    else
      expect(defaultSocketPath()).toBe(
        process.env.XDG_RUNTIME_DIR
          ? join(process.env.XDG_RUNTIME_DIR, 'ns', 'ns.sock')
          : `/tmp/ns-${process.geteuid!()}/ns.sock`,
      )
  })

  it('--socket in a folder that does not exist is an error naming it, and no folder is made', async () => {
    const missing = join(tmp, 'no', 'such', 'dir')
    await expect(serve({ socket: join(missing, 'x.sock'), root })).rejects.toThrow(
      `socket: ${missing} does not exist (only the default socket's folder is made)`,
    )
    expect(existsSync(join(tmp, 'no'))).toBe(false)
  })

  it('a socket another server answers on is not taken over; a stale one is (see the restart test)', async () => {
    await expect(serve({ socket, root })).rejects.toThrow(`a server already listens on ${socket}`)
    expect((await call('GET', '/v1/health')).status).toBe(200)
  })

  it('close: open event streams end at once and the socket file goes', async () => {
    const s = await serve({ socket: join(tmp, 'closing.sock'), root })
    const stream = sse('/v1/events', { socketPath: s.socket! })
    expect((await stream.opened).status).toBe(200)
    const t0 = Date.now()
    await s.close()
    await stream.until(() => false, 5000)
    expect(stream.ended).toBe(true)
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(existsSync(s.socket!)).toBe(false)
  })

  it('ns serve --listen without --token makes a token, prints it once and requires it', async () => {
    const child = spawn(process.execPath, [cli, 'serve', '--listen', '127.0.0.1:0', '--root', root], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NS_TOKEN: '' },
    })
    children.push(child)
    let err = ''
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
    for (let i = 0; i < 200 && !err.includes('bearer token:'); i++) await sleep(25)
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err)?.[1])
    const token = /bearer token: (\S+)/.exec(err)?.[1] ?? ''
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/) // 32 random bytes
    const to = { host: '127.0.0.1', port }
    expect((await call('GET', '/v1/version', undefined, { to })).status).toBe(401)
    expect(
      (await call('GET', '/v1/version', undefined, { to, headers: { authorization: `Bearer ${token}` } })).status,
    ).toBe(200)
    child.kill('SIGINT')
    expect(await new Promise((r) => child.once('exit', r))).toBe(0)
  })
})

describe('ns serve: containers over HTTP', () => {
  itNs('POST /v1/run: a real isolated process, its hostname, network namespace, exit code and output', async () => {
    const r = await call('POST', '/v1/run', {
      command: sh('hostname; readlink /proc/self/ns/net; echo $$; cat; echo oops >&2; exit 3'),
      hostname: 'api-box',
      input: 'from stdin\n',
    })
    expect(r.status, r.text).toBe(200)
    const [host, net, pid, input] = r.body.stdout.trim().split('\n')
    expect(host).toBe('api-box')
    expect(net).not.toBe(hostNs('net'))
    expect(Number(pid)).toBeLessThan(10) // its own PID namespace
    expect(input).toBe('from stdin')
    expect(r.body).toMatchObject({ exitCode: 3, signal: null, timedOut: false, stderr: 'oops\n', truncated: false })
    expect(r.body.durationMs).toBeGreaterThan(0)

    const slow = await call('POST', '/v1/run', { command: ['sleep', '10'], timeout: 200 })
    expect(slow.body).toMatchObject({ exitCode: 137, signal: 'SIGKILL', timedOut: true })
    expect(slow.body.durationMs).toBeLessThan(5000)
    expect(list(root)).toEqual([]) // run-to-completion leaves nothing in the state directory
  })

  itNs('lifecycle: create, list with filters, start, inspect, wait, logs, delete', async () => {
    const made = await call('POST', '/v1/containers', {
      command: sh('echo out; echo err >&2; sleep 0.3; exit 4'),
      name: 'life',
      labels: { app: 'api' },
    })
    expect(made.status, made.text).toBe(201)
    expect(made.body).toMatchObject({ id: 'life', state: { status: 'created', labels: { app: 'api' } } })

    expect((await call('GET', '/v1/containers?label=app=api')).body.map((s: { id: string }) => s.id)).toEqual(['life'])
    expect((await call('GET', '/v1/containers?label=app=other')).body).toEqual([])
    expect((await call('GET', '/v1/containers?status=running')).body).toEqual([])
    expect((await call('GET', '/v1/containers?name=lif&status=created')).body).toHaveLength(1)

    const started = await call('POST', '/v1/containers/life/start')
    expect(started.status, started.text).toBe(200)
    expect(started.body.state.status).toBe('running')

    const inspect = (await call('GET', '/v1/containers/life')).body
    expect(inspect.namespaces.net.shared).toBe(false)
    expect(inspect.namespaces.net.host).toBe(hostNs('net'))
    expect(inspect.pids.length).toBeGreaterThan(0)
    expect(inspect.config.process.args).toEqual(sh('echo out; echo err >&2; sleep 0.3; exit 4'))

    const waited = await call('POST', '/v1/containers/life/wait?timeout=10')
    expect(waited.body).toMatchObject({ exitCode: 4, signal: null })
    expect((await call('GET', '/v1/containers/life')).body.exit).toMatchObject({ exitCode: 4 })

    const logs = (await call('GET', '/v1/containers/life/logs')).body
    expect(logs.map((e: { stream: string; log: string }) => [e.stream, e.log])).toEqual([
      ['stdout', 'out\n'],
      ['stderr', 'err\n'],
    ])
    expect(
      (await call('GET', '/v1/containers/life/logs?stream=stderr')).body.map((e: { log: string }) => e.log),
    ).toEqual(['err\n'])
    expect((await call('GET', '/v1/containers/life/logs?tail=1')).body.map((e: { log: string }) => e.log)).toEqual([
      'err\n',
    ])
    expect((await call('GET', '/v1/containers/life/logs?since=2999-01-01T00:00:00Z')).body).toEqual([])

    expect((await call('DELETE', '/v1/containers/life')).status).toBe(204)
    expect((await call('GET', '/v1/containers/life')).status).toBe(404)
  })

  itNs('bestEffortLimits: a limit that cannot be applied is a warning in the answer, not an error', async () => {
    const r = await call('POST', '/v1/run', { command: ['echo', 'ran'], cpusetCpus: '4095', bestEffortLimits: true })
    expect(r.status, r.text).toBe(200)
    expect(r.body).toMatchObject({
      exitCode: 0,
      stdout: 'ran\n',
      warnings: [expect.stringMatching(/^limits not applied/)],
    })
    const strict = await call('POST', '/v1/run', { command: ['echo', 'ran'], cpusetCpus: '4095' })
    expect(strict.status).toBe(isRoot ? 400 : 500)
    const made = await call('POST', '/v1/containers', {
      command: ['true'],
      cpusetCpus: '4095',
      bestEffortLimits: true,
      name: 'besteffort',
    })
    expect(made.status, made.text).toBe(201)
    expect(made.body.warnings).toEqual([expect.stringMatching(/^limits not applied/)])
    expect((await call('DELETE', '/v1/containers/besteffort?force=true')).status).toBe(204)
  })

  itNs(
    'exec runs a command inside a running container; stats reads its processes from /proc; stop ends it',
    async () => {
      const made = await call('POST', '/v1/containers', {
        command: ['sleep', '30'],
        name: 'execd',
        hostname: 'execbox',
        env: { FROM: 'container' },
        start: true,
      })
      expect(made.status, made.text).toBe(201)
      expect(made.body.state.status).toBe('running')

      const r = await call('POST', '/v1/containers/execd/exec', {
        command: sh('hostname; echo "$FROM $EXTRA"; pwd; exit 6'),
        env: { EXTRA: 'exec' },
        cwd: '/tmp',
      })
      expect(r.status, r.text).toBe(200)
      expect(r.body).toMatchObject({ exitCode: 6, stdout: 'execbox\ncontainer exec\n/tmp\n', stderr: '' })

      const stats = await call('GET', '/v1/containers/execd/stats')
      expect(stats.status, stats.text).toBe(200)
      expect(stats.body).toMatchObject({ id: 'execd', status: 'running', source: 'proc' })
      expect(stats.body.pids).toBeGreaterThanOrEqual(2) // the init and sleep
      expect(stats.body.memoryBytes).toBeGreaterThan(100 * 1024)
      expect(stats.body.cpuSeconds).toBeGreaterThanOrEqual(0)

      const stopped = await call('POST', '/v1/containers/execd/stop?timeout=5')
      expect(stopped.status, stopped.text).toBe(200)
      expect(stopped.body.state.status).toBe('stopped')
      expect(stopped.body.exit.exitCode).toBeGreaterThan(0)

      const late = await call('POST', '/v1/containers/execd/exec', { command: ['true'] })
      expect(late.status).toBe(409)
      expect(late.body.error.message).toBe('cannot exec in container "execd": it is stopped')
      expect((await call('GET', '/v1/containers/execd/stats')).body).toMatchObject({ pids: 0, memoryBytes: 0 })
      expect((await call('DELETE', '/v1/containers/execd')).status).toBe(204)
    },
  )

  itRoot('stats of a container with limits come from its cgroup', async () => {
    const created = await call('POST', '/v1/containers', {
      name: 'limited',
      command: ['sleep', '30'],
      memory: '64m',
      pidsLimit: 50,
      start: true,
    })
    expect(created.status, created.text).toBe(201)
    const st = await call('GET', '/v1/containers/limited/stats')
    expect(st.status, st.text).toBe(200)
    expect(st.body).toMatchObject({
      source: 'cgroup',
      memoryLimitBytes: 64 * 1024 * 1024,
      pidsLimit: 50,
      oomKilled: false,
    })
    expect(st.body.pids).toBeGreaterThanOrEqual(1)
    expect((await call('DELETE', '/v1/containers/limited?force=true')).status).toBe(204)
  })

  itNs('logs?follow=true: Server-Sent Events, a line as it is written, until the container stops', async () => {
    const made = await call('POST', '/v1/containers', {
      command: sh('echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three; exit 2'),
      name: 'talker',
      start: true,
    })
    expect(made.status, made.text).toBe(201)
    const t0 = Date.now()
    const stream = sse('/v1/containers/talker/logs?follow=true')
    expect(await stream.opened).toMatchObject({ status: 200, type: expect.stringMatching(/^text\/event-stream/) })
    await stream.until((e) => e.length > 0)
    expect(Date.now() - t0).toBeLessThan(500) // the first line came before the container ended
    const events = await stream.until(() => false)
    expect(stream.ended).toBe(true)
    expect(events.map((e) => [e.event, e.data])).toEqual([
      ['stdout', 'one'],
      ['stderr', 'two'],
      ['stdout', 'three'],
      ['exit', expect.stringContaining('"exitCode":2')],
    ])
    const onlyErr = sse('/v1/containers/talker/logs?follow=true&stream=stderr')
    expect((await onlyErr.until(() => false)).map((e) => e.event)).toEqual(['stderr', 'exit'])
    await call('DELETE', '/v1/containers/talker')
  })

  itNs('GET /v1/events: created, started, an exit on its own (with its code), deleted', async () => {
    const stream = sse('/v1/events?id=evented')
    expect((await stream.opened).status).toBe(200)
    const made = await call('POST', '/v1/containers', {
      command: sh('sleep 0.3; exit 5'),
      name: 'evented',
      start: true,
      labels: { k: 'v' },
    })
    expect(made.status, made.text).toBe(201)
    // Nobody waits on it through the server: the exit is found by polling the state directory.
    await stream.until((e) => e.some((x) => x.event === 'exited'))
    expect((await call('DELETE', '/v1/containers/evented')).status).toBe(204)
    const events = (await stream.until((e) => e.some((x) => x.event === 'deleted'))).map((e) => JSON.parse(e.data))
    stream.close()
    expect(events.map((e) => e.type)).toEqual(['created', 'started', 'exited', 'deleted'])
    expect(events[0]).toMatchObject({ id: 'evented', labels: { k: 'v' } })
    expect(events[2]).toMatchObject({ exitCode: 5, signal: null })
  })
})

// ---------------------------------------------------------------------------------------------
// Terminals over WebSockets

interface Session {
  ws: WebSocket
  opened: Promise<void>
  /** Output so far (binary messages), as text. */
  output(): string
  /** Text messages so far, parsed. */
  messages: any[]
  /** Resolves once `test` holds of the output (or rejects after 10 s). */
  until(test: (out: string) => boolean): Promise<string>
  closed: Promise<{ code: number }>
  rejected: Promise<number>
}

function terminal(path: string): Session {
  const ws = new WebSocket(`ws+unix://${socket}:${path}`)
  const chunks: Buffer[] = []
  const messages: any[] = []
  const waiters: (() => void)[] = []
  ws.on('message', (data: Buffer, binary: boolean) => {
    if (binary) chunks.push(data)
    else messages.push(JSON.parse(data.toString()))
    for (const w of waiters) w()
  })
  const output = () => Buffer.concat(chunks).toString()
  const opened = new Promise<void>((res, rej) => (ws.once('open', () => res()), ws.once('error', rej)))
  opened.catch(() => {})
  return {
    ws,
    opened,
    output,
    messages,
    until: (test) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out; output so far: ${JSON.stringify(output())}`)),
          10_000,
        )
        const check = () => {
          if (test(output())) {
            clearTimeout(timer)
            resolve(output())
          }
        }
        waiters.push(check)
        check()
      }),
    closed: new Promise((res) => ws.once('close', (code: number) => res({ code }))),
    rejected: new Promise((res) =>
      ws.once('unexpected-response', (_req, r) => (res(r.statusCode ?? 0), ws.terminate())),
    ),
  }
}

describe('ns serve: terminals over WebSockets', () => {
  itNs(
    'attach: keys in, output out, resize, several clients at once; the exit comes last; detaching leaves it running',
    async () => {
      const made = await call('POST', '/v1/containers', { command: ['sh'], tty: true, name: 'tty1', start: true })
      expect(made.status, made.text).toBe(201)
      const a = terminal('/v1/containers/tty1/attach')
      const b = terminal('/v1/containers/tty1/attach')
      await Promise.all([a.opened, b.opened])
      a.ws.send(Buffer.from('echo "sum $((40+2))"\n'))
      await a.until((o) => o.includes('sum 42'))
      await b.until((o) => o.includes('sum 42')) // the other client sees the same terminal
      a.ws.send(JSON.stringify({ type: 'resize', cols: 123, rows: 45 }))
      a.ws.send(JSON.stringify({ type: 'input', data: 'stty size; tty\n' }))
      await a.until((o) => /45 123\r\n\/dev\/(pts\/\d+|console)/.test(o))
      // A bad message is answered with an error naming the field, and the session goes on.
      a.ws.send(JSON.stringify({ type: 'resize', cols: 0, rows: 10 }))
      await a.until(() => a.messages.length > 0)
      expect(a.messages[0]).toMatchObject({ type: 'error', error: { code: 'EINVAL', field: 'cols' } })
      // b detaches: the container goes on.
      b.ws.close()
      expect((await b.closed).code).toBe(1005)
      expect((await call('GET', '/v1/containers/tty1')).body.status).toBe('running')
      a.ws.send(Buffer.from('exit 6\n'))
      expect((await a.closed).code).toBe(1000)
      expect(a.messages.at(-1)).toEqual({ type: 'exit', exitCode: 6, signal: null, oomKilled: false })
      // Everything the terminal showed is in the log too.
      const logs = await call('GET', '/v1/containers/tty1/logs')
      expect(logs.text).toContain('sum 42')
      expect((await call('DELETE', '/v1/containers/tty1')).status).toBe(204)
    },
  )

  itNs(
    'attach is refused with the status that fits: 404 no container, 409 no terminal or stopped, 400 without an upgrade',
    async () => {
      expect(await terminal('/v1/containers/nosuch/attach').rejected).toBe(404)
      const made = await call('POST', '/v1/containers', { command: ['sleep', '30'], name: 'notty', start: true })
      expect(made.status, made.text).toBe(201)
      expect(await terminal('/v1/containers/notty/attach').rejected).toBe(409)
      const plain = await call('GET', '/v1/containers/notty/attach')
      expect(plain.status).toBe(400)
      expect(plain.body.error.message).toMatch(/speaks WebSocket only/)
      expect((await call('DELETE', '/v1/containers/notty?force=true')).status).toBe(204)
    },
  )

  itNs(
    'exec over a WebSocket: a shell with a terminal of the asked size, its exit code; without a terminal the streams are told apart',
    async () => {
      const made = await call('POST', '/v1/containers', { command: ['sleep', '60'], name: 'host1', start: true })
      expect(made.status, made.text).toBe(201)
      const t = terminal('/v1/containers/host1/exec/attach')
      await t.opened
      t.ws.send(JSON.stringify({ command: ['sh'], cols: 90, rows: 25 }))
      t.ws.send(Buffer.from('stty size; echo "pid1 is $(cat /proc/1/comm)"\n'))
      await t.until((o) => o.includes('25 90') && o.includes('pid1 is'))
      t.ws.send(JSON.stringify({ type: 'resize', cols: 100, rows: 30 }))
      t.ws.send(Buffer.from('stty size; exit 3\n'))
      expect((await t.closed).code).toBe(1000)
      expect(t.output()).toContain('30 100')
      expect(t.messages.at(-1)).toMatchObject({ type: 'exit', exitCode: 3 })

      const p = terminal('/v1/containers/host1/exec/attach')
      await p.opened
      p.ws.send(
        JSON.stringify({ command: ['sh', '-c', 'read line; echo "out:$line"; echo err >&2; exit 4'], tty: false }),
      )
      p.ws.send(JSON.stringify({ type: 'input', data: 'hello\n' }))
      expect((await p.closed).code).toBe(1000)
      expect(p.messages.at(-1)).toMatchObject({ type: 'exit', exitCode: 4 })
      const frames: Buffer[] = []
      // Rebuild the framed output: each message starts with the stream's byte.
      const text = p.output()
      expect(text).toContain('\u0001out:hello\n')
      expect(text).toContain('\u0002err\n')
      expect(frames).toEqual([])

      // close-stdin on a terminal is its end-of-file key: cat sees the end of its input.
      const eof = terminal('/v1/containers/host1/exec/attach')
      await eof.opened
      eof.ws.send(JSON.stringify({ command: ['sh', '-c', 'cat >/dev/null; echo eof-seen'] }))
      eof.ws.send(JSON.stringify({ type: 'close-stdin' }))
      expect((await eof.closed).code).toBe(1000)
      expect(eof.output()).toContain('eof-seen')
      expect(eof.messages.at(-1)).toMatchObject({ type: 'exit', exitCode: 0 })

      // The first message must say what to run.
      const bad = terminal('/v1/containers/host1/exec/attach')
      await bad.opened
      bad.ws.send(JSON.stringify({ command: [] }))
      await bad.until(() => bad.messages.length > 0)
      expect(bad.messages[0]).toMatchObject({ type: 'error', error: { code: 'EINVAL', field: 'command' } })
      bad.ws.close()
      expect((await call('DELETE', '/v1/containers/host1?force=true')).status).toBe(204)
    },
  )
})

describe('ns serve: out of memory', () => {
  itRoot('an OOM kill is an oom event, then exited with oomKilled; wait says so too', async () => {
    const stream = sse('/v1/events?id=hungry')
    expect((await stream.opened).status).toBe(200)
    const made = await call('POST', '/v1/containers', {
      command: sh('head -c 200m /dev/zero | tail > /dev/null; echo survived'),
      name: 'hungry',
      memory: '32m',
      memorySwap: '32m',
      start: true,
    })
    expect(made.status, made.text).toBe(201)
    const waited = await call('POST', '/v1/containers/hungry/wait')
    expect(waited.status, waited.text).toBe(200)
    expect(waited.body).toMatchObject({ oomKilled: true })
    const events = (await stream.until((e) => e.some((x) => x.event === 'exited'))).map((e) => JSON.parse(e.data))
    stream.close()
    expect(events.map((e) => e.type)).toEqual(['created', 'started', 'oom', 'exited'])
    expect(events[3]).toMatchObject({ oomKilled: true })
    expect((await call('DELETE', '/v1/containers/hungry')).status).toBe(204)
  })
})

describe('ns serve: errors are JSON with the status that fits', () => {
  it('400 names the field: body, spec, query and path', async () => {
    const empty = await call('POST', '/v1/run', { command: [] })
    expect(empty.status).toBe(400)
    expect(empty.body).toEqual({ error: { code: 'EINVAL', message: 'command: must name a program', field: 'command' } })

    const unknown = await call('POST', '/v1/containers', { command: ['true'], colour: 'blue' })
    expect(unknown.body.error).toMatchObject({ code: 'EINVAL', field: 'colour' })

    const { spec } = buildSpec(
      parseRunOptions({ command: ['true'], uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] }),
    )
    spec.linux!.uidMappings![0]!.size = 0
    const bad = await call('POST', '/v1/containers', { spec })
    expect(bad.status).toBe(400)
    expect(bad.body.error).toMatchObject({
      field: 'spec.linux.uidMappings[0].size',
      message: 'spec.linux.uidMappings[0].size: must be > 0',
    })

    expect((await call('POST', '/v1/containers/x/kill?signal=no%20such')).body.error.field).toBe('signal')
    expect((await call('POST', '/v1/containers/x/wait?timeout=soon')).body.error).toMatchObject({
      field: 'timeout',
      message: 'timeout: must be a whole number of seconds',
    })
    expect((await call('GET', '/v1/containers/.hidden')).body.error.field).toBe('id')
    expect((await call('POST', '/v1/run', undefined, { raw: '{"command": [' })).body.error).toMatchObject({
      code: 'EINVAL',
      field: 'body',
    })
    const tooLong = await call('POST', '/v1/run', { command: ['true'], timeout: 3_600_000 })
    expect(tooLong.body.error).toMatchObject({
      field: 'timeout',
      message: 'timeout: must be at most 600000 ms on this server',
    })
  })

  it('404 for a container that does not exist (or a route), 413 for a body over 1 MiB; never a stack trace', async () => {
    const missing = await call('POST', '/v1/containers/nope/start')
    expect(missing.status).toBe(404)
    expect(missing.body).toEqual({ error: { code: 'ENOENT', message: 'container "nope" does not exist' } })
    expect((await call('GET', '/v1/nowhere')).status).toBe(404)
    const big = await call('POST', '/v1/run', { command: ['true'], env: { BIG: 'x'.repeat(1024 * 1024) } })
    expect(big.status).toBe(413)
    expect(big.body.error.code).toBe('E2BIG')
    expect(big.text).not.toMatch(/\bat .*\.js:\d+/)
  })

  itNs(
    '409 for the wrong state (starting a running container, deleting it, a taken id, a signal to a stopped one); 408 for a wait past its bound',
    async () => {
      expect(
        (await call('POST', '/v1/containers', { command: ['sleep', '30'], name: 'busy', start: true })).status,
      ).toBe(201)
      const again = await call('POST', '/v1/containers/busy/start')
      expect(again.status).toBe(409)
      expect(again.body.error).toMatchObject({
        code: 'ESTATE',
        message: 'cannot start container "busy": it is running',
      })
      expect((await call('DELETE', '/v1/containers/busy')).status).toBe(409)
      const taken = await call('POST', '/v1/containers', { command: ['true'], name: 'busy' })
      expect(taken.status).toBe(409)
      expect(taken.body.error).toMatchObject({ code: 'EEXIST', message: 'container "busy" already exists' })
      // A wait that cannot end in time is bounded on the server: 408.
      const slow = await call('POST', '/v1/containers/busy/wait?timeout=0')
      expect(slow.status).toBe(408)
      expect(slow.body.error).toMatchObject({
        code: 'ETIMEDOUT',
        message: 'container "busy" still runs after 0 s (raise ?timeout=)',
      })
      expect((await call('POST', '/v1/containers/busy/kill?signal=KILL&all=true')).status).toBe(200)
      expect((await call('POST', '/v1/containers/busy/wait')).body).toMatchObject({ exitCode: 137, signal: 'SIGKILL' })
      const dead = await call('POST', '/v1/containers/busy/kill')
      expect(dead.status).toBe(409)
      expect(dead.body.error.message).toBe('container "busy" is not running')
      expect((await call('DELETE', '/v1/containers/busy')).status).toBe(204)
    },
  )

  itNs('429 past the bound on containers starting at once (no queue); the first still runs', async () => {
    const app = createApp({ root, limits: { maxConcurrent: 1 } })
    const post = (command: string[]) =>
      app.request('/v1/run', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ command }),
      })
    const first = post(['sleep', '0.4'])
    await sleep(100)
    const second = await post(['true'])
    expect(second.status).toBe(429)
    expect(second.headers.get('retry-after')).toBe('1')
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('EBUSY')
    expect((await first).status).toBe(200)
    expect((await post(['true'])).status).toBe(200)
  })
})

describe('ns serve: security', () => {
  it('TCP is refused without a bearer token', async () => {
    await expect(serve({ listen: '127.0.0.1:0', root })).rejects.toThrow('token: listening on TCP needs a bearer token')
    await expect(serve({ listen: '127.0.0.1:0', root, token: 'short' })).rejects.toThrow(
      'token: must be at least 16 characters',
    )
  })

  it('TCP with a token: 401 without it or with a wrong one, 200 with it', async () => {
    const token = 'a-token-of-enough-length-0123456789'
    const tcp = await serve({ listen: '127.0.0.1:0', root, token })
    servers.push(tcp)
    expect(tcp.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const to = { host: '127.0.0.1', port: tcp.port! }
    const none = await call('GET', '/v1/containers', undefined, { to })
    expect(none.status).toBe(401)
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/)
    expect(none.body.error.code).toBe('EAUTH')
    const wrong = await call('GET', '/v1/containers', undefined, { to, headers: { authorization: `Bearer ${token}x` } })
    expect(wrong.status).toBe(401)
    expect(wrong.body.error.message).toBe('invalid bearer token')
    const right = await call('GET', '/v1/containers', undefined, { to, headers: { authorization: `Bearer ${token}` } })
    expect(right.status).toBe(200)
    expect(Array.isArray(right.body)).toBe(true)
    // Liveness and the description stay open; nothing else does.
    expect((await call('GET', '/v1/health', undefined, { to })).status).toBe(200)
    expect((await call('POST', '/v1/run', { command: ['true'] }, { to })).status).toBe(401)
    await tcp.close()
  })

  itNs(
    'bind mounts: inside --allow-bind accepted; outside refused (403), also through a symlink, also in a full spec',
    async () => {
      const ok = await call('POST', '/v1/run', { command: ['cat', '/data/data.txt'], volumes: [`${allowed}:/data:ro`] })
      expect(ok.status, ok.text).toBe(200)
      expect(ok.body.stdout).toBe('allowed data\n')

      const out = await call('POST', '/v1/run', { command: ['cat', '/data/secret.txt'], volumes: [`${outside}:/data`] })
      expect(out.status).toBe(403)
      expect(out.body.error).toMatchObject({ code: 'EPERM', field: 'volumes[0]' })

      const link = await call('POST', '/v1/run', {
        command: ['cat', '/data/secret.txt'],
        mounts: [{ type: 'bind', source: join(allowed, 'escape'), target: '/data' }],
      })
      expect(link.status).toBe(403)
      expect(link.body.error.field).toBe('mounts[0].source')
      expect(link.body.error.message).toContain(`(${outside})`)

      const specOut = await call('POST', '/v1/containers', { spec: specOf({ command: ['true'] }) })
      expect(specOut.status).toBe(403) // the sandbox binds /usr, /etc... of the host: not allowed here
      expect(specOut.body.error.field).toBe('spec.mounts[0].source')
      expect(list(root).map((s) => s.id)).toEqual([])
    },
  )

  itNs('a full OCI runtime spec that keeps to the policy is created as is, and runs', async () => {
    const spec = specOf({ command: sh('echo from-spec; id -u; hostname'), rootfs: fixtureRootfs, hostname: 'specbox' })
    if (isRoot) {
      // Host uid 100000 is nobody's lease (here: a user's subordinate range): root's server maps
      // only ranges it leases itself, so a spec gives no maps and gets one.
      const mapped = await call('POST', '/v1/containers', { spec, name: 'fromspec' })
      expect(mapped.status, mapped.text).toBe(403)
      expect(mapped.body.error.field).toBe('spec.linux.uidMappings[0]')
      delete spec.linux!.uidMappings
      delete spec.linux!.gidMappings
    }
    const made = await call('POST', '/v1/containers', { spec, name: 'fromspec', start: true })
    expect(made.status, made.text).toBe(201)
    expect((await call('POST', '/v1/containers/fromspec/wait')).body).toMatchObject({ exitCode: 0, signal: null })
    expect((await call('GET', '/v1/containers/fromspec/logs')).body.map((e: { log: string }) => e.log)).toEqual([
      'from-spec\n',
      '0\n',
      'specbox\n',
    ])
    expect((await call('DELETE', '/v1/containers/fromspec')).status).toBe(204)
  })

  it('privileged options are refused (403) without --allow-privileged', async () => {
    const refused = async (body: unknown, field: string) => {
      const r = await call('POST', '/v1/containers', body)
      expect(r.status, r.text).toBe(403)
      expect(r.body.error).toMatchObject({ code: 'EPERM', field })
    }
    await refused({ command: ['true'], namespaces: { network: false } }, 'namespaces.network')
    await refused({ command: ['true'], namespaces: { pid: '/proc/1/ns/pid' } }, 'namespaces.pid')
    await refused({ command: ['true'], uidMappings: [{ containerID: 0, hostID: 0, size: 1 }] }, 'uidMappings[0]')
    await refused({ command: ['true'], rootfs: '/' }, 'rootfs')
    const spec = specOf({ command: ['true'], rootfs: allowed })
    await refused(
      {
        spec: buildSpec(
          parseRunOptions({
            command: ['true'],
            rootfs: allowed,
            uidMappings: [{ containerID: 0, hostID: 0, size: 1 }],
          }),
        ).spec,
      },
      'spec.linux.uidMappings[0]',
    )
    const noUser = {
      ...spec,
      linux: { ...spec.linux, namespaces: spec.linux!.namespaces!.filter((n) => n.type !== 'user') },
    }
    await refused({ spec: noUser }, 'spec.linux.namespaces')
    await refused({ spec: { ...spec, hooks: { createRuntime: [{ path: '/bin/sh' }] } } }, 'spec.hooks')
    // Root inside as root outside, or as the owner of host files through an idmapped bind.
    await refused({ command: ['true'], userns: 'host' }, 'userns')
    await refused({ command: ['true'], volumes: [`${allowed}:/data:ro,idmap`] }, 'volumes[0]')
    await refused(
      { command: ['true'], mounts: [{ type: 'bind', source: allowed, target: '/data', idmap: true }] },
      'mounts[0].idmap',
    )
    const idmapped = {
      ...spec,
      mounts: [
        ...(spec.mounts ?? []),
        { destination: '/data', type: 'bind', source: allowed, options: ['rbind', 'idmap'] },
      ],
    }
    await refused({ spec: idmapped }, `spec.mounts[${spec.mounts!.length}].options`)
    expect(list(root)).toEqual([])
  })

  itNs("with --allow-privileged the same request runs: here, the host's UTS namespace", async () => {
    const app = createApp({ root, allowPrivileged: true })
    const r = await app.request('/v1/run', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: ['hostname'], namespaces: { uts: false } }),
    })
    expect(r.status).toBe(200)
    expect(((await r.json()) as { stdout: string }).stdout).toBe(`${hostname()}\n`)
  })
})

// ---------------------------------------------------------------------------------------------
// The holes of a server that let privileged requests through, closed: each as a client would
// try it over the socket, with what the container (or the host) then sees.

/** A spec that keeps to the policy, as the core builds it (without the idmapped root it gives root's own). */
const policySpec = (o: Parameters<typeof parseRunOptions>[0] & object) => {
  const { spec } = buildSpec(parseRunOptions(o))
  delete spec.annotations!['io.ns.root.idmap']
  return spec
}
/** The field of a line of /proc/self/status, as a container printed it. */
const statusField = (out: string, name: string) => new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(out)?.[1]

/** Where a cgroup with a pids.max of its own can be made on this host (v1 or v2), if anywhere. */
function pidsHierarchy(): string | undefined {
  if (existsSync('/sys/fs/cgroup/pids/cgroup.procs')) return '/sys/fs/cgroup/pids'
  try {
    if (readFileSync('/sys/fs/cgroup/cgroup.subtree_control', 'utf8').split(/\s+/).includes('pids'))
      return '/sys/fs/cgroup'
  } catch {
    // no cgroup2 at the top
  }
  return undefined
}
const pidsRoot = pidsHierarchy()

describe('ns serve: privileged requests need --allow-privileged, seen from inside', () => {
  const privilegedSocket = join(tmp, 'privileged.sock')
  let privileged: RunningServer
  const toPrivileged = { socketPath: privilegedSocket }
  beforeAll(async () => {
    privileged = await serve({
      socket: privilegedSocket,
      root,
      allowBind: [allowed, fixtureRootfs],
      allowPrivileged: true,
    })
    servers.push(privileged)
  })
  const refused = async (body: unknown, field: string | RegExp) => {
    const r = await call('POST', '/v1/containers', body)
    expect(r.status, r.text).toBe(403)
    expect(r.body.error.code).toBe('EPERM')
    expect(r.body.error.field).toMatch(
      typeof field === 'string' ? new RegExp(`^${field.replace(/[.[\]]/g, '\\$&')}$`) : field,
    )
    expect(list(root)).toEqual([])
  }

  itNs(
    "capabilities: a container holds Docker's 14 (CapEff 00000000a80425fb); capAdd ALL or a spec holding them all is 403; with --allow-privileged CapEff is every capability",
    async () => {
      const probe = sh('grep CapEff /proc/self/status')
      const plain = await call('POST', '/v1/run', { command: probe })
      expect(plain.status, plain.text).toBe(200)
      expect(statusField(plain.body.stdout, 'CapEff')).toBe('00000000a80425fb')

      await refused({ command: probe, capAdd: ['ALL'] }, 'capAdd')
      const all = policySpec({ command: probe, rootfs: fixtureRootfs, capAdd: ['ALL'] })
      await refused({ spec: all }, /^spec\.process\.capabilities\./)

      const last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'))
      const every = ((1n << BigInt(last + 1)) - 1n).toString(16).padStart(16, '0')
      const r = await call('POST', '/v1/run', { command: probe, capAdd: ['ALL'] }, { to: toPrivileged })
      expect(r.status, r.text).toBe(200)
      expect(statusField(r.body.stdout, 'CapEff')).toBe(every)
    },
  )

  itNs(
    'seccomp: a container is filtered (Seccomp: 2); unconfined, or a spec without a profile, is 403; with --allow-privileged it runs unfiltered (Seccomp: 0)',
    async () => {
      const probe = sh('grep Seccomp: /proc/self/status')
      const plain = await call('POST', '/v1/run', { command: probe })
      expect(statusField(plain.body.stdout, 'Seccomp')).toBe('2')

      await refused({ command: probe, seccomp: 'unconfined' }, 'seccomp')
      const bare = policySpec({ command: probe, rootfs: fixtureRootfs })
      delete bare.linux!.seccomp
      await refused({ spec: bare }, 'spec.linux.seccomp')

      const r = await call('POST', '/v1/run', { command: probe, seccomp: 'unconfined' }, { to: toPrivileged })
      expect(r.status, r.text).toBe(200)
      expect(statusField(r.body.stdout, 'Seccomp')).toBe('0')
    },
  )

  itWhen(
    usernsSkipReason ??
      (!isRoot ? 'needs root (a host cgroup)' : !pidsRoot ? 'no pids controller to make a cgroup in' : undefined),
  )(
    'linux.cgroupsPath naming a host cgroup is 403: the host cgroup keeps its pids.max and is still there once the request is done',
    async () => {
      const name = `ns-policy-host-${process.pid}`
      const host = join(pidsRoot!, name)
      mkdirSync(host)
      try {
        expect(readFileSync(join(host, 'pids.max'), 'utf8')).toBe('max\n')
        const spec = policySpec({ command: ['true'], rootfs: fixtureRootfs, pidsLimit: 3 })
        spec.linux!.cgroupsPath = name
        await refused({ spec, name: 'cgpath', start: true }, 'spec.linux.cgroupsPath')
        expect(readFileSync(join(host, 'pids.max'), 'utf8')).toBe('max\n')
        expect(existsSync(host)).toBe(true)
      } finally {
        rmdirSync(host)
      }
    },
  )

  itNs(
    "id maps: a gid map to the host's group shadow is 403; a container of the server cannot read the host's /etc/shadow",
    async () => {
      await refused(
        { command: ['cat', '/etc/shadow'], gidMappings: [{ containerID: 0, hostID: 42, size: 1 }] },
        /^gidMappings/,
      )
      const spec = policySpec({ command: ['cat', '/etc/shadow'], rootfs: fixtureRootfs })
      spec.linux!.gidMappings = [{ containerID: 0, hostID: 42, size: 1 }]
      await refused({ spec }, 'spec.linux.gidMappings[0]')
      const r = await call('POST', '/v1/run', { command: sh('cat /etc/shadow; echo "exit $?"; id') })
      expect(r.status, r.text).toBe(200)
      expect(r.body.stdout).toMatch(/^exit 1$/m)
      expect(r.body.stderr).toMatch(/Permission denied/)
      expect(r.body.stdout).not.toMatch(/^root:/m)
    },
  )

  itNs(
    "a root filesystem is not idmapped for the server's clients: its root writes there as its own range of host ids, so a setuid copy of busybox is not setuid-root on the host",
    async () => {
      const rootfs = join(allowed, 'rootfs-suid')
      execFileSync('cp', ['-a', fixtureRootfs, rootfs])
      mkdirSync(join(rootfs, 'scratch'))
      chmodSync(join(rootfs, 'scratch'), 0o1777)
      const r = await call('POST', '/v1/run', {
        command: sh(
          'cp /bin/busybox /suid; chmod 4755 /suid; cp /bin/busybox /scratch/suid && chmod 4755 /scratch/suid; id -u',
        ),
        rootfs,
      })
      expect(r.status, r.text).toBe(200)
      expect(r.body.stdout).toBe('0\n') // root inside
      for (const file of ['suid', 'scratch/suid']) {
        const path = join(rootfs, file)
        if (!existsSync(path)) continue
        const st = statSync(path)
        expect(st.uid, `${file} is owned by host root`).not.toBe(0)
      }
      // Root's container writes as its leased range: it could not write the root-owned top of
      // the tree at all, and what it made in the open folder is the range's.
      const made = statSync(join(rootfs, 'scratch/suid'))
      expect(made.mode & 0o4000).toBe(0o4000)
      if (isRoot) {
        expect(existsSync(join(rootfs, 'suid'))).toBe(false)
        expect(made.uid).toBeGreaterThanOrEqual(0x6000_0000)
      } else {
        expect(made.uid).toBe(process.geteuid!())
      }
    },
  )

  itNs(
    "io.ns.bind.roots: every container's spec carries the operator's --allow-bind roots (and the sandbox's host directories); a client may not set it",
    async () => {
      const made = await call('POST', '/v1/containers', {
        command: ['true'],
        volumes: [`${allowed}:/data:ro`],
        name: 'roots',
      })
      expect(made.status, made.text).toBe(201)
      const annotations = (await call('GET', '/v1/containers/roots')).body.config.annotations
      const roots = JSON.parse(annotations['io.ns.bind.roots']) as string[]
      expect(roots.slice(0, 2)).toEqual([realpathSync(allowed), realpathSync(fixtureRootfs)])
      expect(roots).toContain('/usr')
      expect((await call('DELETE', '/v1/containers/roots')).status).toBe(204)

      const spec = policySpec({ command: ['true'], rootfs: fixtureRootfs })
      await refused(
        { spec: { ...spec, annotations: { ...spec.annotations, 'io.ns.bind.roots': '["/"]' } } },
        'spec.annotations.io.ns.bind.roots',
      )
      const fromSpec = await call('POST', '/v1/containers', { spec, name: 'roots' })
      expect(fromSpec.status, fromSpec.text).toBe(201)
      const set = (await call('GET', '/v1/containers/roots')).body.config.annotations['io.ns.bind.roots']
      expect(JSON.parse(set)).toEqual([realpathSync(allowed), realpathSync(fixtureRootfs)])
      expect((await call('DELETE', '/v1/containers/roots')).status).toBe(204)
    },
  )
})

describe('ns serve: signals', () => {
  itNs('kill takes the signal from a JSON body as from the query; a bad one is a 400 naming signal', async () => {
    expect((await call('POST', '/v1/containers', { command: ['sleep', '30'], name: 'sig', start: true })).status).toBe(
      201,
    )
    for (const signal of ['SIGFOO', 'KILLS', 0, 65, 9.5]) {
      const bad = await call('POST', '/v1/containers/sig/kill', { signal })
      expect(bad.status, bad.text).toBe(400)
      expect(bad.body.error.field).toBe('signal')
    }
    expect((await call('POST', '/v1/containers/sig/kill?signal=SIGFOO')).body.error.field).toBe('signal')
    const both = await call('POST', '/v1/containers/sig/kill?signal=TERM', { signal: 'SIGKILL' })
    expect(both.status).toBe(400)
    expect(both.body.error).toMatchObject({
      field: 'signal',
      message: 'signal: TERM in the query, SIGKILL in the body: give one',
    })
    expect((await call('GET', '/v1/containers/sig')).body.status).toBe('running')

    const killed = await call('POST', '/v1/containers/sig/kill', { signal: 'SIGKILL' })
    expect(killed.status, killed.text).toBe(200)
    expect((await call('POST', '/v1/containers/sig/wait')).body).toMatchObject({ exitCode: 137, signal: 'SIGKILL' })
    expect((await call('DELETE', '/v1/containers/sig')).status).toBe(204)

    // A number in the body, to every process.
    expect((await call('POST', '/v1/containers', { command: ['sleep', '30'], name: 'sig', start: true })).status).toBe(
      201,
    )
    expect((await call('POST', '/v1/containers/sig/kill', { signal: 15, all: true })).status).toBe(200)
    expect((await call('POST', '/v1/containers/sig/wait')).body).toMatchObject({ exitCode: 143, signal: 'SIGTERM' })
    expect((await call('DELETE', '/v1/containers/sig')).status).toBe(204)
  })
})

describe('ns serve: pause, resume and update', () => {
  // Through the server's routes, or by an engine with ns-oci on the same state root: either way
  // the server tells what the freezer says.
  /** Whether the kernel says the cgroup of `pid` is frozen (v1's freezer.state, v2's cgroup.events). */
  const frozenState = (pid: number): boolean => {
    for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
      const [, names, path] = line.split(':') as [string, string, string]
      if (names.split(',').includes('freezer'))
        return readFileSync(join('/sys/fs/cgroup/freezer', path, 'freezer.state'), 'utf8').trim() === 'FROZEN'
      if (names === '' && existsSync('/sys/fs/cgroup/cgroup.controllers'))
        return /^frozen 1$/m.test(readFileSync(join('/sys/fs/cgroup', path, 'cgroup.events'), 'utf8'))
    }
    throw new Error(`no freezer cgroup for ${pid}`)
  }
  const oci = (...args: string[]) => spawnSync(ociBin, ['--root', root, ...args], { encoding: 'utf8', timeout: 20_000 })

  itRoot(
    'paused (by the API or by ns-oci) its cgroup is frozen and it is listed, filtered and inspected as paused; resumed it runs; no exit is made up; stop still ends it',
    async () => {
      const stream = sse('/v1/events?id=frozen')
      expect((await stream.opened).status).toBe(200)
      const made = await call('POST', '/v1/containers', {
        command: sh('while :; do date +%s%N > /dev/null; usleep 20000; done'),
        name: 'frozen',
        memory: '64m',
        start: true,
      })
      expect(made.status, made.text).toBe(201)
      const { pid } = made.body.state
      const paused = oci('pause', 'frozen')
      expect(paused.status, paused.stderr).toBe(0)
      // The kernel's view: the container's cgroup is frozen.
      expect(frozenState(pid)).toBe(true)
      expect((await call('GET', '/v1/containers/frozen')).body.status).toBe('paused')
      const ids = async (q: string) => (await call('GET', `/v1/containers?${q}`)).body.map((s: { id: string }) => s.id)
      expect(await ids('status=paused')).toEqual(['frozen'])
      expect(await ids('status=running')).not.toContain('frozen')
      const ex = await call('POST', '/v1/containers/frozen/exec', { command: ['true'] })
      expect(ex.status, ex.text).toBe(409)
      expect(ex.body.error.message).toContain('it is paused')

      const resumed = await call('POST', '/v1/containers/frozen/resume')
      expect(resumed.status, resumed.text).toBe(200)
      expect(resumed.body.state.status).toBe('running')
      const again = await call('POST', '/v1/containers/frozen/resume')
      expect(again.status).toBe(409)
      expect(again.body.error.message).toContain('cannot resume container "frozen": it is running')
      expect(frozenState(pid)).toBe(false)
      expect(await ids('status=paused')).toEqual([])

      // Paused again, a stop's SIGTERM waits in the freezer; its SIGKILL thaws the container so it dies.
      const pausedHere = await call('POST', '/v1/containers/frozen/pause')
      expect(pausedHere.status, pausedHere.text).toBe(200)
      expect(pausedHere.body.state.status).toBe('paused')
      expect(frozenState(pid)).toBe(true)
      expect(oci('state', 'frozen').stdout).toContain('"status": "paused"')
      const stopped = await call('POST', '/v1/containers/frozen/stop?timeout=1')
      expect(stopped.status, stopped.text).toBe(200)
      expect(stopped.body.state.status).toBe('stopped')
      expect(stopped.body.exit.signal).toBe('SIGKILL')
      expect((await call('DELETE', '/v1/containers/frozen')).status).toBe(204)
      const events = (await stream.until((e) => e.some((x) => x.event === 'deleted'))).map((e) => JSON.parse(e.data))
      stream.close()
      // Pausing and resuming are no exit and no second start.
      expect(events.map((e) => e.type)).toEqual(['created', 'started', 'exited', 'deleted'])
    },
  )

  itRoot(
    'update writes the limits given to the cgroup, names a bad field with a 400, and keeps the others',
    async () => {
      const made = await call('POST', '/v1/containers', {
        command: ['sleep', '30'],
        name: 'grown',
        memory: '64m',
        pidsLimit: 20,
        start: true,
      })
      expect(made.status, made.text).toBe(201)
      const { pid } = made.body.state
      const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers')
      const cgFile = (controller: string, v1File: string, v2File: string) => {
        for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
          const [, names, path] = line.split(':') as [string, string, string]
          if (v2 && names === '') return readFileSync(join('/sys/fs/cgroup', path, v2File), 'utf8').trim()
          if (!v2 && names.split(',').includes(controller))
            return readFileSync(join('/sys/fs/cgroup', controller, path, v1File), 'utf8').trim()
        }
        throw new Error(`no ${controller} cgroup for ${pid}`)
      }
      const memory = () => cgFile('memory', 'memory.limit_in_bytes', 'memory.max')
      expect(memory()).toBe(String(64 << 20))
      const r = await call('POST', '/v1/containers/grown/update', { memory: '128m' })
      expect(r.status, r.text).toBe(200)
      expect(r.body.state.status).toBe('running')
      expect(memory()).toBe(String(128 << 20))
      expect(cgFile('pids', 'pids.max', 'pids.max')).toBe('20')
      const small = await call('POST', '/v1/containers/grown/update', { memory: '1k' })
      expect(small.status).toBe(400)
      expect(small.body.error.field).toBe('memory')
      const other = await call('POST', '/v1/containers/grown/update', { hostname: 'x' })
      expect(other.status).toBe(400)
      expect(other.text).toContain('hostname')
      expect(memory()).toBe(String(128 << 20))
      expect((await call('DELETE', '/v1/containers/grown?force=true')).status).toBe(204)
      const gone = await call('POST', '/v1/containers/grown/update', { memory: '128m' })
      expect(gone.status).toBe(404)
    },
  )

  itNs('a container without a cgroup (no limits) cannot be paused: 409 saying why, and it still runs', async () => {
    const made = await call('POST', '/v1/containers', { command: ['sleep', '30'], name: 'unfrozen', start: true })
    expect(made.status, made.text).toBe(201)
    const r = await call('POST', '/v1/containers/unfrozen/pause')
    expect(r.status, r.text).toBe(409)
    expect(r.body.error.message).toContain('cannot pause container "unfrozen": it has no cgroup to freeze')
    expect((await call('GET', '/v1/containers/unfrozen')).body.status).toBe('running')
    expect((await call('DELETE', '/v1/containers/unfrozen?force=true')).status).toBe(204)
  })
})

describe('ns serve: the state directory is the only truth', () => {
  const root2 = join(tmp, 'state2')
  const socket2 = join(tmp, 'restart.sock')
  roots.push(root2)

  async function startServer(): Promise<{ child: ChildProcess; lines: () => string[] }> {
    const child = spawn(process.execPath, [cli, 'serve', '--socket', socket2, '--root', root2], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(child)
    let out = ''
    let err = ''
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
    for (let i = 0; i < 200 && !err.includes('listening on'); i++) {
      if (child.exitCode !== null) throw new Error(`ns serve exited: ${err}`)
      await sleep(25)
    }
    expect(err).toContain(`listening on unix:${socket2}`)
    return { child, lines: () => out.split('\n').filter(Boolean) }
  }

  itNs(
    'killed with SIGKILL and started again, the server lists every container in its state, exit codes and whole logs',
    async () => {
      const to = { socketPath: socket2 }
      const a = await startServer()
      const create = (body: Record<string, unknown>) => call('POST', '/v1/containers', body, { to })
      expect((await create({ command: sh('echo up; sleep 30'), name: 'survivor', start: true })).status).toBe(201)
      expect(
        (await create({ command: sh('echo start; sleep 0.5; echo end; exit 7'), name: 'finisher', start: true }))
          .status,
      ).toBe(201)
      expect((await create({ command: sh('echo late'), name: 'waiting' })).status).toBe(201)
      // One JSON line per request when stdout is not a terminal.
      expect(JSON.parse(a.lines()[0]!)).toMatchObject({
        method: 'POST',
        path: '/v1/containers',
        status: 201,
        ms: expect.any(Number),
      })

      a.child.kill('SIGKILL')
      await new Promise((r) => a.child.once('exit', r))
      expect(existsSync(socket2)).toBe(true) // left behind: the next server must cope
      await sleep(800) // finisher ends while no server runs

      const b = await startServer()
      const states = (await call('GET', '/v1/containers', undefined, { to })).body as {
        id: string
        status: string
        exit?: { exitCode: number }
      }[]
      expect(states.map((s) => [s.id, s.status]).sort()).toEqual([
        ['finisher', 'stopped'],
        ['survivor', 'running'],
        ['waiting', 'created'],
      ])
      expect(states.find((s) => s.id === 'finisher')!.exit!.exitCode).toBe(7)
      expect((await call('POST', '/v1/containers/finisher/wait', undefined, { to })).body).toMatchObject({
        exitCode: 7,
      })
      expect(
        (await call('GET', '/v1/containers/finisher/logs', undefined, { to })).body.map((e: { log: string }) => e.log),
      ).toEqual(['start\n', 'end\n'])
      expect(
        (await call('GET', '/v1/containers/survivor/logs', undefined, { to })).body.map((e: { log: string }) => e.log),
      ).toEqual(['up\n'])
      // The one created before the crash can still be started and run through.
      expect((await call('POST', '/v1/containers/waiting/start', undefined, { to })).status).toBe(200)
      expect((await call('POST', '/v1/containers/waiting/wait', undefined, { to })).body).toMatchObject({ exitCode: 0 })
      expect(
        (await call('GET', '/v1/containers/waiting/logs', undefined, { to })).body.map((e: { log: string }) => e.log),
      ).toEqual(['late\n'])
      for (const id of ['survivor', 'finisher', 'waiting'])
        expect((await call('DELETE', `/v1/containers/${id}?force=true`, undefined, { to })).status).toBe(204)

      // SIGTERM: the server closes and takes its socket file with it.
      b.child.kill('SIGTERM')
      const code = await new Promise((r) => b.child.once('exit', r))
      expect(code).toBe(0)
      expect(existsSync(socket2)).toBe(false)
    },
  )
})
