// The HTTP client of tools/bench-server.mjs: keep-alive requests over a unix socket, a pool of
// workers sending them back to back, and the summary of their latencies.

import http from 'node:http'
import { firstLine, quantile, round } from '../../bench-common.mjs'

const REQUEST_TIMEOUT_MS = 60_000

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
export const now = () => Number(process.hrtime.bigint()) / 1e6

export function summary(samples) {
  const s = [...samples].sort((a, b) => a - b)
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN
  return {
    n: s.length,
    medianMs: round(quantile(s, 0.5)),
    p90Ms: round(quantile(s, 0.9)),
    p99Ms: round(quantile(s, 0.99)),
    minMs: round(s[0] ?? NaN),
    maxMs: round(s.at(-1) ?? NaN),
    meanMs: round(mean),
  }
}

/** A keep-alive client of one unix socket. */
export function client(socketPath, concurrency) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency })
  const counters = { retries: 0 }
  /**
   * One request; resolves { status, body, ms, error }, never rejects. A request on a reused
   * keep-alive connection that the server had closed meanwhile (ECONNRESET before any answer)
   * is sent again once, as Node's documentation advises; such retries are counted.
   */
  function request(method, urlPath, body, retry = true) {
    return new Promise((resolve) => {
      const payload = body === undefined ? null : Buffer.from(JSON.stringify(body))
      const headers = payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}
      const t0 = now()
      let settled = false
      const done = (r) => {
        if (settled) return
        settled = true
        resolve({ ms: now() - t0, ...r })
      }
      const req = http.request({ socketPath, path: urlPath, method, headers, agent }, (res) => {
        const chunks = []
        res.on('data', (c) => chunks.push(c))
        res.on('error', (err) => done({ status: res.statusCode, body: null, error: err.message }))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let parsed = text
          if ((res.headers['content-type'] ?? '').includes('json') && text) {
            try {
              parsed = JSON.parse(text)
            } catch {
              /* keep the text */
            }
          }
          done({ status: res.statusCode, body: parsed, error: null })
        })
      })
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)))
      req.on('error', (err) => {
        if (settled) return
        if (retry && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          counters.retries++
          settled = true
          request(method, urlPath, body, false).then(resolve)
          return
        }
        done({ status: null, body: null, error: `${err.code ?? 'error'}: ${err.message}` })
      })
      req.end(payload ?? undefined)
    })
  }
  return { request, agent, counters, close: () => agent.destroy() }
}

/** What went wrong with a response, as one line. */
export function describe(what, r) {
  if (r.error) return `${what}: ${r.error}`
  const msg =
    r.body?.error?.message ?? r.body?.message ?? r.body?.cause ?? (typeof r.body === 'string' ? firstLine(r.body) : '')
  return `${what}: HTTP ${r.status}${msg ? ` ${msg}` : ''}`
}

/**
 * `count` jobs by `workers` workers, each taking the next job as soon as it is done with one.
 * `job(i)` resolves { ok, ms, error?, extra? }. Returns samples of the good ones, the failures,
 * and the wall time from the first start to the last end.
 */
export async function pool(scratch, count, workers, job) {
  const samples = []
  const extras = []
  const errors = []
  let next = 0
  let failures = 0
  const t0 = now()
  const worker = async () => {
    while (!scratch.interrupted) {
      const i = next++
      if (i >= count) return
      const r = await job(i)
      if (r.ok) {
        samples.push(r.ms)
        if (r.extra) extras.push(r.extra)
      } else {
        failures++
        if (errors.length < 5) errors.push(r.error)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(workers, count) }, worker))
  const wallMs = now() - t0
  return { samples, extras, failures, errors, wallMs, attempted: Math.min(next, count) }
}

export function phaseResult(label, p, concurrency) {
  const s = summary(p.samples)
  return {
    contender: label,
    concurrency,
    containers: p.attempted,
    ok: p.samples.length,
    failed: p.failures,
    errors: p.errors,
    wallSeconds: round(p.wallMs / 1000, 3),
    // Containers that ran and ended well, over the wall time of the phase.
    containersPerSecond: round(p.samples.length / (p.wallMs / 1000), 1),
    ...s,
  }
}
