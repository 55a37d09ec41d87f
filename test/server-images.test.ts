// Images over `ns serve`, as a client drives them: real requests over real unix sockets to
// servers whose stores are temp dirs, pulling from a real registry on 127.0.0.1 (Debian's
// docker-registry) with images built by umoci and pushed by skopeo; proxies on 127.0.0.1
// stall, corrupt, redirect and challenge. What lands on disk is checked with sha256sum and
// skopeo, independently of ns; what the policy refuses is checked to have reached nothing.
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect } from 'vitest'

import { serve, type RunningServer, type ServeOptions } from '@ns/server'

import { itWhen } from './helpers.js'
import {
  buildLayout,
  builtImages,
  freePort,
  registrySkipReason,
  sha256sum,
  skopeo,
  startProxy,
  startRegistry,
  testUser,
  type TestProxy,
  type BuiltImage,
  type TestRegistry,
} from './registry.js'

const itReg = itWhen(registrySkipReason)
const work = mkdtempSync(join(tmpdir(), 'ns-server-images-'))
// The server spools uploads and saves in TMPDIR: one of the test's own, to see that it is left empty.
const spoolDir = join(work, 'spool')
mkdirSync(spoolDir)
process.env.TMPDIR = spoolDir

let reg: TestRegistry
let layout: string
/** The layout's manifests and configs, as umoci wrote them. */
const built: Record<string, BuiltImage> = {}
const servers: RunningServer[] = []
const closers: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  if (registrySkipReason) return
  reg = await startRegistry()
  layout = buildLayout(join(work, 'build'))
  Object.assign(built, builtImages(layout))
  const push = (src: string, dst: string, ...flags: string[]) =>
    skopeo('copy', '--dest-tls-verify=false', ...flags, `oci:${layout}:${src}`, `docker://${reg.host}/${dst}`)
  push('v2', 'test/app:oci', '--format', 'oci')
  push('v2', 'test/app:v2s2', '--format', 'v2s2')
  push('base', 'test/base:v1', '--format', 'oci')
})

afterAll(async () => {
  for (const s of servers) await s.close()
  for (const c of closers) await c()
  await reg?.stop()
  rmSync(work, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------------------------
// Servers, each with a store of its own, and a small client over their sockets

interface TestServer {
  server: RunningServer
  store: string
  call: (method: string, path: string, body?: unknown, opts?: CallOptions) => Promise<Reply>
  pullEvents: (body: unknown) => PullStream
}

async function startServer(opts: Partial<ServeOptions> = {}): Promise<TestServer> {
  const n = servers.length
  const store = join(work, `store-${n}`)
  const socket = join(work, `s${n}.sock`)
  const server = await serve({
    socket,
    root: join(work, `state-${n}`),
    ...opts,
    // Few retries, short back-off: the failures tested here are not transient.
    images: { store, retries: 1, retryDelayMs: 20, timeoutMs: 5000, ...opts.images },
  })
  servers.push(server)
  return {
    server,
    store,
    call: (method, path, body, o) => call(socket, method, path, body, o),
    pullEvents: (body) => pullStream(socket, body),
  }
}

interface Reply {
  status: number
  headers: IncomingHttpHeaders
  raw: Buffer
  body: any
}

interface CallOptions {
  headers?: Record<string, string>
  /** A body sent as it is (a Buffer, or a file streamed chunked). */
  send?: Buffer | { file: string }
}

/** Sockets whose late errors are already ignored (the agent reuses them). */
const quietSockets = new WeakSet<object>()

function call(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  opts: CallOptions = {},
): Promise<Reply> {
  const json = body === undefined ? undefined : JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(opts.send ? { 'content-type': 'application/x-tar' } : {}),
      ...opts.headers,
    }
    const req = request({ socketPath, method, path, headers, timeout: 60_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => {
        const raw = Buffer.concat(chunks)
        let parsed: unknown
        try {
          parsed = JSON.parse(raw.toString('utf8'))
        } catch {
          parsed = undefined
        }
        resolve({ status: res.statusCode!, headers: res.headers, raw, body: parsed })
      })
    })
    req.on('error', reject)
    // A server that answers early (413) closes while the body is still being written: the EPIPE
    // that follows is expected.
    req.on('socket', (sock) => {
      if (quietSockets.has(sock)) return
      quietSockets.add(sock)
      sock.on('error', () => {})
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer`)))
    if (opts.send && !Buffer.isBuffer(opts.send)) {
      createReadStream(opts.send.file).pipe(req)
    } else {
      req.end(opts.send ?? json)
    }
  })
}

interface SseEvent {
  event: string
  data: any
}

interface PullStream {
  events: SseEvent[]
  opened: Promise<{ status: number; type: string | undefined; body?: any }>
  readonly ended: boolean
  until(done: (e: SseEvent[]) => boolean, ms?: number): Promise<SseEvent[]>
  close(): void
}

/** POST /v1/images/pull with `Accept: text/event-stream`: the events as they come. */
function pullStream(socketPath: string, body: unknown): PullStream {
  const events: SseEvent[] = []
  let buffer = ''
  let ended = false
  let notify = () => {}
  let req: ReturnType<typeof request> | undefined
  const opened = new Promise<{ status: number; type: string | undefined; body?: any }>((resolve, reject) => {
    req = request(
      {
        socketPath,
        method: 'POST',
        path: '/v1/images/pull',
        headers: { accept: 'text/event-stream', 'content-type': 'application/json' },
      },
      (res) => {
        const type = res.headers['content-type']
        res.setEncoding('utf8')
        if (!type?.startsWith('text/event-stream')) {
          let text = ''
          res.on('data', (d: string) => (text += d))
          res.on('end', () => resolve({ status: res.statusCode!, type, body: JSON.parse(text) }))
          return
        }
        resolve({ status: res.statusCode!, type })
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
            if (data.length) events.push({ event, data: JSON.parse(data.join('\n')) })
          }
          notify()
        })
        res.on('end', () => {
          ended = true
          notify()
        })
        res.on('error', () => {})
      },
    )
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
  return {
    events,
    opened,
    get ended() {
      return ended
    },
    async until(done, ms = 20_000) {
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

const enc = encodeURIComponent
const ls = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : [])
/** What the server left in TMPDIR (the registries of the tests keep their own dirs there). */
const spooled = () => ls(spoolDir).filter((f) => /^ns-(load|save)-/.test(f))
const blobFiles = (store: string) => ls(join(store, 'blobs', 'sha256'))
async function waitFor(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
async function proxy(hooks: Parameters<typeof startProxy>[1]): Promise<TestProxy> {
  const p = await startProxy(reg.url, hooks)
  closers.push(() => p.close())
  return p
}
/** An HTTP server on 127.0.0.1 that records what reaches it and answers 404. */
async function witness(): Promise<{ host: string; url: string; hits: string[] }> {
  const hits: string[] = []
  const s = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`)
    res.writeHead(404).end()
  })
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  closers.push(() => new Promise((r) => (s.closeAllConnections(), s.close(r))))
  const port = (s.address() as AddressInfo).port
  return { host: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}`, hits }
}
/** The registry's own answer for a manifest: its digest. */
async function registryDigest(repo: string, ref: string, accept: string): Promise<string> {
  const r = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { headers: { Accept: accept } })
  await r.arrayBuffer()
  return r.headers.get('docker-content-digest')!
}
const ociManifest = 'application/vnd.oci.image.manifest.v1+json'

// ---------------------------------------------------------------------------------------------

describe('pull over HTTP', () => {
  itReg(
    'a pull streams Server-Sent Events: per layer resolved, downloading with byte counts up to its size, verified, complete; the last event is the record, every blob under its sha256',
    async () => {
      const s = await startServer({ allowRegistry: [reg.host] })
      const ref = `${reg.host}/test/app:oci`
      const stream = s.pullEvents({ reference: ref })
      expect(await stream.opened).toMatchObject({ status: 200, type: expect.stringMatching(/^text\/event-stream/) })
      const events = await stream.until(() => false)
      expect(stream.ended).toBe(true)
      expect(events[0]!.event).toBe('resolving')
      const resolved = events.find((e) => e.event === 'resolved')!
      expect(resolved.data.digest).toBe(await registryDigest('test/app', 'oci', ociManifest))
      expect(resolved.data.layers.map((l: { digest: string }) => l.digest)).toEqual(built.v2!.layers)
      for (const { digest, size } of resolved.data.layers as { digest: string; size: number }[]) {
        const of = events.filter((e) => e.event === 'layer' && e.data.digest === digest).map((e) => e.data)
        expect(of.map((e) => e.status).filter((st, i, a) => st !== a[i - 1])).toEqual([
          'resolved',
          'downloading',
          'verified',
          'complete',
        ])
        const dl = of.filter((e) => e.status === 'downloading')
        expect(dl.every((e) => e.total === size && e.bytes > 0 && e.bytes <= size)).toBe(true)
        expect(dl.at(-1)!.bytes).toBe(size)
      }
      const last = events.at(-1)!
      expect(last.event).toBe('complete')
      const img = last.data.image
      expect(img.digest).toBe(resolved.data.digest)
      expect(img.id).toBe(built.v2!.config)
      expect(img.names).toEqual([ref])
      for (const d of [img.digest, img.config.digest, ...img.layers.map((l: { digest: string }) => l.digest)]) {
        expect(sha256sum(join(s.store, 'blobs', 'sha256', d.slice(7)))).toBe(d)
      }
      expect(ls(join(s.store, 'tmp'))).toEqual([])
    },
  )

  itReg(
    'listed with the reference and dangling filters, inspected by name, id and digest (URL-encoded) with its config; without the event stream a pull answers once',
    async () => {
      const s = await startServer({ allowRegistry: [reg.host] })
      const app = `${reg.host}/test/app:oci`
      const base = `${reg.host}/test/base:v1`
      const one = await s.call(
        'POST',
        '/v1/images/pull',
        { reference: app },
        { headers: { accept: 'application/json' } },
      )
      expect(one.status, one.raw.toString()).toBe(200)
      expect(one.headers['content-type']).toMatch(/^application\/json/)
      expect(one.body).toMatchObject({ id: built.v2!.config, names: [app] })
      const two = await s.call('POST', '/v1/images/pull', { reference: base })
      expect(two.status).toBe(200)

      const all = await s.call('GET', '/v1/images')
      expect(all.status).toBe(200)
      expect(all.body.map((i: { names: string[] }) => i.names).sort()).toEqual([[app], [base]].sort())
      const byRepo = await s.call('GET', `/v1/images?reference=${enc(`${reg.host}/test/app`)}`)
      expect(byRepo.body.map((i: { id: string }) => i.id)).toEqual([built.v2!.config])
      const byName = await s.call('GET', `/v1/images?reference=${enc(base)}`)
      expect(byName.body.map((i: { id: string }) => i.id)).toEqual([built.base!.config])
      expect((await s.call('GET', `/v1/images?reference=${enc(`${reg.host}/test/app:nope`)}`)).body).toEqual([])
      expect((await s.call('GET', '/v1/images?dangling=true')).body).toEqual([])
      expect((await s.call('GET', '/v1/images?dangling=false')).body).toHaveLength(2)
      const badFilter = await s.call('GET', `/v1/images?reference=${enc('UPPER/Case')}`)
      expect(badFilter.status).toBe(400)
      expect(badFilter.body.error.field).toBe('reference')

      for (const key of [app, one.body.id, one.body.digest, one.body.id.slice(7, 19)]) {
        const r = await s.call('GET', `/v1/images/${enc(key)}`)
        expect(r.status, `${key}: ${r.raw.toString()}`).toBe(200)
        expect(r.body.digest).toBe(one.body.digest)
        expect(r.body.imageConfig.config.Cmd).toEqual(['/bin/sh'])
        expect(r.body.imageConfig.rootfs.diff_ids).toEqual(one.body.layers.map((l: { diffId: string }) => l.diffId))
      }
    },
  )

  itReg(
    'a client that disconnects mid-pull aborts it, streamed or not: the registry connection is dropped, nothing half-stored, no record, no lease, and the slot is free again (while held, another pull is 429)',
    async () => {
      const big = built.v2!.layers[0]!
      // The big layer's first two downloads send a little, then nothing more.
      const stalls: { dropped: boolean }[] = []
      const p = await proxy({
        intercept: async (req: IncomingMessage, res: ServerResponse) => {
          if (!req.url?.endsWith(`/blobs/${big}`) || stalls.length >= 2) return false
          const stall = { dropped: false }
          stalls.push(stall)
          const r = await fetch(`${reg.url}${req.url}`)
          const body = Buffer.from(await r.arrayBuffer())
          res.writeHead(200, { 'Content-Length': String(body.length) })
          res.write(body.subarray(0, 10_000))
          res.on('close', () => (stall.dropped = true))
          return true
        },
      })
      // A stalled body is given up only after a minute: what drops the connection is the client.
      const s = await startServer({
        allowRegistry: [p.host],
        limits: { maxImageJobs: 1 },
        images: { timeoutMs: 60_000 },
      })
      const ref = `${p.host}/test/app:oci`
      const tmp = join(s.store, 'tmp')
      const nothingLeft = async () => {
        await waitFor('the temp file to go', () => ls(tmp).length === 0)
        await waitFor('the lease to go', () => ls(join(s.store, 'leases')).length === 0)
        expect(blobFiles(s.store)).not.toContain(big.slice(7))
        expect(ls(join(s.store, 'images'))).toEqual([])
        expect((await s.call('GET', '/v1/images')).body).toEqual([])
      }

      const stream = s.pullEvents({ reference: ref })
      await stream.until((ev) =>
        ev.some(
          (e) => e.event === 'layer' && e.data.digest === big && e.data.status === 'downloading' && e.data.bytes > 0,
        ),
      )
      expect(stalls).toHaveLength(1)
      expect(ls(tmp).some((f) => f.startsWith(big.slice(7)))).toBe(true)
      const busy = await s.call('POST', '/v1/images/pull', { reference: `${p.host}/test/base:v1` })
      expect(busy.status).toBe(429)
      expect(busy.headers['retry-after']).toBe('1')
      stream.close()
      await waitFor('the pull to drop its registry connection', () => stalls[0]!.dropped)
      await nothingLeft()

      // Not streamed: the same, for a client waiting for its one answer.
      const waiting = request({
        socketPath: s.server.socket!,
        method: 'POST',
        path: '/v1/images/pull',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
      })
      waiting.on('error', () => {})
      waiting.end(JSON.stringify({ reference: ref }))
      await waitFor('the second stall', () => stalls.length === 2)
      await waitFor('its partial blob', () => ls(tmp).some((f) => f.startsWith(big.slice(7))))
      waiting.destroy()
      await waitFor('the pull to drop its registry connection', () => stalls[1]!.dropped)
      await nothingLeft()

      // What was whole (the config, the small layer) is no image's: prune takes it.
      await s.call('POST', '/v1/images/prune')
      expect(blobFiles(s.store)).toEqual([])
      // The slot came back: the next pull runs.
      const again = await s.call('POST', '/v1/images/pull', { reference: `${p.host}/test/base:v1` })
      expect(again.status, again.raw.toString()).toBe(200)
    },
  )
})

describe('tag, remove, prune', () => {
  itReg(
    'tag adds a name; removing by id while it has two is 409 IMAGE_IN_USE, by name untags, by id with force deletes; prune leaves no blob no image uses',
    async () => {
      const s = await startServer({ allowRegistry: [reg.host] })
      const app = `${reg.host}/test/app:oci`
      const base = `${reg.host}/test/base:v1`
      const img = (await s.call('POST', '/v1/images/pull', { reference: app })).body
      const baseImg = (await s.call('POST', '/v1/images/pull', { reference: base })).body
      const tagged = await s.call('POST', `/v1/images/${enc(app)}/tag`, { target: 'localhost/mine:1' })
      expect(tagged.status, tagged.raw.toString()).toBe(200)
      expect(tagged.body.names).toEqual([app, 'localhost/mine:1'].sort())
      expect((await s.call('GET', `/v1/images/${enc('localhost/mine:1')}`)).body.digest).toBe(img.digest)
      const badTarget = await s.call('POST', `/v1/images/${enc(app)}/tag`, { target: `x@sha256:${'a'.repeat(64)}` })
      expect(badTarget.status).toBe(400)
      expect(badTarget.body.error.field).toBe('target')
      expect((await s.call('POST', `/v1/images/${enc('no/such:image')}/tag`, { target: 'a:b' })).status).toBe(404)

      const inUse = await s.call('DELETE', `/v1/images/${enc(img.id)}`)
      expect(inUse.status).toBe(409)
      expect(inUse.body.error.code).toBe('IMAGE_IN_USE')
      const untag = await s.call('DELETE', `/v1/images/${enc('localhost/mine:1')}`)
      expect(untag.status).toBe(200)
      expect(untag.body).toMatchObject({ untagged: ['localhost/mine:1'], deleted: [] })
      await s.call('POST', `/v1/images/${enc(app)}/tag`, { target: 'localhost/mine:2' })
      const forced = await s.call('DELETE', `/v1/images/${enc(img.id)}?force=true`)
      expect(forced.status).toBe(200)
      expect(forced.body.untagged.sort()).toEqual([app, 'localhost/mine:2'].sort())
      expect(forced.body.deleted).toEqual([img.digest])
      expect((await s.call('DELETE', `/v1/images/${enc(app)}`)).status).toBe(404)
      // The base layer is shared with the image left: it stays; v2's own blobs are gone.
      const left = new Set([
        baseImg.digest,
        baseImg.config.digest,
        ...baseImg.layers.map((l: { digest: string }) => l.digest),
      ])
      expect(blobFiles(s.store)).toEqual([...left].map((d) => d.slice(7)).sort())

      const untagBase = await s.call('POST', `/v1/images/${enc(base)}/tag`, { target: 'localhost/keep:1' })
      expect(untagBase.status).toBe(200)
      await s.call('DELETE', `/v1/images/${enc(base)}`)
      const pruned = await s.call('POST', '/v1/images/prune')
      expect(pruned.status).toBe(200)
      expect(pruned.body.deleted).toEqual([])
      expect(blobFiles(s.store)).toHaveLength(left.size)
      await s.call('DELETE', `/v1/images/${enc('localhost/keep:1')}`)
      expect((await s.call('POST', '/v1/images/prune')).status).toBe(200)
      expect(blobFiles(s.store)).toEqual([])
      expect((await s.call('GET', '/v1/images')).body).toEqual([])
    },
  )
})

describe('archives: load and save', () => {
  itReg(
    "a skopeo oci-archive loads (streamed, chunked); saved as docker-archive and oci-archive, skopeo reads each with the image's layers, and loading a save again gives the same image",
    async () => {
      const s = await startServer()
      const src = join(work, 'app.oci.tar')
      skopeo('copy', `oci:${layout}:v2`, `oci-archive:${src}:localhost/app:v2`)
      const loaded = await s.call('POST', '/v1/images/load', undefined, { send: { file: src } })
      expect(loaded.status, loaded.raw.toString()).toBe(200)
      expect(loaded.body).toHaveLength(1)
      const img = loaded.body[0]
      expect(img.id).toBe(built.v2!.config)
      expect(img.digest).toBe(built.v2!.manifest)
      expect(img.names).toEqual(['localhost/app:v2'])
      expect(spooled()).toEqual([])

      const docker = await s.call('GET', `/v1/images/${enc('localhost/app:v2')}/save?format=docker-archive`)
      expect(docker.status).toBe(200)
      expect(docker.headers['content-type']).toBe('application/x-tar')
      expect(Number(docker.headers['content-length'])).toBe(docker.raw.length)
      const dockerTar = join(work, 'saved.docker.tar')
      writeFileSync(dockerTar, docker.raw)
      const seen = JSON.parse(skopeo('inspect', '--raw', `docker-archive:${dockerTar}`)) as {
        config: { digest: string }
      }
      expect(seen.config.digest).toBe(img.id)
      const di = JSON.parse(skopeo('inspect', `docker-archive:${dockerTar}`)) as {
        RepoTags: string[]
        Layers: string[]
      }
      expect(di.Layers).toHaveLength(2)

      const oci = await s.call('GET', `/v1/images/${enc(img.id)}/save`)
      expect(oci.status).toBe(200)
      const ociTar = join(work, 'saved.oci.tar')
      writeFileSync(ociTar, oci.raw)
      const oi = JSON.parse(skopeo('inspect', '--raw', `oci-archive:${ociTar}`)) as {
        config: { digest: string }
        layers: { digest: string }[]
      }
      expect(oi.config.digest).toBe(img.id)
      expect(oi.layers.map((l) => l.digest)).toEqual(built.v2!.layers)
      expect(spooled()).toEqual([])

      const other = await startServer()
      const back = await other.call('POST', '/v1/images/load', undefined, { send: readFileSync(dockerTar) })
      expect(back.status, back.raw.toString()).toBe(200)
      expect(back.body[0].id).toBe(img.id)
      const back2 = await other.call('POST', '/v1/images/load', undefined, { send: readFileSync(ociTar) })
      expect(back2.status, back2.raw.toString()).toBe(200)
      expect(back2.body[0].digest).toBe(img.digest)

      expect((await s.call('GET', `/v1/images/${enc('no/such:image')}/save`)).status).toBe(404)
      expect((await s.call('GET', `/v1/images/${enc(img.id)}/save?format=zip`)).status).toBe(400)
    },
  )

  itReg(
    'an archive past the limit is 413 (declared or counted), a damaged one 400 naming the blob, no archive 400; nothing is stored, nothing left in TMPDIR',
    async () => {
      const src = join(work, 'app.oci.tar')
      if (!existsSync(src)) skopeo('copy', `oci:${layout}:v2`, `oci-archive:${src}:localhost/app:v2`)
      const bytes = readFileSync(src)
      const s = await startServer({ limits: { maxArchiveBytes: 64 * 1024 } })
      const declared = await s.call('POST', '/v1/images/load', undefined, { send: bytes })
      expect(declared.status).toBe(413)
      expect(declared.body.error.field).toBe('body')
      const counted = await s.call('POST', '/v1/images/load', undefined, { send: { file: src } })
      expect(counted.status).toBe(413)
      await waitFor('the spool to be cleared', () => spooled().length === 0)

      const t = await startServer()
      const damaged = Buffer.from(bytes)
      const at = Math.floor(damaged.length / 2)
      damaged[at] = damaged[at]! ^ 0xff
      const bad = await t.call('POST', '/v1/images/load', undefined, { send: damaged })
      expect(bad.status).toBe(400)
      expect(['DIGEST_MISMATCH', 'INVALID_ARCHIVE']).toContain(bad.body.error.code)
      expect(bad.body.error.message).toMatch(/sha256:[a-f0-9]{64}|tar/)
      const junk = await t.call('POST', '/v1/images/load', undefined, { send: Buffer.from('not a tar at all') })
      expect(junk.status).toBe(400)
      expect(junk.body.error.code).toBe('INVALID_ARCHIVE')
      expect((await t.call('GET', '/v1/images')).body).toEqual([])
      await t.call('POST', '/v1/images/prune')
      expect(blobFiles(t.store)).toEqual([])
      expect(spooled()).toEqual([])
    },
  )
})

describe('errors, by status', () => {
  itReg(
    'a bad reference or platform is 400 naming the field; a missing image, repository or tag 404; no image for the platform 404 naming platform',
    async () => {
      const s = await startServer({ allowRegistry: [reg.host] })
      const pull = (body: unknown) => s.call('POST', '/v1/images/pull', body)
      const badRef = await pull({ reference: 'Bad//Ref' })
      expect(badRef.status).toBe(400)
      expect(badRef.body.error).toMatchObject({ code: 'EINVAL', field: 'reference' })
      const badPlatform = await pull({ reference: `${reg.host}/test/app:oci`, platform: 'linux/amd64/v1/x' })
      expect(badPlatform.status).toBe(400)
      expect(badPlatform.body.error.field).toBe('platform')
      const noRef = await pull({})
      expect(noRef.status).toBe(400)
      expect(noRef.body.error.field).toBe('reference')
      const extra = await pull({ reference: `${reg.host}/test/app:oci`, authFile: '/etc/shadow' })
      expect(extra.status).toBe(400)
      expect(extra.body.error.field).toBe('authFile')

      const missing = await s.call('GET', `/v1/images/${enc('no/such:image')}`)
      expect(missing.status).toBe(404)
      expect(missing.body.error.code).toBe('IMAGE_NOT_FOUND')
      const noTag = await pull({ reference: `${reg.host}/test/app:nope` })
      expect(noTag.status).toBe(404)
      expect(noTag.body.error.code).toBe('MANIFEST_UNKNOWN')
      expect(noTag.body.error.message).toContain(`${reg.host}/test/app:nope`)
      const noRepo = await pull({ reference: `${reg.host}/test/nothing:v1` })
      expect(noRepo.status).toBe(404)
      expect(['NAME_UNKNOWN', 'MANIFEST_UNKNOWN']).toContain(noRepo.body.error.code)
      const arm = await pull({ reference: `${reg.host}/test/app:oci`, platform: 'linux/arm64' })
      expect(arm.status).toBe(404)
      expect(arm.body.error).toMatchObject({ code: 'NO_MATCHING_PLATFORM', field: 'platform' })
      // The same as the last event of a stream, with the status the answer would have had.
      const stream = s.pullEvents({ reference: `${reg.host}/test/app:nope` })
      const events = await stream.until(() => false)
      expect(events.at(-1)).toEqual({
        event: 'error',
        data: { status: 404, error: expect.objectContaining({ code: 'MANIFEST_UNKNOWN' }) },
      })
      expect((await s.call('GET', '/v1/images')).body).toEqual([])
    },
  )

  itReg(
    "the registry's failures are 502: it refuses the server's credentials (UNAUTHORIZED, not 401), serves a corrupt blob (DIGEST_MISMATCH), or cannot be reached (REGISTRY_UNREACHABLE); with its own auth file the server logs in",
    async () => {
      const locked = await startRegistry({ htpasswd: true })
      closers.push(() => locked.stop())
      skopeo(
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        `${testUser.username}:${testUser.password}`,
        `oci:${layout}:base`,
        `docker://${locked.host}/test/base:v1`,
      )
      const closed = `127.0.0.1:${await freePort()}`
      const small = built.v2!.layers[1]!
      const corrupt = await proxy({
        rewrite: (req, body) => {
          if (!req.url?.endsWith(`/blobs/${small}`)) return body
          const b = Buffer.from(body)
          b[b.length >> 1] = b[b.length >> 1]! ^ 0xff
          return b
        },
      })
      const s = await startServer({ allowRegistry: [locked.host, closed, corrupt.host] })
      const anon = await s.call('POST', '/v1/images/pull', { reference: `${locked.host}/test/base:v1` })
      expect(anon.status).toBe(502)
      expect(anon.body.error.code).toBe('UNAUTHORIZED')
      const bad = await s.call('POST', '/v1/images/pull', { reference: `${corrupt.host}/test/app:oci` })
      expect(bad.status).toBe(502)
      expect(bad.body.error.code).toBe('DIGEST_MISMATCH')
      expect(bad.body.error.message).toContain(small)
      expect(blobFiles(s.store)).not.toContain(small.slice(7))
      const gone = await s.call('POST', '/v1/images/pull', { reference: `${closed}/test/app:oci` })
      expect(gone.status).toBe(502)
      expect(gone.body.error.code).toBe('REGISTRY_UNREACHABLE')

      const authFile = join(work, 'server-auth.json')
      const auth = Buffer.from(`${testUser.username}:${testUser.password}`).toString('base64')
      writeFileSync(authFile, JSON.stringify({ auths: { [locked.host]: { auth } } }), { mode: 0o600 })
      const t = await startServer({ allowRegistry: [locked.host], images: { authFile } })
      const ok = await t.call('POST', '/v1/images/pull', { reference: `${locked.host}/test/base:v1` })
      expect(ok.status, ok.raw.toString()).toBe(200)
      expect(ok.body.id).toBe(built.base!.config)
      // Nothing of the credentials comes back to a client.
      expect(ok.raw.toString()).not.toContain(testUser.password)
      expect(ok.raw.toString()).not.toContain(auth)
    },
  )
})

describe('what a client may pull (server-side request forgery)', () => {
  itReg(
    'by default loopback, link-local and private registries are refused (403 naming reference) before any connection; so are file transports; a registry not in --allow-registry is refused too',
    async () => {
      const w = await witness()
      const port = w.host.split(':')[1]
      const s = await startServer()
      for (const reference of [
        `${w.host}/test/app:oci`,
        `localhost:${port}/test/app:oci`,
        `[::1]:${port}/test/app:oci`,
        `2130706433:${port}/test/app:oci`, // 127.0.0.1 as a URL reads it
        '169.254.169.254/latest/meta-data:x',
        '10.1.2.3:5000/internal/app:1',
        '[fd00::1]:5000/internal/app:1',
        `[::ffff:7f00:1]:${port}/test/app:oci`, // 127.0.0.1, IPv4-mapped
      ]) {
        const r = await s.call('POST', '/v1/images/pull', { reference })
        expect(r.status, `${reference}: ${r.raw.toString()}`).toBe(403)
        expect(r.body.error).toMatchObject({ code: 'EPERM', field: 'reference' })
        expect(r.body.error.message).toMatch(/^reference: registry .* is at .*(loopback|link-local|private)/)
        expect(r.body.error.message).toContain('--allow-registry')
      }
      // Refused before the stream starts: a plain 403.
      const stream = s.pullEvents({ reference: `${w.host}/test/app:oci` })
      expect(await stream.opened).toMatchObject({ status: 403, body: { error: { field: 'reference' } } })
      for (const reference of ['oci:/etc', 'oci-archive:/etc/shadow', 'docker-archive:/etc/passwd']) {
        const r = await s.call('POST', '/v1/images/pull', { reference })
        expect(r.status, reference).toBe(403)
        expect(r.body.error.field).toBe('reference')
        expect(r.body.error.message).toContain('POST /v1/images/load')
      }
      expect(w.hits).toEqual([])

      const listed = await startServer({ allowRegistry: [reg.host] })
      const other = await listed.call('POST', '/v1/images/pull', { reference: `${w.host}/test/app:oci` })
      expect(other.status).toBe(403)
      expect(other.body.error.message).toContain(`registry ${w.host} is not one this server pulls from`)
      expect(w.hits).toEqual([])
      expect((await listed.call('POST', '/v1/images/pull', { reference: `${reg.host}/test/base:v1` })).status).toBe(200)
    },
  )

  itReg(
    'a listed registry that redirects a blob, or sends the token request, to an address not listed: the connection is refused as it is made (403), and nothing reaches that address',
    async () => {
      const w = await witness()
      const big = built.v2!.layers[0]!
      const redirecting = await proxy({
        intercept: (req, res) => {
          if (!req.url?.endsWith(`/blobs/${big}`)) return false
          res.writeHead(307, { Location: `${w.url}${req.url}` }).end()
          return true
        },
      })
      const challenging = await proxy({
        intercept: (req, res) => {
          if (req.headers.authorization) return false
          res
            .writeHead(401, { 'WWW-Authenticate': `Bearer realm="${w.url}/token",service="x"` })
            .end('{"errors":[{"code":"UNAUTHORIZED"}]}')
          return true
        },
      })
      const s = await startServer({ allowRegistry: [redirecting.host, challenging.host] })
      const r = await s.call('POST', '/v1/images/pull', { reference: `${redirecting.host}/test/app:oci` })
      expect(r.status, r.raw.toString()).toBe(403)
      expect(r.body.error).toMatchObject({ code: 'EPERM', field: 'reference' })
      expect(r.body.error.message).toContain(`connection to 127.0.0.1 refused: a loopback address`)
      expect(blobFiles(s.store)).not.toContain(big.slice(7))
      expect((await s.call('GET', '/v1/images')).body).toEqual([])

      const stream = s.pullEvents({ reference: `${challenging.host}/test/app:oci` })
      const events = await stream.until(() => false)
      expect(events.at(-1)).toEqual({
        event: 'error',
        data: { status: 403, error: expect.objectContaining({ code: 'EPERM', field: 'reference' }) },
      })
      expect(w.hits).toEqual([])
    },
  )
})

describe('the API description', () => {
  itReg(
    'every image route is in /openapi.json, the pull with its event stream, load with its archive body',
    async () => {
      const s = await startServer()
      const doc = (await s.call('GET', '/openapi.json')).body
      const paths = doc.paths as Record<string, Record<string, any>>
      expect(Object.keys(paths['/v1/images/pull']!)).toEqual(['post'])
      expect(Object.keys(paths['/v1/images']!)).toEqual(['get'])
      expect(Object.keys(paths['/v1/images/{ref}']!).sort()).toEqual(['delete', 'get'])
      expect(Object.keys(paths['/v1/images/{ref}/tag']!)).toEqual(['post'])
      expect(Object.keys(paths['/v1/images/prune']!)).toEqual(['post'])
      expect(Object.keys(paths['/v1/images/load']!)).toEqual(['post'])
      expect(Object.keys(paths['/v1/images/{ref}/save']!)).toEqual(['get'])
      const pull = paths['/v1/images/pull']!.post
      expect(Object.keys(pull.responses['200'].content).sort()).toEqual(['application/json', 'text/event-stream'])
      expect(Object.keys(pull.responses).sort()).toEqual(
        ['200', '400', '401', '403', '404', '413', '429', '500', '502', '503', '507'].sort(),
      )
      expect(pull.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/PullBody')
      expect(Object.keys(paths['/v1/images/load']!.post.requestBody.content)).toContain('application/x-tar')
      expect(paths['/v1/images/{ref}/save']!.get.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
        'format',
        'ref',
      ])
      expect(doc.components.schemas.Image.properties.layers).toBeDefined()
      expect(doc.tags.map((t: { name: string }) => t.name)).toContain('images')
      const docs = await s.call('GET', '/docs')
      expect(docs.raw.toString()).toContain('/v1/images/pull')
    },
  )
})
