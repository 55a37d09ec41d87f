// A podman of the benchmarks' own (tools/bench-cli.mjs, tools/bench-server.mjs): its store,
// run root and tmp dir in a folder of ours, so that nothing of the host's is touched;
// cgroupfs and a file for events, as this kind of host has no systemd, and no default ulimits
// above the inherited hard limits; runc as its runtime, as crun refuses the hybrid cgroup
// layout here. The fixture goes in as an image.

import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { FIXTURE } from '../bench-common.mjs'

export const PODMAN_CONF =
  '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'

/**
 * Makes `dir` and podman's configuration in it. Returns the global arguments and the
 * environment to run `bin` with, `sync(...args)` that runs it so, and `importFixture(image)`,
 * which imports the fixture as `image` (both as spawnSync results, text).
 */
export function privatePodman(bin, dir) {
  mkdirSync(dir)
  const conf = path.join(dir, 'containers.conf')
  writeFileSync(conf, PODMAN_CONF)
  const globalArgs = [
    '--root',
    path.join(dir, 'storage'),
    '--runroot',
    path.join(dir, 'run'),
    '--tmpdir',
    path.join(dir, 'tmp'),
    '--runtime',
    'runc',
  ]
  const env = { ...process.env, CONTAINERS_CONF: conf }
  const sync = (...args) => spawnSync(bin, [...globalArgs, ...args], { encoding: 'utf8', env, timeout: 120_000 })
  const importFixture = (image) => {
    const tar = execFileSync('tar', ['-C', FIXTURE, '-c', '.'], { maxBuffer: 256 << 20 })
    return spawnSync(bin, [...globalArgs, 'import', '-', image], {
      input: tar,
      env,
      encoding: 'utf8',
      timeout: 120_000,
    })
  }
  return { globalArgs, env, sync, importFixture }
}
