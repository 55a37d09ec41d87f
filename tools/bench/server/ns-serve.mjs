// `ns serve` as tools/bench-server.mjs drives it: started on a socket and a state root of its
// own, stopped with whatever is left force-deleted, and the requests of its phases: POST
// /v1/run, and list and inspect under load.

import { spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import path from 'node:path'
import { firstLine, FIXTURE, forceDeleteLeftovers, repoRoot, round } from '../../bench-common.mjs'
import { serviceReady } from './api.mjs'
import { describe, now, summary } from './client.mjs'
import { stopGroupSync } from './processes.mjs'

export const NS_CLI = path.join(repoRoot, 'packages', 'cli', 'bin', 'ns.js')
export const NS_CLI_DIST = path.join(repoRoot, 'packages', 'cli', 'dist', 'index.js')
const NS_OCI = path.join(repoRoot, 'packages', 'native', 'bin', 'ns-oci')

/**
 * Start `ns serve` on a socket of our own, with the flags `extra`, in the folder `name` of the
 * scratch directory; resolves once GET /v1/health answers.
 */
export async function startNsServer(scratch, tag, extra = [], name = 'ns') {
  const dir = path.join(scratch.tmp, name)
  mkdirSync(dir)
  const socket = path.join(dir, 'ns.sock')
  const root = path.join(dir, 'state')
  const errFile = path.join(dir, 'serve.stderr')
  const errFd = openSync(errFile, 'w')
  // Its own process group: a Ctrl-C at the terminal reaches us, and we stop it once its
  // containers are gone. The request log (one JSON line per request on stdout) goes to /dev/null.
  const argv = [NS_CLI, '--root', root, 'serve', '--socket', socket, '--allow-bind', path.dirname(FIXTURE), ...extra]
  const child = spawn(process.execPath, argv, {
    stdio: ['ignore', 'ignore', errFd],
    detached: true,
    env: { ...process.env, NS_BENCH_SERVER_TAG: tag.split('=')[1] },
  })
  closeSync(errFd)
  const server = {
    child,
    pid: child.pid,
    socket,
    root,
    errFile,
    argv: ['node', path.relative(repoRoot, NS_CLI), ...argv.slice(1)],
  }
  scratch.steps.push(() => nsServerCleanupSync(server))
  const why = await serviceReady({
    name: 'ns serve',
    child,
    socket,
    probe: '/v1/health',
    ready: (r) => r.status === 200 && r.body?.ok === true,
    logFile: errFile,
    pollMs: 50,
    stopped: () => scratch.interrupted,
  })
  if (why) throw new Error(why)
  return server
}

/** Whatever is left in the server's state root is force-deleted, then the server stopped. Synchronous. */
export function nsServerCleanupSync(server) {
  forceDeleteLeftovers(server.root, existsSync(NS_OCI) ? NS_OCI : null)
  stopGroupSync(server.child)
}

/** Force-delete every container of the server, over its API. */
export async function deleteAll(c) {
  const r = await c.request('GET', '/v1/containers')
  if (r.status !== 200 || !Array.isArray(r.body)) return
  await Promise.all(r.body.map((s) => c.request('DELETE', `/v1/containers/${encodeURIComponent(s.id)}?force=true`)))
}

export async function nsRunJob(c, body) {
  const r = await c.request('POST', '/v1/run', body)
  if (r.status !== 200) return { ok: false, ms: r.ms, error: describe('POST /v1/run', r) }
  if (r.body?.exitCode !== 0) {
    return {
      ok: false,
      ms: r.ms,
      error: `POST /v1/run: exitCode ${r.body?.exitCode}${r.body?.signal ? ` (${r.body.signal})` : ''}${r.body?.stderr ? `: ${firstLine(r.body.stderr)}` : ''}`,
    }
  }
  return { ok: true, ms: r.ms, extra: { serverMs: r.body.durationMs } }
}

/** GET /v1/containers and GET /v1/containers/{id}, alternately, by every worker, for `seconds`. */
export async function listInspectLoad(scratch, c, ids, seconds, workers) {
  const byKind = { list: [], inspect: [] }
  const errors = []
  let failures = 0
  let n = 0
  const t0 = now()
  const end = t0 + seconds * 1000
  const worker = async (w) => {
    for (let k = w; now() < end && !scratch.interrupted; k++) {
      const list = k % 2 === 0
      const id = ids[n++ % ids.length]
      const r = list
        ? await c.request('GET', '/v1/containers')
        : await c.request('GET', `/v1/containers/${encodeURIComponent(id)}`)
      let error = null
      if (r.status !== 200) error = describe(list ? 'GET /v1/containers' : `GET /v1/containers/${id}`, r)
      else if (list && (!Array.isArray(r.body) || r.body.length < ids.length))
        error = `GET /v1/containers: ${Array.isArray(r.body) ? r.body.length : 'no'} containers listed, ${ids.length} expected`
      else if (!list && (r.body?.id !== id || r.body?.status !== 'running'))
        error = `GET /v1/containers/${id}: ${r.body?.id} ${r.body?.status}, expected running`
      if (error) {
        failures++
        if (errors.length < 5) errors.push(error)
      } else {
        byKind[list ? 'list' : 'inspect'].push(r.ms)
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)))
  const wallMs = now() - t0
  const all = [...byKind.list, ...byKind.inspect]
  return {
    concurrency: workers,
    detachedContainers: ids.length,
    seconds: round(wallMs / 1000, 3),
    requests: all.length + failures,
    requestsPerSecond: round((all.length + failures) / (wallMs / 1000), 1),
    failed: failures,
    errors,
    ...summary(all),
    list: summary(byKind.list),
    inspect: summary(byKind.inspect),
  }
}
