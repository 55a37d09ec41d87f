// The JSON file of tools/bench.mjs (--json FILE): every section's results in one tree.

import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { FIXTURE } from '../bench-common.mjs'
import { crunWorkaround, HYBRID_CONTROLLERS } from './oci.mjs'
import { lcApproach, lcCrunNote, lcNsNote } from './report.mjs'

/** Writes the results to `opts.json`; `sections` are those of sections.mjs, by key. */
export function writeJson(opts, r) {
  const { startup, lc, setup, lcSetup } = r
  const out = {
    date: new Date().toISOString(),
    command: '/bin/true',
    fixture: FIXTURE,
    iterations: opts.iterations,
    rounds: startup.rounds,
    warmup: opts.warmup,
    seed: r.seed,
    interrupted: r.interrupted,
    elapsedSeconds: startup.elapsed,
    machine: r.machine,
    crunWorkaround: crunWorkaround
      ? {
          applied: true,
          reason: 'crun refuses the hybrid cgroup layout',
          wrapper: `unshare --mount --propagation private sh -c 'mount --bind /dev/null ${HYBRID_CONTROLLERS} && exec crun ...'`,
          adjustment:
            'wrapper-subtracted rows = crun medians (and p10/p90) minus the median of the wrapper running /bin/true',
        }
      : { applied: false },
    ociConfigEdits: setup.configEdits,
    results: r.jsonRows,
    lifecycle: r.lifecycleOn
      ? {
          command: '/bin/true',
          network: false,
          iterations: opts.lifecycleIterations,
          rounds: lc?.rounds ?? 0,
          warmup: opts.warmup,
          elapsedSeconds: lc?.elapsed ?? 0,
          approach: lcApproach,
          deleteAfterStart: 'delete --force right after start, for all three runtimes',
          bundle: !lcSetup.lcBundle
            ? null
            : lcSetup.lcBundle === setup.bundles[false]
              ? 'the start-up bundle without network namespace'
              : 'the start-up bundle without network namespace, minus its /sys/fs/cgroup mount',
          bundleNotes: lcSetup.lcBundleNotes,
          nsOciRefusedStartupBundle: lcSetup.nsOciRefusal,
          crunWorkaround: crunWorkaround
            ? {
                applied: true,
                wrapper: `unshare --mount --propagation private sh -c 'mount --bind /dev/null ${HYBRID_CONTROLLERS} && crun create ... && crun start ... && exec crun delete --force ...'`,
                adjustment:
                  'wrapper-subtracted row = crun cycle median (and p10/p90) minus the median of the wrapper running /bin/true once',
                note: lcCrunNote,
              }
            : { applied: false },
          nsCore: lcNsNote,
          results: r.lcJsonRows,
        }
      : null,
    monitorMemory: r.monitor,
    poolMemory: r.poolMem,
    leftovers: r.leftovers,
    targets: r.targets,
    ...r.sections,
  }
  mkdirSync(path.dirname(opts.json), { recursive: true })
  writeFileSync(opts.json, `${JSON.stringify(out, null, 2)}\n`)
  console.log(`\nwrote ${opts.json}`)
}
