// The phases of tools/bench-server.mjs, in order, into one result: ns serve's run to
// completion (at the concurrency asked, then lower), a leak check, the four calls, list and
// inspect under load, a last leak check, POST /v1/run over ns serve --pool, the kernel's floor,
// and podman's service.

import { existsSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  ensureFixture,
  firstLine,
  hostFigures,
  FIXTURE,
  installPackages,
  lastLine,
  repoRoot,
  round,
  which,
} from '../../bench-common.mjs'
import { cycleJob, NS_CALLS, stepMedians } from './api.mjs'
import { client, describe, phaseResult, pool, summary } from './client.mjs'
import { cpuMark, cpuPerContainer } from './cpu.mjs'
import { kernelFloor } from './floor.mjs'
import { leakCheck, snapshot } from './leaks.mjs'
import { deleteAll, listInspectLoad, NS_CLI, NS_CLI_DIST, nsRunJob, startNsServer } from './ns-serve.mjs'
import { poolPhases } from './ns-serve-pool.mjs'
import { podmanSection } from './podman.mjs'
import { stopGroup } from './processes.mjs'

/** A line about what runs now, for a person at a terminal only (as tools/bench.mjs does). */
const progress = (text) => {
  if (process.stderr.isTTY) process.stderr.write(text)
}

/** apt-get install what podman's section needs, as bench.mjs does for its tools; null, or why not. */
function installMissing(opts) {
  return installPackages(
    ['podman', 'runc'].filter((cmd) => !which(cmd)),
    opts.install,
  )
}

export async function runPhases(scratch, opts) {
  const { tmp } = scratch
  const started = Date.now()
  const result = {
    date: new Date().toISOString(),
    command: ['/bin/true'],
    fixture: FIXTURE,
    options: { ...opts, json: undefined },
    machine: {
      kernel: `${os.type()} ${os.release()}`,
      ...hostFigures(),
      loadAverageAtStart: os.loadavg().map((x) => round(x)),
      node: process.version,
      cgroups: existsSync('/sys/fs/cgroup/cgroup.controllers')
        ? 'v2'
        : existsSync('/sys/fs/cgroup/unified')
          ? 'hybrid (v1 + cgroup2 at /sys/fs/cgroup/unified)'
          : 'v1',
    },
    server: null,
    results: [],
    lifecycleSteps: null,
    serverSideRunMs: null,
    load: null,
    leaks: [],
    podman: null,
    ratio: null,
    targets: [],
    interrupted: false,
    notes: [],
  }

  if (!existsSync(NS_CLI) || !existsSync(NS_CLI_DIST)) {
    console.log(`server benchmark: skipped: ${path.relative(repoRoot, NS_CLI_DIST)} not built (npm run build)`)
    result.skipped = 'the CLI is not built'
    return result
  }
  const fixtureNote = ensureFixture()
  const body = { command: ['/bin/true'], rootfs: FIXTURE }
  const c = opts.concurrency

  console.log(`server benchmark: /bin/true over the HTTP API of ns serve, concurrency ${c}`)
  console.log(`fixture: ${fixtureNote}`)
  console.log(
    `machine: ${result.machine.cpus} x ${result.machine.cpuModel}, load average ${result.machine.loadAverageAtStart.join(' ')}; figures are noisy when other work runs`,
  )

  const tag = `NS_BENCH_SERVER_TAG=${process.pid}-${Date.now()}`
  const server = await startNsServer(scratch, tag)
  result.server = { command: server.argv.join(' ').replaceAll(tmp, '<tmp>'), pid: server.pid }
  console.log(`ns serve: ${result.server.command} (pid ${server.pid})`)
  const api = client(server.socket, c)
  const take = () => snapshot(server, server.root, tag)
  const before = take()

  try {
    // Warm-up: the server's first requests load code and fill caches.
    if (opts.warmup) await pool(scratch, opts.warmup, c, () => nsRunJob(api, body))

    // 1. run to completion, at concurrency c, then at 1.
    progress(`  POST /v1/run x ${opts.containers} at concurrency ${c}...\n`)
    const m0 = cpuMark(server.pid)
    const run = await pool(scratch, opts.containers, c, () => nsRunJob(api, body))
    const runRow = {
      ...phaseResult('ns serve POST /v1/run', run, c),
      key: 'ns-run',
      cpuPerContainer: cpuPerContainer(m0, cpuMark(server.pid), run.attempted),
    }
    result.results.push(runRow)
    result.serverSideRunMs = summary(run.extras.map((e) => e.serverMs))

    // 2. leak check after those containers.
    if (!scratch.interrupted)
      result.leaks.push(await leakCheck(scratch, `${opts.containers} containers (POST /v1/run)`, before, take))

    // The same at lower concurrencies: how the latency grows with the requests in flight.
    for (const k of opts.serialContainers ? opts.sweep.filter((k) => k !== c) : []) {
      if (scratch.interrupted) break
      progress(`  POST /v1/run x ${opts.serialContainers} at concurrency ${k}...\n`)
      const m1 = cpuMark(server.pid)
      const lower = await pool(scratch, opts.serialContainers, k, () => nsRunJob(api, body))
      const cpu = cpuPerContainer(m1, cpuMark(server.pid), lower.attempted)
      result.results.push({
        ...phaseResult(`ns serve POST /v1/run (concurrency ${k})`, lower, k),
        key: k === 1 ? 'ns-run-serial' : `ns-run-c${k}`,
        cpuPerContainer: cpu,
      })
      if (k === 1) result.serverSideRunMsSerial = summary(lower.extras.map((e) => e.serverMs))
    }

    // 3. the four calls.
    if (opts.lifecycleContainers && !scratch.interrupted) {
      progress(`  create+start+wait+delete x ${opts.lifecycleContainers} at concurrency ${c}...\n`)
      if (opts.warmup) await pool(scratch, Math.min(opts.warmup, c), c, () => cycleJob(api, NS_CALLS, body))
      const cyc = await pool(scratch, opts.lifecycleContainers, c, () => cycleJob(api, NS_CALLS, body))
      result.results.push({ ...phaseResult('ns serve create+start+wait+delete', cyc, c), key: 'ns-cycle' })
      result.lifecycleSteps = stepMedians(cyc.extras)
    }

    // 4. list and inspect under load, with detached containers running.
    if (opts.loadSeconds > 0 && !scratch.interrupted) {
      progress(
        `  GET /v1/containers[/{id}] for ${opts.loadSeconds} s with ${opts.loadContainers} detached containers...\n`,
      )
      const ids = []
      const made = await Promise.all(
        Array.from({ length: opts.loadContainers }, (_, i) =>
          api.request('POST', '/v1/containers', {
            command: ['sleep', '1000'],
            rootfs: FIXTURE,
            name: `nsbench-load-${i}`,
            start: true,
          }),
        ),
      )
      const createErrors = []
      for (const r of made) {
        if (r.status === 201 && r.body?.id) ids.push(r.body.id)
        else createErrors.push(describe('POST /v1/containers', r))
      }
      if (ids.length === 0) {
        result.load = { skipped: `no detached container could be created: ${createErrors[0]}` }
      } else {
        result.load = await listInspectLoad(scratch, api, ids, opts.loadSeconds, c)
        if (createErrors.length) result.load.createErrors = createErrors.slice(0, 5)
      }
      const dels = await Promise.all(
        ids.map((id) => api.request('DELETE', `/v1/containers/${encodeURIComponent(id)}?force=true`)),
      )
      const delFailed = dels.filter((r) => r.status !== 204)
      if (result.load && delFailed.length)
        result.load.deleteErrors = delFailed.slice(0, 5).map((r) => describe('DELETE ?force=true', r))
    }

    // 5. and again after everything.
    if (!scratch.interrupted) {
      await deleteAll(api)
      result.leaks.push(
        await leakCheck(
          scratch,
          'all ns containers of this run (also create/start/wait/delete and the detached ones)',
          before,
          take,
        ),
      )
    }
  } finally {
    api.close()
    if (scratch.interrupted) await deleteAll(client(server.socket, 1)).catch(() => {})
    await stopGroup(server.child)
  }
  result.retries = api.counters.retries
  result.serverStderr = lastLine(readFileSync(server.errFile, 'utf8'), '')

  // 5b. POST /v1/run over ns serve --pool: warm sandboxes of the same options as the body's.
  if (opts.poolSize && opts.poolContainers && !scratch.interrupted) {
    try {
      await poolPhases(scratch, opts, tag, body, result)
    } catch (err) {
      result.poolSkipped = `failed: ${firstLine(err?.message ?? err)}`
    }
  } else result.poolSkipped = 'left out (--pool-size 0 or --pool-containers 0)'

  // 6. the kernel's floor: what the namespaces alone cost here, with no runtime.
  if (opts.floorContainers && !scratch.interrupted) {
    progress(`  kernel floor: ${opts.floorContainers} bare containers at concurrency ${c}...\n`)
    result.floor = await kernelFloor(scratch, opts.floorContainers, c)
  }

  // 7. podman.
  if (!opts.podman) {
    result.podman = { skipped: 'left out (--no-podman or --podman-containers 0)' }
  } else if (!scratch.interrupted) {
    const why = installMissing(opts)
    const podmanBin = which('podman')
    if (!podmanBin || !which('runc')) {
      result.podman = { skipped: why ?? 'podman or runc not installed' }
    } else {
      progress(`  podman: create+start+wait+delete x ${opts.podmanContainers} at concurrency ${c}...\n`)
      try {
        result.podman = await podmanSection(scratch, opts, podmanBin)
      } catch (err) {
        result.podman = { skipped: `failed: ${firstLine(err?.message ?? err)}` }
      }
    }
    if (result.podman?.result) result.results.push({ ...result.podman.result, key: 'podman' })
  }

  result.interrupted = scratch.interrupted
  result.elapsedSeconds = round((Date.now() - started) / 1000, 1)
  return result
}
