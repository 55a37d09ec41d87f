// The report of tools/bench-server.mjs: its table, ratios and targets (which it adds to the
// result), the pool's warm and cold runs, CPU per container, the kernel's floor, podman's
// figures, the load test and the leak checks.

import { fmt, printTable, round } from '../../bench-common.mjs'
import { leakLine, nsCgroupDirs } from './leaks.mjs'

const TARGET_RATIO = 20
const TARGET_MEDIAN_MS = 15

export function report(r) {
  if (r.skipped) return
  console.log('')
  console.log(
    `server: run-to-completion of /bin/true over the API, concurrency ${r.options.concurrency}${r.interrupted ? ' (interrupted)' : ''}`,
  )
  const rows = [['contender', 'containers', 'median ms', 'p90 ms', 'p99 ms', 'containers/s', 'failed']]
  for (const x of r.results) {
    rows.push([
      x.contender,
      String(x.containers),
      fmt(x.medianMs),
      fmt(x.p90Ms),
      fmt(x.p99Ms),
      fmt(x.containersPerSecond, 1),
      String(x.failed),
    ])
  }
  if (r.podman?.skipped) rows.push(['podman service (docker API)', `skipped: ${r.podman.skipped}`])
  printTable(rows, { rule: false })

  const nsRun = r.results.find((x) => x.key === 'ns-run')
  const nsCycle = r.results.find((x) => x.key === 'ns-cycle')
  const pm = r.results.find((x) => x.key === 'podman')
  const ratioRun = nsRun && pm && pm.containersPerSecond > 0 ? nsRun.containersPerSecond / pm.containersPerSecond : null
  const ratioCycle =
    nsCycle && pm && pm.containersPerSecond > 0 ? nsCycle.containersPerSecond / pm.containersPerSecond : null
  r.ratio = { runVsPodman: round(ratioRun, 1), cycleVsPodman: round(ratioCycle, 1) }
  const median = nsRun?.medianMs ?? null
  console.log(
    `ratio ns/podman containers/s: ${ratioRun === null ? '-' : `${ratioRun.toFixed(1)}x`} (target >= ${TARGET_RATIO}x)` +
      `${ratioCycle === null ? '' : `; create+start+wait+delete ${ratioCycle.toFixed(1)}x`}; ns median ${fmt(median)} ms (target < ${TARGET_MEDIAN_MS} ms)`,
  )
  r.targets.push(
    {
      target: `ns serve POST /v1/run containers/s at least ${TARGET_RATIO}x podman's`,
      value: round(ratioRun, 1),
      met: ratioRun === null ? null : ratioRun >= TARGET_RATIO,
    },
    {
      target: `ns serve POST /v1/run median under ${TARGET_MEDIAN_MS} ms at concurrency ${r.options.concurrency}`,
      value: median,
      met: median === null ? null : median < TARGET_MEDIAN_MS,
    },
  )
  console.log(
    `  targets: ${r.targets.map((t) => `${t.target}: ${t.met === null ? 'unknown' : t.met ? 'met' : 'NOT met'}`).join('; ')}`,
  )
  if (r.poolSkipped) console.log(`  ns serve --pool: skipped: ${r.poolSkipped}`)
  for (const x of r.results.filter((x) => x.pool)) {
    // Against the cold POST /v1/run at the same concurrency.
    const cold = r.results.find((y) => !y.pool && y.key.startsWith('ns-run') && y.concurrency === x.concurrency)
    const vsRun = cold?.medianMs && x.medianMs !== null ? x.medianMs / cold.medianMs : null
    const vsPodman = pm && pm.containersPerSecond > 0 ? x.containersPerSecond / pm.containersPerSecond : null
    console.log(
      `  ${x.contender}: ${x.pool.warm} ran warm, ${x.pool.cold} cold; median ${vsRun === null ? '-' : `${vsRun.toFixed(2)}x`} the cold POST /v1/run's at concurrency ${x.concurrency}` +
        `${vsPodman === null ? '' : `, containers/s ${vsPodman.toFixed(1)}x podman's`}`,
    )
  }
  if (r.serverSideRunMs?.n) {
    console.log(
      `  POST /v1/run as the server times it (durationMs: spawn to exit, output drained): median ${fmt(r.serverSideRunMs.medianMs)} ms, p90 ${fmt(r.serverSideRunMs.p90Ms)} ms` +
        `${r.serverSideRunMsSerial?.n ? `; at concurrency 1: median ${fmt(r.serverSideRunMsSerial.medianMs)} ms` : ''}`,
    )
  }
  for (const x of r.results) {
    const u = x.cpuPerContainer
    if (!u) continue
    console.log(
      `  CPU per container, ${x.contender.replace('ns serve ', '')}: ${fmt(u.totalMs)} ms on the whole machine = server's node ${fmt(u.serverNodeMs)}` +
        ` + its ns-oci helpers ${fmt(u.helpersMs)} + this client ${fmt(u.clientMs)} + other ${fmt(u.otherMs)} (kernel threads, other work)`,
    )
  }
  for (const x of r.results) {
    const u = x.cpuPerContainer
    if (u && u.totalMs > 0 && u.otherMs / u.totalMs > 0.25) {
      console.log(
        `  note: ${((100 * u.otherMs) / u.totalMs).toFixed(0)}% of the machine's CPU during "${x.contender}" went to other work: its figures are disturbed`,
      )
    }
  }
  if (nsRun?.cpuPerContainer?.totalMs) {
    const cpus = r.machine.cpus
    const cap = (cpus * 1000) / nsRun.cpuPerContainer.totalMs
    const need = (cpus * TARGET_MEDIAN_MS) / r.options.concurrency
    console.log(
      `  at that cost ${cpus} CPUs run at most ~${cap.toFixed(0)} containers/s, so ${r.options.concurrency} requests in flight wait ~${fmt((r.options.concurrency / cap) * 1000, 1)} ms each` +
        ` (Little's law); a median under ${TARGET_MEDIAN_MS} ms at concurrency ${r.options.concurrency} needs at most ~${fmt(need, 2)} ms of CPU per container`,
    )
  }
  if (r.floor?.skipped) console.log(`  kernel floor: skipped: ${r.floor.skipped}`)
  else if (r.floor && nsRun?.cpuPerContainer?.totalMs) {
    const f = r.floor
    const floorWait = (r.options.concurrency / ((r.machine.cpus * 1000) / f.cpuPerContainerMs)) * 1000
    console.log(
      `  kernel floor (tools/bench-floor.c: 7 namespaces, id maps, bind + pivot_root, proc, exec /bin/true; no runtime, no HTTP): ${fmt(f.containersPerSecond, 1)} containers/s at concurrency ${f.concurrency},` +
        ` ${fmt(f.cpuPerContainerMs)} ms of CPU per container; ns serve's whole request (/dev, /sys, masked paths, seccomp, init, idmapped root, HTTP both ends) costs ${fmt(nsRun.cpuPerContainer.totalMs / f.cpuPerContainerMs, 1)}x that;` +
        ` the floor alone makes ${r.options.concurrency} in flight wait ~${fmt(floorWait, 1)} ms each`,
    )
  }
  // Median latency by requests in flight (the run phases, lowest concurrency first).
  const byConcurrency = r.results
    .filter((x) => x.key === 'ns-run' || x.key === 'ns-run-serial' || /^ns-run-c\d+$/.test(x.key))
    .sort((a, b) => a.concurrency - b.concurrency)
  if (byConcurrency.length > 1) {
    const under = byConcurrency.filter((x) => x.medianMs < TARGET_MEDIAN_MS).map((x) => x.concurrency)
    r.medianUnderTargetUpToConcurrency = under.length ? Math.max(...under) : 0
    console.log(
      `  median POST /v1/run by concurrency: ${byConcurrency.map((x) => `${x.concurrency}: ${fmt(x.medianMs)} ms (${fmt(x.containersPerSecond, 1)}/s)`).join(', ')}` +
        `; under ${TARGET_MEDIAN_MS} ms at ${under.length ? under.join(', ') : 'none'}`,
    )
  }
  if (r.lifecycleSteps) {
    const s = r.lifecycleSteps
    console.log(
      `  create+start+wait+delete, median of each call: create ${fmt(s.create)}, start ${fmt(s.start)}, wait ${fmt(s.wait)}, delete ${fmt(s.delete)} ms`,
    )
  }
  if (pm?.steps) {
    const s = pm.steps
    console.log(
      `  podman, median of each call: create ${fmt(s.create)}, start ${fmt(s.start)}, wait ${fmt(s.wait)}, delete ${fmt(s.delete)} ms`,
    )
  }
  if (r.podman && !r.podman.skipped) {
    console.log(
      `  podman: ${r.podman.version}, runtime ${r.podman.runtime}, NetworkMode ${r.podman.networkMode}, private storage; ${r.podman.warmup} warm-up containers`,
    )
  }
  if (r.podman?.cleanup) {
    const k = r.podman.cleanup
    console.log(
      `  podman clean-up: mounts left under its storage ${k.unmounted.length}${k.unmounted.length ? ` (unmounted: ${k.unmounted.join(', ')})` : ''}, ` +
        `processes of it left ${k.processesKilled}${k.processesKilled ? ' (killed)' : ''}, its cgroups under libpod_parent ${k.cgroupsLeft >= 0 ? '+' : ''}${k.cgroupsLeft}`,
    )
  }
  for (const x of r.results)
    if (x.failed) console.log(`  ${x.contender}: ${x.failed} failed; first errors: ${x.errors.join(' | ')}`)
  console.log(
    `  every container: ${JSON.stringify(r.command)} on the fixture rootfs, in a network namespace of its own without network (podman: NetworkMode none);` +
      ` ${r.options.warmup} untimed warm-up requests first;`,
  )
  console.log(
    '  latency is client-side, from sending the request to the end of the answer(s); containers/s = those that ended well / wall time.',
  )

  if (r.load) {
    const l = r.load
    if (l.skipped) console.log(`list/inspect under load: skipped: ${l.skipped}`)
    else {
      console.log(
        `list/inspect under load: ${fmt(l.requestsPerSecond, 0)} req/s, median ${fmt(l.medianMs)} ms, p99 ${fmt(l.p99Ms)} ms, failed ${l.failed}` +
          ` (${l.requests} requests in ${fmt(l.seconds, 1)} s at concurrency ${l.concurrency}, ${l.detachedContainers} detached containers running;` +
          ` list median ${fmt(l.list.medianMs)} ms, inspect median ${fmt(l.inspect.medianMs)} ms)`,
      )
      if (l.failed) console.log(`  first errors: ${l.errors.join(' | ')}`)
      if (l.createErrors) console.log(`  creating the detached containers: ${l.createErrors.join(' | ')}`)
      if (l.deleteErrors) console.log(`  deleting the detached containers: ${l.deleteErrors.join(' | ')}`)
    }
  }
  for (const l of r.leaks) console.log(`leaks after ${l.after}: ${leakLine(l)}`)
  if (r.leaks.length) {
    console.log(
      '  processes: ns-oci helpers and monitors of this server (and theirs; its zygote left out); mounts: lines of /proc/self/mountinfo;',
    )
    console.log(
      `  cgroups: directories under ${nsCgroupDirs().length > 1 ? '/sys/fs/cgroup/*/ns' : '/sys/fs/cgroup/ns'}; state dirs: entries of the state root; zombies: ours, and any ns-oci`,
    )
  }
  if (r.retries)
    console.log(`  note: ${r.retries} request(s) sent again after a kept-alive connection was closed under them`)
}
