// @ns/core as a contender of tools/bench.mjs, in this process: its import (or why it failed),
// a foreground run() of /bin/true, the detached create/start/wait/delete of the lifecycle
// section, and the forced delete of a detached container left behind.

import { firstLine, FIXTURE } from '../bench-common.mjs'
import { RUN_TIMEOUT_MS, uniqueId } from './processes.mjs'

export let ns = null
export let nsImportError = null

/** Imports @ns/core (once, before the contenders are made): `ns`, or else `nsImportError`. */
export async function loadNsCore() {
  if (ns || nsImportError) return
  try {
    ns = await import('@ns/core')
  } catch (err) {
    nsImportError = `cannot import @ns/core (${firstLine(err?.message)}); build it with npm run build`
  }
}

export const nsNamespaces = (net) => (net ? { cgroup: false } : { network: false, cgroup: false })

/** One foreground @ns/core run() of /bin/true, timed. */
export async function nsRunOnce(net) {
  const t0 = process.hrtime.bigint()
  try {
    const r = await ns.run({
      command: ['/bin/true'],
      rootfs: FIXTURE,
      namespaces: nsNamespaces(net),
      init: false,
      timeout: RUN_TIMEOUT_MS,
    })
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    const ok = r.exitCode === 0 && !r.timedOut
    return { ms, ok, stderr: ok ? '' : `exit ${r.exitCode}${r.signal ? ` (${r.signal})` : ''}: ${r.stderr}` }
  } catch (err) {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    return { ms, ok: false, stderr: String(err?.message ?? err) }
  }
}

/** Force-deletes a detached container of the state root `nsState`, if it is there. */
export async function nsForceDelete(id, nsState) {
  try {
    await new ns.DetachedContainer(id, nsState).delete({ force: true })
  } catch {
    /* gone, or never made */
  }
}

/** @ns/core detached: create, start, wait (polling every ms), delete; timed as a whole. */
export async function nsDetachedOnce(nsState) {
  const id = uniqueId('nsbench-det')
  let step = 'create'
  let timer = null
  const t0 = process.hrtime.bigint()
  try {
    const c = await ns.create({
      command: ['/bin/true'],
      rootfs: FIXTURE,
      namespaces: nsNamespaces(false),
      init: false,
      root: nsState,
      name: id,
    })
    step = 'start'
    await c.start()
    step = 'wait'
    // wait() polls for ever; a time-out here gives up, and the forced delete
    // below ends the poll (the container is gone), whose error is dropped.
    const waited = c.wait({ pollMs: 1 })
    waited.catch(() => {})
    const exit = await Promise.race([
      waited,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS)
      }),
    ])
    clearTimeout(timer)
    step = 'delete'
    await c.delete()
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    const ok = exit.exitCode === 0
    return {
      ms,
      ok,
      stderr: ok
        ? ''
        : `/bin/true ended with exit ${exit.exitCode ?? '?'}${exit.signal ? `, signal ${exit.signal}` : ''}`,
    }
  } catch (err) {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    clearTimeout(timer)
    await nsForceDelete(id, nsState)
    return { ms, ok: false, stderr: `${step}: ${firstLine(err?.message ?? err)}` }
  }
}
