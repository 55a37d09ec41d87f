// @ns/core's warm sandboxes as contenders of tools/bench.mjs's start-up section: pool.run of
// /bin/true, the same container as @ns/core's run() set up ahead of time (a pool of 2 per network
// setting, kept for the whole run and closed after the lifecycle section).

import { FIXTURE } from '../bench-common.mjs'
import { ns, nsNamespaces } from './ns-core.mjs'
import { RUN_TIMEOUT_MS } from './processes.mjs'

const pools = new Map()

/** The options of a pool's sandboxes: those of @ns/core's run() of /bin/true. */
export const poolOptions = (net) => ({ rootfs: FIXTURE, namespaces: nsNamespaces(net), init: false })

/**
 * One pool.run of /bin/true, timed from pool.run() to the exit, once the pool is full again (the
 * refill of the sandbox the last run took is not timed: it happens in the background, while a
 * program does other work). A run that started cold counts as failed.
 */
export async function nsPoolOnce(net) {
  if (!pools.has(net)) pools.set(net, ns.pool({ size: 2, ...poolOptions(net) }))
  const p = pools.get(net)
  try {
    await p.warm()
  } catch (err) {
    return { ms: 0, ok: false, stderr: `warm: ${String(err?.message ?? err)}` }
  }
  const warm = p.stats.warm
  const t0 = process.hrtime.bigint()
  try {
    const r = await p.run(['/bin/true'], { timeout: RUN_TIMEOUT_MS })
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    const ok = r.exitCode === 0 && !r.timedOut && p.stats.warm === warm + 1
    const why = p.stats.warm === warm + 1 ? `exit ${r.exitCode}: ${r.stderr}` : 'it started cold'
    return { ms, ok, stderr: ok ? '' : why }
  } catch (err) {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    return { ms, ok: false, stderr: String(err?.message ?? err) }
  }
}

/** Ends every sandbox of the contenders' pools. */
export async function closePools() {
  for (const p of pools.values()) await p.close().catch(() => {})
  pools.clear()
}
