// podman's service in tools/bench-server.mjs, for comparison: started with a private store on
// a socket of its own, the fixture imported as an image, containers driven through create +
// start + wait + delete over its Docker-compatible API, and everything of it cleaned up.

import { spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { lastLine, unmountUnder, versionOf, which } from '../../bench-common.mjs'
import { PODMAN_CONF, privatePodman } from '../podman-store.mjs'
import { cycleJob, PODMAN_API, PODMAN_CALLS, serviceReady, stepMedians } from './api.mjs'
import { client, phaseResult, pool } from './client.mjs'
import { processTable, stopGroup, stopGroupSync } from './processes.mjs'
import { cgroupRoots, dirsBelow } from './leaks.mjs'

const PODMAN_IMAGE = 'localhost/nsbench:latest'

/** podman's cgroups (cgroupfs manager): the directories under libpod_parent, in every hierarchy. */
export function podmanCgroups() {
  return cgroupRoots().flatMap((r) => dirsBelow(path.join(r, 'libpod_parent')))
}

export async function podmanSection(scratch, opts, podmanBin) {
  const { tmp } = scratch
  const dir = path.join(tmp, 'podman')
  // Private storage, run root and libpod tmp dir (the last so that nothing of the host's
  // /run/libpod is touched); runc, as crun refuses the hybrid cgroup layout here.
  const { globalArgs, env, sync: podman, importFixture } = privatePodman(podmanBin, dir)
  const socket = path.join(dir, 'podman.sock')
  const out = {
    version: versionOf(podmanBin),
    runtime: versionOf(which('runc')),
    command: `podman ${globalArgs.map((a) => a.replace(tmp, '<tmp>')).join(' ')} system service --time=0 unix://<tmp>/podman/podman.sock`,
    containersConf: PODMAN_CONF,
    networkMode: 'none',
    skipped: null,
    result: null,
  }

  // Clean-up, once: on the way out of this function, or from cleanup() on an early exit.
  // The service first, then the containers (the API deleted them, unless interrupted) and the
  // image, then whatever stays mounted under the storage, then conmon processes of ours.
  const cgroupsBefore = podmanCgroups()
  let service = null
  let cleaned = false
  const podmanCleanup = () => {
    if (cleaned) return
    cleaned = true
    stopGroupSync(service)
    if (existsSync(path.join(dir, 'storage'))) {
      podman('rm', '--all', '--force')
      podman('rmi', '--all', '--force')
    }
    const unmounted = unmountUnder(dir)
    let killed = 0
    for (const [pid, p] of processTable()) {
      if (p.state === 'Z') continue
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) {
          process.kill(pid, 'SIGKILL')
          killed++
        }
      } catch {
        /* gone */
      }
    }
    out.cleanup = {
      unmounted: unmounted.map((m) => m.replace(tmp, '<tmp>')),
      processesKilled: killed,
      cgroupsLeft: podmanCgroups().length - cgroupsBefore.length,
    }
  }
  scratch.steps.push(podmanCleanup)

  const imp = importFixture(PODMAN_IMAGE)
  if (imp.status !== 0) {
    out.skipped = `podman import failed: ${lastLine(imp.stderr, `exit ${imp.status}`)}`
    podmanCleanup()
    return out
  }

  const logFd = openSync(path.join(dir, 'service.log'), 'w')
  service = spawn(podmanBin, [...globalArgs, 'system', 'service', '--time=0', `unix://${socket}`], {
    stdio: ['ignore', logFd, logFd],
    env,
    detached: true,
  })
  closeSync(logFd)
  const c = client(socket, opts.concurrency)
  try {
    const why = await serviceReady({
      name: 'podman system service',
      child: service,
      socket,
      probe: `${PODMAN_API}/_ping`,
      ready: (r) => r.status === 200,
      logFile: path.join(dir, 'service.log'),
      pollMs: 100,
      stopped: () => scratch.interrupted,
    })
    if (why) {
      // Interrupted: no reason to give, the whole run says so.
      if (why !== 'interrupted') out.skipped = why
      return out
    }

    const cycle = (body) => cycleJob(c, PODMAN_CALLS, body)

    // NetworkMode none, as ns (no network set up): checked once; should podman refuse it, its default.
    let body = { Image: PODMAN_IMAGE, Cmd: ['/bin/true'], HostConfig: { NetworkMode: 'none' } }
    const probe = await cycle(body)
    if (!probe.ok) {
      const fallback = { Image: PODMAN_IMAGE, Cmd: ['/bin/true'] }
      const again = await cycle(fallback)
      if (!again.ok) {
        out.skipped = `a first container failed: ${probe.error}; with the default network too: ${again.error}`
        return out
      }
      body = fallback
      out.networkMode = `default (NetworkMode none failed: ${probe.error})`
    }
    const warm = Math.min(opts.warmup, Math.max(2, Math.ceil(opts.podmanContainers / 10)))
    await pool(scratch, warm, opts.concurrency, () => cycle(body))
    if (scratch.interrupted) return out
    const p = await pool(scratch, opts.podmanContainers, opts.concurrency, () => cycle(body))
    out.warmup = warm
    out.result = {
      ...phaseResult('podman service (docker API)', p, opts.concurrency),
      steps: stepMedians(p.extras),
      retries: c.counters.retries,
    }
    return out
  } finally {
    c.close()
    await stopGroup(service)
    podmanCleanup()
  }
}
