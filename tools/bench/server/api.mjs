// What tools/bench-server.mjs asks of both services it drives, ns serve and podman's: that
// one answers once started, and the four calls of a detached container (create, start,
// wait, delete) in either API.

import { existsSync, readFileSync } from 'node:fs'
import { lastLine, quantile, round } from '../../bench-common.mjs'
import { client, describe, now, sleep } from './client.mjs'

const START_TIMEOUT_MS = 20_000
export const PODMAN_API = '/v1.41'

/**
 * Waits for a service we started (`child`) to answer on the unix socket it was told to make:
 * GET `probe` every `pollMs` until `ready(answer)`, for up to START_TIMEOUT_MS. Resolves null once
 * it is ready, or else why not: its exit and the last line of its log, the time-out, or
 * 'interrupted' (once `stopped()`).
 */
export async function serviceReady({ name, child, socket, probe, ready, logFile, pollMs, stopped }) {
  const c = client(socket, 1)
  try {
    const until = Date.now() + START_TIMEOUT_MS
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        return `${name} exited (${child.exitCode ?? child.signalCode}): ${lastLine(readFileSync(logFile, 'utf8'), 'no message')}`
      }
      if (existsSync(socket)) {
        const r = await c.request('GET', probe)
        if (ready(r)) return null
      }
      if (Date.now() > until) return `${name} did not answer GET ${probe} within ${START_TIMEOUT_MS / 1000} s`
      if (stopped()) return 'interrupted'
      await sleep(pollMs)
    }
  } finally {
    c.close()
  }
}

/**
 * How the four calls of a detached container go in one API: where its containers are, what
 * the create call is named and answers with, the statuses of a start and a delete that went
 * well, how the delete is sent, and what the wait's answer says of an exit that was not 0.
 */
export const NS_CALLS = {
  containers: '/v1/containers',
  create: { path: '/v1/containers', what: 'POST /v1/containers', id: (b) => b?.id },
  startStatus: [200],
  delete: { query: '', what: 'DELETE', statuses: [204] },
  badExit: (b) => (b?.exitCode === 0 ? null : `exitCode ${b?.exitCode}${b?.signal ? ` (${b.signal})` : ''}`),
}

export const PODMAN_CALLS = {
  containers: `${PODMAN_API}/containers`,
  create: { path: `${PODMAN_API}/containers/create`, what: 'create', id: (b) => b?.Id },
  startStatus: [204],
  delete: { query: '?force=true', what: 'delete', statuses: [204, 200] },
  badExit: (b) =>
    b?.StatusCode === 0 ? null : `StatusCode ${b?.StatusCode}${b?.Error?.Message ? `: ${b.Error.Message}` : ''}`,
}

/**
 * create, start, wait, delete: the four calls of a detached container, timed as a whole and one
 * by one, in the API that `calls` describes. A container left behind by a failed call is
 * force-deleted.
 */
export async function cycleJob(c, calls, body) {
  const t0 = now()
  const steps = {}
  const at = (id) => `${calls.containers}/${encodeURIComponent(id)}`
  const fail = async (what, r, id) => {
    if (id) await c.request('DELETE', `${at(id)}?force=true`)
    return { ok: false, ms: now() - t0, error: describe(what, r) }
  }
  const step = async (name, method, urlPath, payload) => {
    const r = await c.request(method, urlPath, payload)
    steps[name] = r.ms
    return r
  }
  const cr = await step('create', 'POST', calls.create.path, body)
  const id = calls.create.id(cr.body)
  if (cr.status !== 201 || typeof id !== 'string') return fail(calls.create.what, cr, id)
  const st = await step('start', 'POST', `${at(id)}/start`)
  if (!calls.startStatus.includes(st.status)) return fail('start', st, id)
  const wt = await step('wait', 'POST', `${at(id)}/wait`)
  if (wt.status !== 200) return fail('wait', wt, id)
  const del = await step('delete', 'DELETE', `${at(id)}${calls.delete.query}`)
  if (!calls.delete.statuses.includes(del.status)) return fail(calls.delete.what, del, id)
  const badExit = calls.badExit(wt.body)
  if (badExit) return { ok: false, ms: now() - t0, error: `wait: ${badExit}` }
  return { ok: true, ms: now() - t0, extra: steps }
}

export function stepMedians(extras) {
  const out = {}
  for (const k of ['create', 'start', 'wait', 'delete'])
    out[k] = round(
      quantile(
        extras.map((e) => e[k]).sort((a, b) => a - b),
        0.5,
      ),
    )
  return out
}
