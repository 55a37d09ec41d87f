// The OCI side of tools/bench.mjs: the bundles runc and crun (and ns-oci) run, made from
// `runc spec --rootless` around the fixture, and the work-around for crun 1.8, which refuses
// the hybrid cgroup layout: its commands run in a private mount namespace where /dev/null
// hides the cgroup2's cgroup.controllers.

import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { FIXTURE, isRoot, repoRoot, which } from '../bench-common.mjs'
import { quietSync, reasonFrom, timedSpawn, uniqueId } from './processes.mjs'

// The cgroup2 file that makes crun 1.8 refuse a hybrid cgroup layout.
export const HYBRID_CONTROLLERS = '/sys/fs/cgroup/unified/cgroup.controllers'

export const NS_OCI = path.join(repoRoot, 'packages', 'native', 'bin', 'ns-oci')

/** Whether crun's rows run in the wrapper: as root, on a hybrid layout. */
export const crunWorkaround =
  isRoot && existsSync(HYBRID_CONTROLLERS) && !existsSync('/sys/fs/cgroup/cgroup.controllers')

/** The tools the OCI rows use, each a path or null. */
export function ociTools() {
  return {
    unshareBin: which('unshare'),
    runcBin: which('runc'),
    crunBin: which('crun'),
    nsOciBin: existsSync(NS_OCI) ? NS_OCI : null,
  }
}

/**
 * The start-up bundles under `tmp`, without and with a network namespace: `bundles[false]`,
 * `bundles[true]`; or `bundleError`, why there are none. `configEdits` says what was changed
 * in the generated config, for the report.
 */
export function makeBundles(tmp, { runcBin, crunBin, unshareBin }) {
  const configEdits = []
  const bundles = {}
  let bundleError = null
  const specTool = runcBin || crunBin
  if (!specTool) {
    bundleError = 'neither runc nor crun is installed'
  } else {
    const specDir = path.join(tmp, 'spec')
    mkdirSync(specDir)
    const r = spawnSync(specTool, ['spec', '--rootless'], { cwd: specDir, encoding: 'utf8' })
    if (r.status !== 0) {
      bundleError = `${path.basename(specTool)} spec --rootless failed: ${reasonFrom(r.stderr, `exit ${r.status}`)}`
    } else {
      const base = JSON.parse(readFileSync(path.join(specDir, 'config.json'), 'utf8'))
      for (const net of [false, true]) {
        const spec = structuredClone(base)
        spec.process.args = ['/bin/true']
        spec.process.terminal = false
        spec.root = { path: FIXTURE, readonly: false }
        // As root: map the first 65536 ids onto themselves. Otherwise keep the
        // rootless spec's mapping of container root onto our own ids.
        if (isRoot) {
          spec.linux.uidMappings = [{ containerID: 0, hostID: 0, size: 65536 }]
          spec.linux.gidMappings = [{ containerID: 0, hostID: 0, size: 65536 }]
        }
        const types = ['pid', 'ipc', 'uts', 'mount', 'user', ...(net ? ['network'] : [])]
        spec.linux.namespaces = types.map((type) => ({ type }))
        // No resource limits: nothing to set up in cgroups beyond the runtime's defaults.
        delete spec.linux.resources
        const dir = path.join(tmp, net ? 'bundle-net' : 'bundle')
        mkdirSync(dir)
        writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2))
        bundles[net] = dir
      }
      configEdits.push(
        `generated with "${path.basename(specTool)} spec --rootless"`,
        'process.args=["/bin/true"], process.terminal=false',
        'root.path=<fixture> (absolute), root.readonly=false',
        isRoot
          ? 'uid/gid mappings 0->0 size 65536 (we are root)'
          : 'uid/gid mappings as generated (0 -> our uid/gid, size 1)',
        'namespaces pid, ipc, uts, mount, user (+ network for the +net rows)',
        'linux.resources removed',
      )
    }
  }
  if (crunWorkaround && !unshareBin) bundleError ??= 'the crun workaround needs unshare, which is missing'
  return { bundles, bundleError, configEdits }
}

/**
 * The wrapper of crun's start-up rows, to put before its command: a private mount namespace
 * in which /dev/null hides the cgroup2's cgroup.controllers. Empty without the work-around.
 */
export function wrapperPrefixFor(unshareBin) {
  if (!crunWorkaround) return []
  return [
    unshareBin,
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    'mount --bind /dev/null "$1" && shift && exec "$@"',
    'sh',
    HYBRID_CONTROLLERS,
  ]
}

/**
 * crun's cycle under the work-around: create, start and delete --force, all three in ONE
 * wrapper; append bin, state, bundle, id.
 */
export function cycleWrapperFor(unshareBin) {
  const script =
    'mount --bind /dev/null "$1" && "$2" --root "$3" create --bundle "$4" "$5" && "$2" --root "$3" start "$5" && exec "$2" --root "$3" delete --force "$5"'
  return [unshareBin, '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', HYBRID_CONTROLLERS]
}

/** What crun says without the work-around, for the report (null when there is no work-around). */
export async function crunRefusal(tmp, crunBin, bundle, wrapperPrefix) {
  if (!crunWorkaround || !crunBin || !bundle) return null
  const state = path.join(tmp, 'crun-probe-state')
  const id = uniqueId('nsbench-crun-probe')
  const r = await timedSpawn([crunBin, '--root', state, 'run', '--bundle', bundle, id])
  if (r.ok) return 'it ran without the work-around here, which is kept anyway for consistency'
  quietSync([...wrapperPrefix, crunBin, '--root', state, 'delete', '-f', id])
  return reasonFrom(r.stderr, `exit ${r.code}`)
}
