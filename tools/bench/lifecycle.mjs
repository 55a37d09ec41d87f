// The lifecycle section's contenders of tools/bench.mjs: ns-oci, crun and runc each doing
// create + start + delete --force of /bin/true on one OCI bundle, and @ns/core's detached
// create/start/wait/delete next to its foreground run().
//
// Each OCI runtime runs `create --bundle B ID`, `start ID` and `delete --force
// ID`, one after the other, on the same bundle. delete --force comes right
// after start returns, for all three alike: nothing waits for /bin/true to end
// (polling each runtime's own `state` would bill each a different cost), and
// --force kills it should it still run.

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { forceDeleteLeftovers, repoRoot } from '../bench-common.mjs'
import { contender } from './measure.mjs'
import { nsDetachedOnce, nsImportError, nsRunOnce } from './ns-core.mjs'
import { crunWorkaround, cycleWrapperFor, NS_OCI } from './oci.mjs'
import { errorFrom, quietSync, spawnToExit, uniqueId } from './processes.mjs'

/** A timed create + start + delete --force cycle of one OCI runtime; call it with a bundle. */
function ociCycle(run, setup, name, bin, wrapped) {
  const state = path.join(run.tmp, `lc-${name}-state`)
  const errFile = path.join(run.tmp, `lc-${name}.stderr`)
  const cycleWrapper = cycleWrapperFor(setup.tools.unshareBin)
  const forceDelete = (id) =>
    quietSync([...(wrapped ? setup.wrapperPrefix : []), bin, '--root', state, 'delete', '--force', id])
  run.steps.push(() => {
    if (!existsSync(state)) return
    for (const id of readdirSync(state)) forceDelete(id)
  })
  return async (bundle) => {
    const id = uniqueId(`nsbench-lc-${name}`)
    // One stderr file for the cycle, opened before the clock starts; the
    // created container's process keeps it open until it is deleted.
    const fd = openSync(errFile, 'w')
    const t0 = process.hrtime.bigint()
    let r
    let step
    try {
      if (wrapped) {
        step = 'create, start, delete --force in the wrapper'
        r = await spawnToExit([...cycleWrapper, bin, state, bundle, id], fd)
      } else {
        const steps = [
          ['create', ['create', '--bundle', bundle, id]],
          ['start', ['start', id]],
          ['delete --force', ['delete', '--force', id]],
        ]
        for (const [what, args] of steps) {
          step = what
          r = await spawnToExit([bin, '--root', state, ...args], fd)
          if (!r.ok) break
        }
      }
    } finally {
      closeSync(fd)
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    if (r.ok) return { ms, ok: true, stderr: '' }
    forceDelete(id)
    return { ms, ok: false, code: r.code, signal: r.signal, stderr: errorFrom(errFile, r, step) }
  }
}

/**
 * ns-oci gets the start-up bundle first. Should it refuse that bundle, the
 * cgroup mount is the known cause (a cgroup filesystem cannot be mounted from
 * a user namespace without a cgroup namespace of its own): it is then taken
 * out, and the bundle without it serves all three runtimes alike.
 */
async function chooseBundle(run, nsOciCycle, bundle) {
  const out = { bundle, notes: [], nsOciRefusal: null, nsOciSkip: null }
  const r = await nsOciCycle(bundle)
  if (r.ok) return out
  out.nsOciRefusal = r.stderr
  const spec = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8'))
  const mounts = spec.mounts ?? []
  spec.mounts = mounts.filter((m) => !['cgroup', 'cgroup2'].includes(m.type) && m.destination !== '/sys/fs/cgroup')
  if (spec.mounts.length === mounts.length) {
    out.nsOciSkip = out.nsOciRefusal
    return out
  }
  const dir = path.join(run.tmp, 'bundle-lifecycle')
  mkdirSync(dir)
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2))
  const again = await nsOciCycle(dir)
  if (again.ok) {
    out.bundle = dir
    out.notes.push(
      `ns-oci refused the start-up bundle ("${out.nsOciRefusal}"), so the lifecycle bundle is that bundle without its /sys/fs/cgroup mount, for all three runtimes`,
    )
  } else {
    out.nsOciSkip = `${again.stderr} (also without the /sys/fs/cgroup mount; with it: ${out.nsOciRefusal})`
  }
  return out
}

/**
 * The lifecycle contenders (none when `on` is false), and the bundle they run: `lcBundle`,
 * with notes for the report and what ns-oci said of the start-up bundle, had it refused it.
 * @ns/core's detached containers live in a state root of their own, `nsState`.
 */
export async function setupLifecycle(run, setup, on) {
  const { tools, bundles, bundleError, wrapperPrefix } = setup
  const nsState = path.join(run.tmp, 'ns-state')
  run.steps.push(() => forceDeleteLeftovers(nsState, tools.nsOciBin))
  const out = { lifecycle: [], nsState, lcBundle: bundles[false] ?? null, lcBundleNotes: [], nsOciRefusal: null }
  if (!on) return out
  const add = (c) => out.lifecycle.push(contender(c))

  mkdirSync(nsState)
  const cycles = {
    'ns-oci': tools.nsOciBin ? ociCycle(run, setup, 'ns-oci', tools.nsOciBin, false) : null,
    runc: tools.runcBin ? ociCycle(run, setup, 'runc', tools.runcBin, false) : null,
    crun: tools.crunBin ? ociCycle(run, setup, 'crun', tools.crunBin, crunWorkaround) : null,
  }

  let nsOciSkip = null
  if (cycles['ns-oci'] && out.lcBundle && !bundleError) {
    const chosen = await chooseBundle(run, cycles['ns-oci'], out.lcBundle)
    out.lcBundle = chosen.bundle
    out.lcBundleNotes.push(...chosen.notes)
    out.nsOciRefusal = chosen.nsOciRefusal
    nsOciSkip = chosen.nsOciSkip
  }
  if (out.lcBundle && out.lcBundle === bundles[false])
    out.lcBundleNotes.push('the start-up bundle without network namespace, unchanged')

  const missing = (name) =>
    name === 'ns-oci' ? `${path.relative(repoRoot, NS_OCI)} not found (build it)` : `${name} not installed`
  for (const name of ['ns-oci', 'runc', 'crun']) {
    const cycle = cycles[name]
    const wrapped = name === 'crun' && crunWorkaround
    add({
      key: `${name}-cycle`,
      label: `${name} create+start+delete${wrapped ? ' (raw, in wrapper)' : ''}`,
      family: name,
      net: false,
      skipped: !cycle ? missing(name) : (bundleError ?? (name === 'ns-oci' ? nsOciSkip : null)),
      once: () => cycle(out.lcBundle),
    })
  }
  if (crunWorkaround) {
    const errFile = path.join(run.tmp, 'lc-wrapper.stderr')
    add({
      key: 'crun-cycle-wrapper',
      label: 'crun wrapper alone (/bin/true)',
      family: 'wrapper',
      net: false,
      skipped: tools.unshareBin ? null : 'unshare not installed',
      async once() {
        const fd = openSync(errFile, 'w')
        let r
        try {
          r = await spawnToExit([...wrapperPrefix, '/bin/true'], fd)
        } finally {
          closeSync(fd)
        }
        return r.ok ? { ...r, stderr: '' } : { ...r, stderr: errorFrom(errFile, r, 'wrapper') }
      },
    })
  }
  add({
    key: 'ns-detached',
    label: '@ns/core detached create+start+wait+delete',
    family: 'ns',
    net: false,
    skipped: nsImportError,
    once: () => nsDetachedOnce(nsState),
  })
  add({
    key: 'ns-run',
    label: '@ns/core run (foreground)',
    family: 'ns',
    net: false,
    skipped: nsImportError,
    once: () => nsRunOnce(false),
  })
  return out
}
