// The start-up section's contenders of tools/bench.mjs: /bin/true started fully isolated and
// waited for, with and without a network namespace, by @ns/core (run() and a warm sandbox's
// pool.run), unshare, bwrap, runc and crun (and, under crun's work-around, the wrapper alone,
// whose cost the report subtracts).

import { existsSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { FIXTURE, installPackages, which } from '../bench-common.mjs'
import { contender } from './measure.mjs'
import { loadNsCore, nsImportError, nsRunOnce } from './ns-core.mjs'
import { crunRefusal, crunWorkaround, makeBundles, ociTools, wrapperPrefixFor } from './oci.mjs'
import { nsPoolOnce } from './pool.mjs'
import { quietSync, timedSpawn, uniqueId } from './processes.mjs'

/** apt-get install the tools of the contenders that are missing, when `allowed`; says why not. */
export function installMissing(allowed) {
  const wanted = [
    { pkg: 'runc', ok: () => which('runc') },
    { pkg: 'crun', ok: () => which('crun') },
    { pkg: 'bubblewrap', ok: () => which('bwrap') },
    { pkg: 'busybox-static', ok: () => existsSync('/bin/busybox') || existsSync('/usr/bin/busybox') },
  ]
  // What cannot be installed is reported here; its contenders say "skipped" in the table.
  const why = installPackages(
    wanted.filter((w) => !w.ok()).map((w) => w.pkg),
    allowed,
  )
  if (why) console.log(`note: ${why}`)
}

/**
 * The contenders, and what the lifecycle section and the report need of their set-up: the
 * tools, the bundles, the crun wrapper and what crun says without it. Clean-up steps go to
 * `run.steps`.
 */
export async function setupStartup(run) {
  const contenders = []
  const add = (c) => contenders.push(contender(c))

  // a, b: @ns/core in this process.
  await loadNsCore()
  for (const net of [false, true]) {
    add({
      key: net ? 'ns-net' : 'ns',
      label: net ? '@ns/core +net' : '@ns/core',
      family: 'ns',
      net,
      skipped: nsImportError,
      once: () => nsRunOnce(net),
    })
  }

  // c: @ns/core's warm sandboxes (`pool`), the same container set up ahead of time (pool.mjs).
  for (const net of [false, true]) {
    add({
      key: net ? 'ns-pool-net' : 'ns-pool',
      label: net ? '@ns/core pool.run +net' : '@ns/core pool.run',
      family: 'ns-pool',
      net,
      skipped: nsImportError,
      once: () => nsPoolOnce(net),
    })
  }

  // A contender that is one external command, with and without a network namespace.
  const addCommand = (family, bin, missing, argvFor) => {
    for (const net of [false, true]) {
      const argv = bin ? argvFor(net) : []
      add({
        key: net ? `${family}-net` : family,
        label: net ? `${family} +net` : family,
        family,
        net,
        skipped: bin ? null : missing,
        once: () => timedSpawn(argv),
      })
    }
  }

  const tools = ociTools()
  const { unshareBin } = tools

  // d: unshare from util-linux, the same namespaces, no root change.
  addCommand('unshare', unshareBin, 'unshare (util-linux) not installed', (net) => [
    unshareBin,
    '--user',
    '--map-root-user',
    '--pid',
    '--fork',
    '--mount',
    '--uts',
    '--ipc',
    ...(net ? ['--net'] : []),
    '/bin/true',
  ])

  // e: bubblewrap on the same rootfs.
  const bwrapBin = which('bwrap')
  addCommand('bwrap', bwrapBin, 'bwrap (bubblewrap) not installed', (net) => [
    bwrapBin,
    '--unshare-user',
    '--unshare-pid',
    '--unshare-uts',
    '--unshare-ipc',
    ...(net ? ['--unshare-net'] : []),
    '--bind',
    FIXTURE,
    '/',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '/bin/true',
  ])

  // f: runc and crun on an OCI bundle whose root is the fixture; crun's rows in the wrapper
  // when the work-around is on.
  const { bundles, bundleError, configEdits } = makeBundles(run.tmp, tools)
  const wrapperPrefix = wrapperPrefixFor(unshareBin)
  for (const [name, bin] of [
    ['runc', tools.runcBin],
    ['crun', tools.crunBin],
  ]) {
    const state = path.join(run.tmp, `${name}-state`)
    const prefix = name === 'crun' ? wrapperPrefix : []
    const deleteOne = (id) => quietSync([...prefix, bin, '--root', state, 'delete', '-f', id])
    if (bin) {
      // Whatever is left in the state directory at the end gets deleted.
      run.steps.push(() => {
        if (!existsSync(state)) return
        for (const id of readdirSync(state)) deleteOne(id)
      })
    }
    for (const net of [false, true]) {
      add({
        key: net ? `${name}-net` : name,
        label: `${name} run${net ? ' +net' : ''}${name === 'crun' && crunWorkaround ? ' (raw, in wrapper)' : ''}`,
        family: name,
        net,
        skipped: !bin ? `${name} not installed` : bundleError,
        async once() {
          const id = uniqueId(`nsbench-${name}`)
          const r = await timedSpawn([...prefix, bin, '--root', state, 'run', '--bundle', bundles[net], id])
          if (!r.ok) deleteOne(id)
          return r
        },
      })
    }
  }

  if (crunWorkaround) {
    add({
      key: 'crun-wrapper',
      label: 'crun wrapper alone (/bin/true)',
      family: 'wrapper',
      net: false,
      skipped: unshareBin ? null : 'unshare not installed',
      once: () => timedSpawn([...wrapperPrefix, '/bin/true']),
    })
  }

  return {
    contenders,
    tools,
    bundles,
    bundleError,
    configEdits,
    wrapperPrefix,
    crunRefusal: await crunRefusal(run.tmp, tools.crunBin, bundles[false], wrapperPrefix),
  }
}
