// The targets of tools/bench.mjs, judged and printed: @ns/core's start-up against crun and
// unshare, a warm sandbox's pool.run and an idle one's memory, ns-oci's cycle against crun's,
// @ns/core detached against foreground, and the monitor's memory. Returns them for the JSON.

import { fmt } from '../bench-common.mjs'
import { fmtRatio, ratio } from './report.mjs'

const TARGET_VS_CRUN = 0.5
const TARGET_VS_UNSHARE = 1.5
// Lifecycle targets: ns-oci's cycle against crun's, @ns/core detached against
// foreground, and the monitor's proportional set size.
const TARGET_OCI_VS_CRUN = 1.0
const TARGET_DETACHED_VS_RUN = 2.0
const TARGET_MONITOR_PSS_KIB = 1024
// Warm sandboxes: pool.run of /bin/true from call to exit, and an idle sandbox's memory.
const TARGET_POOL_MS = 1
const TARGET_POOL_PSS_KIB = 1024

/**
 * `start` and `life` are what reportStartup and reportLifecycle returned, `monitor` and `poolMem`
 * what monitorMemory and poolMemory read; `lifecycleOn` whether that section ran.
 */
export function judgeTargets({ start, life, monitor, poolMem, lifecycleOn }) {
  console.log('')
  console.log('targets:')
  const targets = []
  for (const net of [false, true]) {
    const c = start.byKey.get(net ? 'ns-net' : 'ns')
    const m = c?.stats?.median ?? null
    const name = c?.label ?? '@ns/core'
    const vsC = ratio(m, start.crunRef(net))
    const vsU = ratio(m, start.unshareRef(net))
    const judge = (r, limit, what) =>
      r === null ? `unknown (${m === null ? `${name} skipped` : `${what} skipped`})` : r <= limit ? 'met' : 'NOT met'
    const tC = {
      target: `${name} at or below ${TARGET_VS_CRUN}x crun run${net ? ' +net' : ''}`,
      ratio: vsC,
      met: vsC === null ? null : vsC <= TARGET_VS_CRUN,
    }
    const tU = {
      target: `${name} at most ${TARGET_VS_UNSHARE}x unshare${net ? ' +net' : ''}`,
      ratio: vsU,
      met: vsU === null ? null : vsU <= TARGET_VS_UNSHARE,
    }
    console.log(`  ${tC.target}: ${fmtRatio(vsC)} -> ${judge(vsC, TARGET_VS_CRUN, 'crun')}`)
    console.log(`  ${tU.target}: ${fmtRatio(vsU)} -> ${judge(vsU, TARGET_VS_UNSHARE, 'unshare')}`)
    targets.push({ section: 'startup', ...tC }, { section: 'startup', ...tU })
  }
  targets.push(...poolTargets(start, poolMem))
  if (!lifecycleOn) return targets

  const { lcByKey, lcCrunRef, lcNsRunRef } = life
  const verdict = (met, why) => (met === null ? `unknown (${why})` : met ? 'met' : 'NOT met')
  const whySkipped = (...keys) =>
    keys
      .map((k) => lcByKey.get(k))
      .filter((c) => c?.skipped)
      .map((c) => `${c.label} skipped`)
      .join(', ') || 'not measured'

  const ociM = lcByKey.get('ns-oci-cycle')?.stats?.median ?? null
  const ociR = ratio(ociM, lcCrunRef)
  const tOci = {
    section: 'lifecycle',
    target: 'ns-oci create+start+delete no slower than crun',
    ratio: ociR,
    limit: TARGET_OCI_VS_CRUN,
    met: ociR === null ? null : ociR <= TARGET_OCI_VS_CRUN,
  }
  console.log(
    `  ${tOci.target}: ${fmtRatio(ociR)} -> ${verdict(tOci.met, whySkipped('ns-oci-cycle', 'crun-cycle', 'crun-cycle-wrapper'))}`,
  )

  const detR = ratio(lcByKey.get('ns-detached')?.stats?.median ?? null, lcNsRunRef)
  const tDet = {
    section: 'lifecycle',
    target: '@ns/core detached create-start-wait-delete under 2x the foreground run',
    ratio: detR,
    limit: TARGET_DETACHED_VS_RUN,
    met: detR === null ? null : detR < TARGET_DETACHED_VS_RUN,
  }
  console.log(`  ${tDet.target}: ${fmtRatio(detR)} -> ${verdict(tDet.met, whySkipped('ns-detached', 'ns-run'))}`)

  const pss = monitor?.pssKiB ?? null
  const tMon = {
    section: 'memory',
    target: 'monitor under 1 MiB per container (judged on Pss)',
    pssKiB: pss,
    limitKiB: TARGET_MONITOR_PSS_KIB,
    met: pss === null ? null : pss < TARGET_MONITOR_PSS_KIB,
  }
  console.log(
    `  ${tMon.target}: ${pss === null ? '-' : `${pss} KiB`} -> ${verdict(tMon.met, monitor?.error ?? 'not measured')}`,
  )
  targets.push(tOci, tDet, tMon)
  return targets
}

/** A warm sandbox's pool.run median and an idle pooled sandbox's Pss, judged and printed. */
function poolTargets(start, poolMem) {
  const c = start.byKey.get('ns-pool')
  const m = c?.stats?.median ?? null
  const tP = {
    section: 'pool',
    target: `${c?.label ?? '@ns/core pool.run'} median under ${TARGET_POOL_MS} ms`,
    medianMs: m,
    limitMs: TARGET_POOL_MS,
    met: m === null ? null : m < TARGET_POOL_MS,
  }
  console.log(
    `  ${tP.target}: ${m === null ? '-' : `${fmt(m)} ms`} -> ${m === null ? `unknown (${c?.skipped ?? 'not measured'})` : tP.met ? 'met' : 'NOT met'}`,
  )
  const pss = poolMem?.pssKiB ?? null
  const tM = {
    section: 'pool',
    target: `idle pooled sandbox under ${TARGET_POOL_PSS_KIB / 1024} MiB (Pss of its processes)`,
    pssKiB: pss,
    limitKiB: TARGET_POOL_PSS_KIB,
    met: pss === null ? null : pss < TARGET_POOL_PSS_KIB,
  }
  console.log(
    `  ${tM.target}: ${pss === null ? '-' : `${pss} KiB`} -> ${pss === null ? `unknown (${poolMem?.error ?? 'not measured'})` : tM.met ? 'met' : 'NOT met'}`,
  )
  return [tP, tM]
}
