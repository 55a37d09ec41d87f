// POST /v1/run over `ns serve --pool N` for tools/bench-server.mjs: warm sandboxes of the
// body's options, one request at a time with the pool full before each (the warm latency over
// the API; the wait for the refill untimed), then back to back at the concurrency (the refill's
// cost in the way: some start cold once the pool runs dry). Each row says how many ran warm and
// how many cold (GET /v1/pool before and after).

import { client, describe, phaseResult, pool } from './client.mjs'
import { cpuMark, cpuPerContainer } from './cpu.mjs'
import { deleteAll, nsRunJob, startNsServer } from './ns-serve.mjs'
import { stopGroup } from './processes.mjs'

/** A line about what runs now, for a person at a terminal only (as tools/bench.mjs does). */
const progress = (text) => {
  if (process.stderr.isTTY) process.stderr.write(text)
}

/** The two phases over a server of their own, their rows pushed to `result.results`. */
export async function poolPhases(scratch, opts, tag, body, result) {
  const size = opts.poolSize
  const server = await startNsServer(
    scratch,
    tag,
    ['--pool', String(size), '--pool-options', JSON.stringify({ rootfs: body.rootfs })],
    'ns-pool',
  )
  const api = client(server.socket, opts.concurrency)
  const state = async () => {
    const r = await api.request('GET', '/v1/pool')
    if (r.status !== 200) throw new Error(describe('GET /v1/pool', r))
    return r.body
  }
  const full = async () => {
    for (const until = Date.now() + 20_000; Date.now() < until && !scratch.interrupted;) {
      if ((await state()).ready === size) return
      await new Promise((r) => setTimeout(r, 5))
    }
    throw new Error(`the pool did not fill within 20 s`)
  }
  try {
    await full()
    for (let i = 0; i < Math.min(opts.warmup, 20); i++) await nsRunJob(api, body)
    const phase = async (label, key, k, job) => {
      if (scratch.interrupted) return
      await full()
      const s0 = await state()
      const m0 = cpuMark(server.pid)
      const p = await pool(scratch, opts.poolContainers, k, job)
      const cpu = cpuPerContainer(m0, cpuMark(server.pid), p.attempted)
      const s1 = await state()
      result.results.push({
        ...phaseResult(label, p, k),
        key,
        cpuPerContainer: cpu,
        pool: { size, warm: s1.warm - s0.warm, cold: s1.cold - s0.cold },
      })
    }
    progress(
      `  ns serve --pool ${size}: POST /v1/run x ${opts.poolContainers}, one at a time, pool full before each...\n`,
    )
    await phase(`ns serve --pool ${size} POST /v1/run (concurrency 1, pool full)`, 'ns-pool-serial', 1, async () => {
      await full()
      return nsRunJob(api, body)
    })
    progress(`  ns serve --pool ${size}: POST /v1/run x ${opts.poolContainers} at concurrency ${opts.concurrency}...\n`)
    await phase(`ns serve --pool ${size} POST /v1/run`, 'ns-pool', opts.concurrency, () => nsRunJob(api, body))
  } finally {
    api.close()
    await deleteAll(client(server.socket, 1)).catch(() => {})
    await stopGroup(server.child)
  }
}
