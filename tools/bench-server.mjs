#!/usr/bin/env node
// Server benchmark and load test: `ns serve` driven over its unix socket, as an HTTP client
// would drive it, next to podman's service driven over its Docker-compatible API.
//
//   1. run-to-completion of /bin/true: POST /v1/run, N containers by `concurrency` workers that
//      each send requests back to back (and the same at concurrency 1, for comparison);
//   2. the four-call variant: POST /v1/containers, .../start, .../wait, DELETE;
//   3. list and inspect under load: GET /v1/containers and GET /v1/containers/{id} hammered for a
//      few seconds while some detached containers (sleep 1000) run;
//   4. a leak check after the run-to-completion containers, and again after everything:
//      processes, mounts, cgroups, state directories, zombies;
//   5. the kernel's floor: tools/bench-floor.c (namespaces, id maps, pivot_root, proc, exec; no
//      runtime) at the same concurrency, what no runtime can go below on this machine;
//   6. podman's service doing create + start + wait + delete of the same rootfs, for comparison;
//   7. POST /v1/run over `ns serve --pool N` (warm sandboxes of the body's options): one at a
//      time with the pool full, and back to back at the concurrency, with how many ran warm.
//
//   node tools/bench-server.mjs [--containers N] [--concurrency N] [--json FILE] [options]
//
// This is a report, not a test: it exits 0 when it completes (130 when interrupted), whether
// or not the targets are met. Everything it starts is stopped, and its temporary directory
// removed, on every way out (but SIGKILL).
//
// The phases live in tools/bench/server/: options.mjs (the command line), phases.mjs (the
// phases in order), ns-serve.mjs, ns-serve-pool.mjs (over --pool), podman.mjs and floor.mjs (the
// contenders), api.mjs and client.mjs (the HTTP side), cpu.mjs and leaks.mjs (what is measured
// besides time), report.mjs (the report).

import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { firstLine, mountsUnder, openScratch } from './bench-common.mjs'
import { parseArgs } from './bench/server/options.mjs'
import { runPhases } from './bench/server/phases.mjs'
import { report } from './bench/server/report.mjs'

const opts = parseArgs(process.argv.slice(2))

// Everything the phases start is registered in scratch.steps, and stopped on every way out.
const scratch = openScratch({
  prog: 'bench-server',
  prefix: 'ns-bench-server-',
  what: 'stopping and cleaning up',
  onStepError: (err) => console.error(`bench-server: clean-up step failed: ${firstLine(err?.message ?? err)}`),
})
process.on('uncaughtException', (err) => {
  console.error(`bench-server: ${err?.stack ?? err}`)
  scratch.cleanup()
  process.exit(1)
})

let result = null
let failed = null
try {
  result = await runPhases(scratch, opts)
} catch (err) {
  failed = err
}
if (failed) {
  console.log(`server benchmark: failed: ${scratch.interrupted ? 'interrupted' : firstLine(failed?.message ?? failed)}`)
}
scratch.cleanup()
const stillMounted = mountsUnder(scratch.tmp)
if (result) {
  if (stillMounted.length) result.notes.push(`still mounted after clean-up: ${stillMounted.join(', ')}`)
  report(result)
  if (stillMounted.length) console.log(`note: still mounted after clean-up: ${stillMounted.join(', ')}`)
  if (opts.json) {
    mkdirSync(path.dirname(opts.json), { recursive: true })
    writeFileSync(opts.json, `${JSON.stringify(result, null, 2)}\n`)
    // Run by tools/bench.mjs, which merges the file into its own: no line about it.
    if (!process.env.NS_BENCH_SERVER_EMBEDDED) console.log(`\nwrote ${opts.json}`)
  }
}
process.exit(scratch.interrupted ? 130 : failed ? 1 : 0)
