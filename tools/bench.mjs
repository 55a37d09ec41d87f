#!/usr/bin/env node
// Start-up benchmark: wall-clock time to start /bin/true fully isolated and
// wait for it to exit, for @ns/core and for the usual tools (unshare, bwrap,
// runc, crun). All contenders are measured in one run, interleaved: each
// iteration runs every contender once, in an order that rotates from one
// iteration to the next, so drift on the machine hits them all alike. The
// base order of the rotation is reshuffled after each full turn, so that no
// contender always follows the same one (a network namespace is torn down
// asynchronously, and would otherwise bill its cost to whoever comes next). Among them,
// @ns/core's warm sandboxes: pool.run of the same container set up ahead of time; after the
// lifecycle section, the memory of idle pooled sandboxes.
//
// A second section, measured the same way in rounds of its own, times the
// container lifecycle: ns-oci, crun and runc each doing create + start +
// delete --force of /bin/true on one OCI bundle, and @ns/core's detached
// create/start/wait/delete next to its foreground run(). Last, it reads the
// memory of the monitor process that watches one detached container.
//
// A CLI section, tools/bench-cli.mjs in a process of its own: the wall time of `ns --version`,
// `ns ps` and `ns run` (sandbox and rootfs) next to `node -e 0` and `podman run --rm`, as ratios.
//
// A third section, tools/bench-server.mjs run in a process of its own, drives
// `ns serve` over its unix socket: run-to-completion of /bin/true at concurrency
// 8, the four-call create/start/wait/delete, list and inspect under load, a leak
// check, podman's service side by side, and POST /v1/run over `ns serve --pool` (see that file).
//
//   node tools/bench.mjs [--iterations N] [--lifecycle-iterations N] [--warmup N] [--seed N]
//                        [--json FILE] [--no-install] [--no-server] [--server-containers N]
//                        [--no-cli] [--cli-iterations N]
//
// This is a report, not a test: it exits 0 when it completes, whether or not
// the targets are met. A contender that cannot run is reported as skipped.
//
// The sections live in tools/bench/: options.mjs (the command line), startup.mjs and
// lifecycle.mjs (the contenders; with processes.mjs, ns-core.mjs, pool.mjs for the warm
// sandboxes, oci.mjs), measure.mjs (the rounds), monitor.mjs and pool-memory.mjs (the memory of
// the monitor and of idle pooled sandboxes), machine.mjs, report.mjs and targets.mjs (the tables
// and verdicts), sections.mjs (the sections run as programs of their own: a new one is
// registered there, its option added in options.mjs), json.mjs (--json).

import { readdirSync } from 'node:fs'
import path from 'node:path'
import { ensureFixture, openScratch, seededShuffle } from './bench-common.mjs'
import { writeJson } from './bench/json.mjs'
import { setupLifecycle } from './bench/lifecycle.mjs'
import { describeMachine, printMachine } from './bench/machine.mjs'
import { activeIn, firstRuns, measure } from './bench/measure.mjs'
import { monitorMemory } from './bench/monitor.mjs'
import { parseArgs } from './bench/options.mjs'
import { closePools } from './bench/pool.mjs'
import { poolMemory } from './bench/pool-memory.mjs'
import { killLive } from './bench/processes.mjs'
import { reportLifecycle, reportMonitor, reportPoolMemory, reportStartup } from './bench/report.mjs'
import { runSections } from './bench/sections.mjs'
import { installMissing, setupStartup } from './bench/startup.mjs'
import { judgeTargets } from './bench/targets.mjs'

const opts = parseArgs(process.argv.slice(2))

installMissing(opts.install)
const fixtureNote = ensureFixture()
const run = openScratch({ prog: 'bench', prefix: 'ns-bench-', what: 'stopping after the current run', first: killLive })
const stopped = () => run.interrupted

// ---------------------------------------------------------------- set-up

const setup = await setupStartup(run)
const { contenders } = setup
const lifecycleOn = opts.lifecycleIterations > 0
const lcSetup = await setupLifecycle(run, setup, lifecycleOn)
const { lifecycle } = lcSetup

// The order of the contenders, from a seed that --seed replays.
const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31)
const shuffle = seededShuffle(seed)

await firstRuns(contenders)
if (lifecycleOn) await firstRuns(lifecycle)
const machine = describeMachine(setup.tools.nsOciBin)

// ---------------------------------------------------------------- measure

console.log(`ns start-up benchmark: /bin/true, isolated, spawn to exit`)
console.log(`fixture: ${fixtureNote}`)
console.log(
  `${opts.warmup} warm-up + ${opts.iterations} timed runs per contender, interleaved round-robin in rotating order, reshuffled each full turn (${activeIn(contenders).length} contenders, seed ${seed})`,
)
if (lifecycleOn) {
  console.log(
    `lifecycle: ${opts.warmup} warm-up + ${opts.lifecycleIterations} timed cycles per contender, interleaved the same way, in rounds of their own (${activeIn(lifecycle).length} contenders)`,
  )
}

const rounds = { warmup: opts.warmup, shuffle, stopped }
const startup = await measure(contenders, { ...rounds, iterations: opts.iterations, tag: '' })
// The lifecycle section, then the monitor's memory, unless interrupted.
const lc =
  lifecycleOn && !stopped()
    ? await measure(lifecycle, { ...rounds, iterations: opts.lifecycleIterations, tag: 'lifecycle ' })
    : null
const monitor = lifecycleOn && !stopped() ? await monitorMemory(lcSetup.nsState) : null
// The contenders' warm sandboxes end here; then the memory of a filled pool's idle ones.
await closePools()
const poolMem = !stopped() ? await poolMemory() : null

// ---------------------------------------------------------------- report

printMachine(machine)
const start = reportStartup({ contenders, startup, setup })
const life = reportLifecycle({ lifecycle, lc, lcSetup, on: lifecycleOn })
if (lifecycleOn) reportMonitor(monitor)
reportPoolMemory(poolMem)
const targets = judgeTargets({ start, life, monitor, poolMem, lifecycleOn })

// Every container should be gone by now; whatever is left in a state
// directory is reported here, and force-deleted by the clean-up below.
const leftovers = []
for (const dir of readdirSync(run.tmp)) {
  if (!dir.endsWith('-state')) continue
  for (const id of readdirSync(path.join(run.tmp, dir))) leftovers.push(`${dir}/${id}`)
}
if (leftovers.length) console.log(`\nnote: containers left behind (force-deleted now): ${leftovers.join(', ')}`)

// ---------------------------------------------------------------- the sections run as programs of their own

const sections = await runSections(run, opts)

if (opts.json) {
  writeJson(opts, {
    startup,
    lc,
    setup,
    lcSetup,
    lifecycleOn,
    seed,
    machine,
    monitor,
    poolMem,
    leftovers,
    targets,
    sections,
    interrupted: run.interrupted,
    jsonRows: start.jsonRows,
    lcJsonRows: life.lcJsonRows,
  })
}

run.cleanup()
process.exit(run.interrupted ? 130 : 0)
