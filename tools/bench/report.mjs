// The tables of tools/bench.mjs's two measured sections, start-up and lifecycle, with their
// notes, the monitor's memory and that of idle pooled sandboxes; each gives back its rows for the JSON and the medians the
// targets are judged on.

import path from 'node:path'
import { FIXTURE, fmt, printTable, quantile, repoRoot } from '../bench-common.mjs'
import { crunWorkaround, HYBRID_CONTROLLERS } from './oci.mjs'

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b)
  return { n: s.length, median: quantile(s, 0.5), p10: quantile(s, 0.1), p90: quantile(s, 0.9) }
}

export const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null)
export const fmtRatio = (r) => (r === null ? '-' : `${r.toFixed(2)}x`)

/**
 * The rows of a section: one per contender, and under the work-around one more after each of
 * crun's, labelled `adjustedLabel(c)`: crun with the wrapper's overhead taken out, its median
 * minus the median of `wrapper`; p10/p90 shifted by the same amount.
 */
function rowsOf(list, wrapper, adjustedLabel) {
  const rows = []
  for (const c of list) {
    rows.push({ c, label: c.label, stats: c.stats, skipped: c.skipped })
    if (c.family === 'crun' && crunWorkaround) {
      let adj = null
      let skipped = c.skipped
      if (!skipped && wrapper?.stats) {
        const m = wrapper.stats.median
        adj = { n: c.stats.n, median: c.stats.median - m, p10: c.stats.p10 - m, p90: c.stats.p90 - m }
      } else if (!skipped) {
        skipped = `wrapper overhead unknown: ${wrapper?.skipped ?? 'not measured'}`
      }
      rows.push({ c, label: adjustedLabel(c), stats: adj, skipped, adjusted: true })
    }
  }
  return rows
}

/** A table row and a JSON row of `r`, with its two ratios, named `names` in the JSON. */
function tableAndJson(r, table, [vsA, vsB], names, warmupFailures) {
  const fails = r.c.failures ? ` (${r.c.failures} failed)` : ''
  if (r.skipped) {
    table.push([r.label, `skipped: ${r.skipped}`])
  } else {
    table.push([
      r.label,
      fmt(r.stats.median),
      fmt(r.stats.p10),
      fmt(r.stats.p90),
      fmtRatio(vsA),
      fmtRatio(vsB),
      `${r.stats.n}${fails}`,
    ])
  }
  return {
    contender: r.label,
    key: r.adjusted ? `${r.c.key}-adjusted` : r.c.key,
    ...(names.network ? { network: r.c.net } : {}),
    skipped: r.skipped ?? null,
    runs: r.stats?.n ?? 0,
    failures: r.c.failures,
    warmupFailures: warmupFailures?.get(r.c.key) ?? 0,
    lastError: r.c.failures ? r.c.lastError : null,
    medianMs: r.stats?.median ?? null,
    p10Ms: r.stats?.p10 ?? null,
    p90Ms: r.stats?.p90 ?? null,
    [names.a]: vsA,
    [names.b]: vsB,
  }
}

function printFailures(list) {
  for (const c of list) {
    if (!c.skipped && c.failures)
      console.log(`  ${c.label}: ${c.failures} timed runs failed; last error: ${c.lastError}`)
  }
}

/** The start-up table and its notes; returns its JSON rows and the references of its ratios. */
export function reportStartup({ contenders, startup, setup }) {
  const byKey = new Map(contenders.map((c) => [c.key, c]))
  for (const c of contenders) {
    if (!c.skipped && c.samples.length === 0) c.skipped = `no successful runs (${c.failures} failed): ${c.lastError}`
    c.stats = c.skipped ? null : stats(c.samples)
  }
  const rows = rowsOf(
    contenders,
    byKey.get('crun-wrapper'),
    (c) => `crun run${c.net ? ' +net' : ''} (wrapper subtracted)`,
  )
  // The crun reference: the wrapper-subtracted figure when the work-around is in
  // use (the fair one: crun's own cost), the plain figure otherwise.
  const crunRef = (net) =>
    rows.find((r) => r.c.family === 'crun' && r.c.net === net && (crunWorkaround ? r.adjusted : true))?.stats?.median ??
    null
  const unshareRef = (net) => byKey.get(net ? 'unshare-net' : 'unshare')?.stats?.median ?? null

  const table = [['contender', 'median ms', 'p10 ms', 'p90 ms', 'vs crun', 'vs unshare', 'runs']]
  const jsonRows = []
  for (const r of rows) {
    const isWrapper = r.c.family === 'wrapper'
    const vsCrun = r.stats && !isWrapper ? ratio(r.stats.median, crunRef(r.c.net)) : null
    const vsUnshare = r.stats && !isWrapper ? ratio(r.stats.median, unshareRef(r.c.net)) : null
    const names = { network: true, a: 'vsCrun', b: 'vsUnshare' }
    jsonRows.push(tableAndJson(r, table, [vsCrun, vsUnshare], names, startup.warmupFailures))
  }

  console.log('')
  console.log(
    `results (${startup.rounds} rounds in ${startup.elapsed.toFixed(1)} s${startup.stopped ? ', interrupted' : ''}):`,
  )
  printTable(table)
  console.log('')
  console.log(
    '  "vs crun" and "vs unshare" compare medians with the matching network setting (+net rows with +net rows).',
  )
  if (crunWorkaround) {
    const refusal = setup.crunRefusal
    console.log(`  crun refuses this hybrid cgroup layout${refusal ? ` ("${refusal}")` : ''}, so its rows run as`)
    console.log(
      `    unshare --mount --propagation private sh -c 'mount --bind /dev/null ${HYBRID_CONTROLLERS} && exec crun ...'`,
    )
    console.log(
      '    "raw, in wrapper" includes that wrapper; "wrapper subtracted" takes away the median of the same wrapper running',
    )
    console.log(
      '    /bin/true ("crun wrapper alone"; p10/p90 shifted by that median). "vs crun" uses the wrapper-subtracted figure.',
    )
  }
  console.log(
    '  every contender gets user, pid, mount, uts and ipc namespaces; @ns/core, bwrap, runc and crun also change root to',
  )
  console.log(
    `  the fixture (${path.relative(repoRoot, FIXTURE)}); unshare runs the host's /bin/true without changing root.`,
  )
  if (setup.configEdits.length) console.log(`  OCI bundle: ${setup.configEdits.join('; ')}.`)
  console.log(
    '  "@ns/core pool.run" is a warm sandbox of the same options (pool({ size: 2 })): from pool.run() to the exit, the',
  )
  console.log('  pool full before each timed run (the refill of the sandbox a run took is not timed).')
  printFailures(contenders)
  return { jsonRows, byKey, crunRef, unshareRef }
}

export const lcApproach =
  'each OCI runtime runs create --bundle B ID, start ID, then delete --force ID right after start returns, without waiting ' +
  'for /bin/true to end (the same for all three; --force kills it should it still run); every command is spawned from node ' +
  'with stdin/stdout on /dev/null and stderr on a file, and timed to its exit event (a created container keeps the stdio ' +
  'it inherited)'
export const lcCrunNote = crunWorkaround
  ? `crun's three commands run in ONE wrapper per cycle: unshare --mount --propagation private sh -c 'mount --bind /dev/null ` +
    `${HYBRID_CONTROLLERS} && crun create ... && crun start ... && exec crun delete --force ...'; "wrapper subtracted" takes ` +
    'away the median of the same wrapper running /bin/true once ("crun wrapper alone", measured in the same rounds). ' +
    "That leaves crun's commands forked by sh where the others are spawned by node, and also takes away one node spawn " +
    'and one /bin/true: if anything, the subtracted figure flatters crun'
  : null
export const lcNsNote =
  "@ns/core detached: create({ command: ['/bin/true'], rootfs, namespaces: { network: false, cgroup: false }, init: false, " +
  'root, name }), start(), wait({ pollMs: 1 }), delete(); foreground: run() with the same options but root and name'

/**
 * The lifecycle table and its notes (printed only when the section is `on`; `lc` is null when
 * it was not measured); returns its JSON rows and the references of its ratios.
 */
export function reportLifecycle({ lifecycle, lc, lcSetup, on }) {
  const lcByKey = new Map(lifecycle.map((c) => [c.key, c]))
  for (const c of lifecycle) {
    if (!c.skipped && c.samples.length === 0) {
      c.skipped = lc ? `no successful runs (${c.failures} failed): ${c.lastError}` : 'not measured (interrupted)'
    }
    c.stats = c.skipped ? null : stats(c.samples)
  }
  const lcRows = rowsOf(
    lifecycle,
    lcByKey.get('crun-cycle-wrapper'),
    () => 'crun create+start+delete (wrapper subtracted)',
  )
  const lcCrunRef =
    lcRows.find((r) => r.c.family === 'crun' && (crunWorkaround ? r.adjusted : true))?.stats?.median ?? null
  const lcNsRunRef = lcByKey.get('ns-run')?.stats?.median ?? null

  const lcTable = [['contender', 'median ms', 'p10 ms', 'p90 ms', 'vs crun', 'vs ns run', 'runs']]
  const lcJsonRows = []
  for (const r of lcRows) {
    const isWrapper = r.c.family === 'wrapper'
    const vsCrun = r.stats && !isWrapper ? ratio(r.stats.median, lcCrunRef) : null
    const vsNsRun = r.stats && !isWrapper ? ratio(r.stats.median, lcNsRunRef) : null
    const names = { network: false, a: 'vsCrun', b: 'vsNsRun' }
    lcJsonRows.push(tableAndJson(r, lcTable, [vsCrun, vsNsRun], names, lc?.warmupFailures))
  }

  if (on) {
    console.log('')
    console.log(
      `lifecycle (${lc?.rounds ?? 0} rounds in ${(lc?.elapsed ?? 0).toFixed(1)} s${!lc || lc.stopped ? ', interrupted' : ''}; /bin/true, no network namespace):`,
    )
    printTable(lcTable)
    console.log('')
    console.log(
      `  "vs crun" compares medians with crun's cycle${crunWorkaround ? ' (wrapper subtracted)' : ''}; "vs ns run" with @ns/core's foreground run.`,
    )
    console.log(`  ${lcApproach}.`)
    if (lcCrunNote) console.log(`  ${lcCrunNote}.`)
    if (lcSetup.lcBundleNotes.length) console.log(`  OCI bundle: ${lcSetup.lcBundleNotes.join('; ')}.`)
    console.log(`  ${lcNsNote}.`)
    printFailures(lifecycle)
  }
  return { lcJsonRows, lcByKey, lcCrunRef, lcNsRunRef }
}

/** The monitor's memory, as `monitorMemory()` read it (null: not measured). */
export function reportMonitor(monitor) {
  console.log('')
  if (!monitor) {
    console.log('monitor memory: not measured (interrupted)')
  } else if (monitor.error && monitor.pssKiB === null) {
    console.log(`monitor memory: skipped: ${monitor.error}`)
  } else {
    const kib = (x) => (x === null ? '-' : `${x} KiB`)
    console.log(
      `monitor memory of one detached container running sleep 30 (monitor pid ${monitor.monitorPid}: ${monitor.monitorCommand}):`,
    )
    console.log(
      `  VmRSS ${kib(monitor.vmRssKiB)}, RssAnon ${kib(monitor.rssAnonKiB)}, RssFile ${kib(monitor.rssFileKiB)}`,
    )
    console.log(
      `  Pss   ${kib(monitor.pssKiB)} (Pss_Anon ${kib(monitor.pssAnonKiB)}, Pss_File ${kib(monitor.pssFileKiB)}); private (USS) ${kib(monitor.privateKiB)}; from smaps_rollup`,
    )
    console.log(
      '  judged on Pss, the proportional set size: each shared page (libc, the binary) counts divided by the number of',
    )
    console.log(
      `  processes that map it. ${monitor.otherProcessesOfSameBinary} other process(es) ran ${monitor.monitorExe} meanwhile and shared its pages;`,
    )
    console.log(
      '  a lone monitor pays for every page of its binary it touches, so its Pss is higher with fewer of them about.',
    )
    if (monitor.error) console.log(`  note: ${monitor.error}`)
  }
}

/** The memory of idle pooled sandboxes, as `poolMemory()` read it (null: not measured, nothing printed). */
export function reportPoolMemory(poolMem) {
  if (!poolMem) return
  console.log('')
  console.log(`idle pooled sandboxes (a pool of ${poolMem.size}, filled, /bin/true's options without network):`)
  if (poolMem.error) console.log(`  not measured: ${poolMem.error}`)
  else {
    console.log(
      `  per sandbox: Pss ${poolMem.pssKiB} KiB, private ${poolMem.privateKiB} KiB (${poolMem.processes} processes in all: each sandbox's helper and its waiting first process)`,
    )
    console.log("  the kernel's own memory (namespaces, mounts, page tables) is not in these figures.")
  }
}
