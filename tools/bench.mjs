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
// A network section, tools/bench-net.mjs in a process of its own and a sandbox host of its
// own: the start-up cost of a bridge attachment, ns against podman's netavark, a churn of
// containers with published ports and what it leaves, and iperf3 throughput (see that file).
//
// A third section, tools/bench-server.mjs run in a process of its own, drives
// `ns serve` over its unix socket: run-to-completion of /bin/true at concurrency
// 8, the four-call create/start/wait/delete, list and inspect under load, a leak
// check, podman's service side by side, and POST /v1/run over `ns serve --pool` (see that file).
//
//   node tools/bench.mjs [--iterations N] [--lifecycle-iterations N] [--warmup N] [--seed N]
//                        [--json FILE] [--no-install] [--no-server] [--server-containers N]
//                        [--no-cli] [--cli-iterations N] [--no-net] [--net-iterations N]
//
// This is a report, not a test: it exits 0 when it completes, whether or not
// the targets are met. A contender that cannot run is reported as skipped.

import { spawn, spawnSync } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdtempSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  ensureFixture,
  firstLine,
  FIXTURE,
  fmt,
  forceDeleteLeftovers,
  installPackages,
  isRoot,
  lastLine,
  printTable,
  quantile,
  readArgs,
  repoRoot,
  runSteps,
  trapSignals,
  usageExit,
  versionOf,
  which,
} from './bench-common.mjs'

const RUN_TIMEOUT_MS = 15_000

// The cgroup2 file that makes crun 1.8 refuse a hybrid cgroup layout.
const HYBRID_CONTROLLERS = '/sys/fs/cgroup/unified/cgroup.controllers'

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

const NS_OCI = path.join(repoRoot, 'packages', 'native', 'bin', 'ns-oci')

// ---------------------------------------------------------------- options

function usage(code) {
  const text = `usage: node tools/bench.mjs [options]

  --iterations N   timed rounds; each round runs every contender once (default 200)
  --lifecycle-iterations N
                   timed rounds of the lifecycle section (default 100; 0 leaves the
                   section and the monitor's memory out)
  --warmup N       untimed runs of each contender first, in both sections (default 10)
  --seed N         seed for the order of contenders (default: random, printed)
  --json FILE      also write the results as JSON to FILE
  --no-install     do not apt-get install missing tools, even as root
  --no-cli         leave out the CLI start-up section (tools/bench-cli.mjs)
  --cli-iterations N
                   timed rounds of the CLI section (default 40)
  --no-net         leave out the network section (tools/bench-net.mjs)
  --net-iterations N
                   timed rounds of the network start-up (default 60)
  --no-server      leave out the server section (tools/bench-server.mjs)
  --server-containers N
                   containers run to completion over the server's API (default 500)
  -h, --help       this text
`
  usageExit(text, code)
}

function parseArgs(argv) {
  const opts = {
    iterations: 200,
    lifecycleIterations: 100,
    warmup: 10,
    seed: null,
    json: null,
    install: true,
    server: true,
    serverContainers: 500,
    cli: true,
    cliIterations: 40,
    net: true,
    netIterations: 60,
  }
  return readArgs(argv, {
    prog: 'bench',
    usage,
    opts,
    counts: {
      '--iterations': ['iterations', 1],
      '--lifecycle-iterations': ['lifecycleIterations', 0],
      '--warmup': ['warmup', 0],
      '--seed': ['seed', 0],
      '--server-containers': ['serverContainers', 1],
      '--cli-iterations': ['cliIterations', 1],
      '--net-iterations': ['netIterations', 1],
    },
    aliases: { '-n': '--iterations', '-h': '--help' },
    handle(arg, next, fail) {
      if (arg === '--json') opts.json = path.resolve(next())
      else if (arg === '--no-install') opts.install = false
      else if (arg === '--no-server') opts.server = false
      else if (arg === '--no-cli') opts.cli = false
      else if (arg === '--no-net') opts.net = false
      else if (arg === '--help') usage(0)
      else fail(`unknown argument ${arg}`)
    },
  })
}

const opts = parseArgs(process.argv.slice(2))

// ---------------------------------------------------------------- helpers

/** Last meaningful line of a stderr, shortened, for "skipped: <reason>". */
const reasonFrom = (stderr, fallback) => lastLine(stderr, fallback, 160)

function installMissing() {
  const wanted = [
    { pkg: 'runc', ok: () => which('runc') },
    { pkg: 'crun', ok: () => which('crun') },
    { pkg: 'bubblewrap', ok: () => which('bwrap') },
    { pkg: 'busybox-static', ok: () => existsSync('/bin/busybox') || existsSync('/usr/bin/busybox') },
  ]
  // What cannot be installed is reported here; its contenders say "skipped" in the table.
  const why = installPackages(
    wanted.filter((w) => !w.ok()).map((w) => w.pkg),
    opts.install,
  )
  if (why) console.log(`note: ${why}`)
}

// ---------------------------------------------------------------- processes

const live = new Set()

/**
 * Spawn a command and time it from spawn() to 'close' (exit and stdio closed).
 * Resolves { ms, ok, code, signal, stderr }; never rejects.
 */
function timedSpawn(argv) {
  return new Promise((resolve) => {
    let stderr = ''
    let done = false
    const t0 = process.hrtime.bigint()
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(child)
    const timer = setTimeout(() => {
      stderr += `\n(timed out after ${RUN_TIMEOUT_MS} ms)`
      child.kill('SIGKILL')
    }, RUN_TIMEOUT_MS)
    child.stdout.resume()
    child.stderr.on('data', (d) => {
      if (stderr.length < 8192) stderr += d
    })
    const finish = (code, signal, error) => {
      if (done) return
      done = true
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      clearTimeout(timer)
      live.delete(child)
      if (error) stderr += `\n${error.message}`
      resolve({ ms, ok: !error && code === 0, code, signal, stderr })
    }
    child.on('error', (err) => finish(null, null, err))
    child.on('close', (code, signal) => finish(code, signal))
  })
}

function quietSync(argv) {
  return spawnSync(argv[0], argv.slice(1), { stdio: 'ignore', timeout: RUN_TIMEOUT_MS })
}

/**
 * Spawn a command with stdin and stdout on /dev/null and stderr on `errFd` (a
 * file), and time it from spawn() to its 'exit' event. Not 'close': an OCI
 * `create` leaves the container's process holding the stdio it inherited, so
 * no pipe may be handed out, and no pipe is waited for.
 * Resolves { ms, ok, code, signal, error }; never rejects.
 */
function spawnToExit(argv, errFd) {
  return new Promise((resolve) => {
    let done = false
    let timer = null
    let child = null
    const t0 = process.hrtime.bigint()
    const finish = (code, signal, error) => {
      if (done) return
      done = true
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      clearTimeout(timer)
      if (child) live.delete(child)
      resolve({ ms, ok: !error && code === 0, code, signal, error: error ? error.message : null })
    }
    try {
      child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', errFd] })
    } catch (err) {
      finish(null, null, err)
      return
    }
    live.add(child)
    timer = setTimeout(() => {
      finish(null, 'SIGKILL', new Error(`timed out after ${RUN_TIMEOUT_MS} ms`))
      child.kill('SIGKILL')
    }, RUN_TIMEOUT_MS)
    child.on('error', (err) => finish(null, null, err))
    child.on('exit', (code, signal) => finish(code, signal))
  })
}

/** What a failed step left in its stderr file, as one line. */
function errorFrom(errFile, r, what) {
  let text = ''
  try {
    text = readFileSync(errFile, 'utf8')
  } catch {
    /* none */
  }
  if (r.error) text += `\n${r.error}`
  const how = `exit ${r.code ?? '?'}${r.signal ? ` (${r.signal})` : ''}`
  return `${what}: ${reasonFrom(text, how)}`
}

// ---------------------------------------------------------------- setup

installMissing()
const fixtureNote = ensureFixture()

const tmp = mkdtempSync(path.join(os.tmpdir(), 'ns-bench-'))
let cleanedUp = false
const cleanupSteps = []
function cleanup() {
  if (cleanedUp) return
  cleanedUp = true
  for (const child of live) {
    try {
      child.kill('SIGKILL')
    } catch {
      /* already gone */
    }
  }
  runSteps(cleanupSteps)
  rmSync(tmp, { recursive: true, force: true })
}
process.on('exit', cleanup)
let interrupted = false
trapSignals('bench', 'stopping after the current run', cleanup, () => (interrupted = true))

const contenders = []
// The lifecycle section's contenders, measured in rounds of their own.
const lifecycle = []
const lifecycleOn = opts.lifecycleIterations > 0
let nextId = 0
const uniqueId = (prefix) => `${prefix}-${process.pid}-${nextId++}`

function add(c, list = contenders) {
  list.push({ samples: [], failures: 0, lastError: '', skipped: null, ...c })
}

// a, b: @ns/core in this process.
let ns = null
let nsImportError = null
try {
  ns = await import('@ns/core')
} catch (err) {
  nsImportError = `cannot import @ns/core (${firstLine(err?.message)}); build it with npm run build`
}
const nsNamespaces = (net) => (net ? { cgroup: false } : { network: false, cgroup: false })
/** One foreground @ns/core run() of /bin/true, timed. */
async function nsRunOnce(net) {
  const t0 = process.hrtime.bigint()
  try {
    const r = await ns.run({
      command: ['/bin/true'],
      rootfs: FIXTURE,
      namespaces: nsNamespaces(net),
      init: false,
      timeout: RUN_TIMEOUT_MS,
    })
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    const ok = r.exitCode === 0 && !r.timedOut
    return { ms, ok, stderr: ok ? '' : `exit ${r.exitCode}${r.signal ? ` (${r.signal})` : ''}: ${r.stderr}` }
  } catch (err) {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    return { ms, ok: false, stderr: String(err?.message ?? err) }
  }
}
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

// c: @ns/core's warm sandboxes (`pool`), the same container set up ahead of time: a timed run is
// from pool.run() to the exit, once the pool is full again (the refill of the sandbox the last run
// took is not timed: it happens in the background, while a program does other work).
const pools = new Map()
const poolOptions = (net) => ({ rootfs: FIXTURE, namespaces: nsNamespaces(net), init: false })
async function nsPoolOnce(net) {
  if (!pools.has(net)) pools.set(net, ns.pool({ size: 2, ...poolOptions(net) }))
  const p = pools.get(net)
  try {
    await p.warm()
  } catch (err) {
    return { ms: 0, ok: false, stderr: `warm: ${String(err?.message ?? err)}` }
  }
  const warm = p.stats.warm
  const t0 = process.hrtime.bigint()
  try {
    const r = await p.run(['/bin/true'], { timeout: RUN_TIMEOUT_MS })
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    const ok = r.exitCode === 0 && !r.timedOut && p.stats.warm === warm + 1
    const why = p.stats.warm === warm + 1 ? `exit ${r.exitCode}: ${r.stderr}` : 'it started cold'
    return { ms, ok, stderr: ok ? '' : why }
  } catch (err) {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    return { ms, ok: false, stderr: String(err?.message ?? err) }
  }
}
async function closePools() {
  for (const p of pools.values()) await p.close().catch(() => {})
  pools.clear()
}
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
function addCommand(family, bin, missing, argvFor) {
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

// c: unshare from util-linux, the same namespaces, no root change.
const unshareBin = which('unshare')
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

// d: bubblewrap on the same rootfs.
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

// e: runc and crun on an OCI bundle whose root is the fixture.
const runcBin = which('runc')
const crunBin = which('crun')
const configEdits = []
const bundles = {}
let bundleError = null
{
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
}

// crun 1.8 refuses the hybrid cgroup layout (v1 controllers plus a cgroup2 at
// /sys/fs/cgroup/unified). Its rows run in a private mount namespace where
// /dev/null hides the cgroup2's cgroup.controllers; the wrapper's own cost is
// measured as a separate contender and subtracted in the report.
const crunWorkaround = isRoot && existsSync(HYBRID_CONTROLLERS) && !existsSync('/sys/fs/cgroup/cgroup.controllers')
const wrapperPrefix = crunWorkaround
  ? [
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
  : []
if (crunWorkaround && !unshareBin) bundleError ??= 'the crun workaround needs unshare, which is missing'

for (const [name, bin] of [
  ['runc', runcBin],
  ['crun', crunBin],
]) {
  const state = path.join(tmp, `${name}-state`)
  const prefix = name === 'crun' ? wrapperPrefix : []
  const deleteOne = (id) => quietSync([...prefix, bin, '--root', state, 'delete', '-f', id])
  if (bin) {
    // Whatever is left in the state directory at the end gets deleted.
    cleanupSteps.push(() => {
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

// What crun says without the work-around, for the report.
let crunRefusal = null
if (crunWorkaround && crunBin && bundles[false]) {
  const state = path.join(tmp, 'crun-probe-state')
  const id = uniqueId('nsbench-crun-probe')
  const r = await timedSpawn([crunBin, '--root', state, 'run', '--bundle', bundles[false], id])
  if (!r.ok) {
    crunRefusal = reasonFrom(r.stderr, `exit ${r.code}`)
    quietSync([...wrapperPrefix, crunBin, '--root', state, 'delete', '-f', id])
  } else {
    crunRefusal = 'it ran without the work-around here, which is kept anyway for consistency'
  }
}

// ---------------------------------------------------------------- lifecycle setup

// Each OCI runtime runs `create --bundle B ID`, `start ID` and `delete --force
// ID`, one after the other, on the same bundle. delete --force comes right
// after start returns, for all three alike: nothing waits for /bin/true to end
// (polling each runtime's own `state` would bill each a different cost), and
// --force kills it should it still run.
const nsOciBin = existsSync(NS_OCI) ? NS_OCI : null
let lcBundle = bundles[false] ?? null
const lcBundleNotes = []
let nsOciRefusal = null // what ns-oci said about the start-up bundle, had it refused it
let nsOciSkip = null

// crun's cycle, under the work-around: all three commands in ONE wrapper.
const lcWrapperScript =
  'mount --bind /dev/null "$1" && "$2" --root "$3" create --bundle "$4" "$5" && "$2" --root "$3" start "$5" && exec "$2" --root "$3" delete --force "$5"'
const lcWrapperArgv = [
  unshareBin,
  '--mount',
  '--propagation',
  'private',
  'sh',
  '-c',
  lcWrapperScript,
  'sh',
  HYBRID_CONTROLLERS,
]

/** A timed create + start + delete --force cycle of one OCI runtime; call it with a bundle. */
function ociCycle(name, bin, wrapped) {
  const state = path.join(tmp, `lc-${name}-state`)
  const errFile = path.join(tmp, `lc-${name}.stderr`)
  const forceDelete = (id) =>
    quietSync([...(wrapped ? wrapperPrefix : []), bin, '--root', state, 'delete', '--force', id])
  cleanupSteps.push(() => {
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
        r = await spawnToExit([...lcWrapperArgv, bin, state, bundle, id], fd)
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

// @ns/core's detached containers live in a state root of their own.
const nsState = path.join(tmp, 'ns-state')
async function nsForceDelete(id) {
  try {
    await new ns.DetachedContainer(id, nsState).delete({ force: true })
  } catch {
    /* gone, or never made */
  }
}
cleanupSteps.push(() => forceDeleteLeftovers(nsState, nsOciBin))

/** @ns/core detached: create, start, wait (polling every ms), delete; timed as a whole. */
async function nsDetachedOnce() {
  const id = uniqueId('nsbench-det')
  let step = 'create'
  let timer = null
  const t0 = process.hrtime.bigint()
  try {
    const c = await ns.create({
      command: ['/bin/true'],
      rootfs: FIXTURE,
      namespaces: nsNamespaces(false),
      init: false,
      root: nsState,
      name: id,
    })
    step = 'start'
    await c.start()
    step = 'wait'
    // wait() polls for ever; a time-out here gives up, and the forced delete
    // below ends the poll (the container is gone), whose error is dropped.
    const waited = c.wait({ pollMs: 1 })
    waited.catch(() => {})
    const exit = await Promise.race([
      waited,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS)
      }),
    ])
    clearTimeout(timer)
    step = 'delete'
    await c.delete()
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    const ok = exit.exitCode === 0
    return {
      ms,
      ok,
      stderr: ok
        ? ''
        : `/bin/true ended with exit ${exit.exitCode ?? '?'}${exit.signal ? `, signal ${exit.signal}` : ''}`,
    }
  } catch (err) {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    clearTimeout(timer)
    await nsForceDelete(id)
    return { ms, ok: false, stderr: `${step}: ${firstLine(err?.message ?? err)}` }
  }
}

const lcCycles = {}
if (lifecycleOn) {
  mkdirSync(nsState)
  lcCycles['ns-oci'] = nsOciBin ? ociCycle('ns-oci', nsOciBin, false) : null
  lcCycles.runc = runcBin ? ociCycle('runc', runcBin, false) : null
  lcCycles.crun = crunBin ? ociCycle('crun', crunBin, crunWorkaround) : null

  // ns-oci gets the start-up bundle first. Should it refuse that bundle, the
  // cgroup mount is the known cause (a cgroup filesystem cannot be mounted from
  // a user namespace without a cgroup namespace of its own): it is then taken
  // out, and the bundle without it serves all three runtimes alike.
  if (lcCycles['ns-oci'] && lcBundle && !bundleError) {
    const r = await lcCycles['ns-oci'](lcBundle)
    if (!r.ok) {
      nsOciRefusal = r.stderr
      const spec = JSON.parse(readFileSync(path.join(lcBundle, 'config.json'), 'utf8'))
      const mounts = spec.mounts ?? []
      spec.mounts = mounts.filter((m) => !['cgroup', 'cgroup2'].includes(m.type) && m.destination !== '/sys/fs/cgroup')
      if (spec.mounts.length < mounts.length) {
        const dir = path.join(tmp, 'bundle-lifecycle')
        mkdirSync(dir)
        writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2))
        const again = await lcCycles['ns-oci'](dir)
        if (again.ok) {
          lcBundle = dir
          lcBundleNotes.push(
            `ns-oci refused the start-up bundle ("${nsOciRefusal}"), so the lifecycle bundle is that bundle without its /sys/fs/cgroup mount, for all three runtimes`,
          )
        } else {
          nsOciSkip = `${again.stderr} (also without the /sys/fs/cgroup mount; with it: ${nsOciRefusal})`
        }
      } else {
        nsOciSkip = nsOciRefusal
      }
    }
  }
  if (lcBundle && lcBundle === bundles[false])
    lcBundleNotes.push('the start-up bundle without network namespace, unchanged')

  const missing = (name) =>
    name === 'ns-oci' ? `${path.relative(repoRoot, NS_OCI)} not found (build it)` : `${name} not installed`
  for (const name of ['ns-oci', 'runc', 'crun']) {
    const cycle = lcCycles[name]
    const wrapped = name === 'crun' && crunWorkaround
    add(
      {
        key: `${name}-cycle`,
        label: `${name} create+start+delete${wrapped ? ' (raw, in wrapper)' : ''}`,
        family: name,
        net: false,
        skipped: !cycle ? missing(name) : (bundleError ?? (name === 'ns-oci' ? nsOciSkip : null)),
        once: () => cycle(lcBundle),
      },
      lifecycle,
    )
  }
  if (crunWorkaround) {
    const errFile = path.join(tmp, 'lc-wrapper.stderr')
    add(
      {
        key: 'crun-cycle-wrapper',
        label: 'crun wrapper alone (/bin/true)',
        family: 'wrapper',
        net: false,
        skipped: unshareBin ? null : 'unshare not installed',
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
      },
      lifecycle,
    )
  }
  add(
    {
      key: 'ns-detached',
      label: '@ns/core detached create+start+wait+delete',
      family: 'ns',
      net: false,
      skipped: nsImportError,
      once: nsDetachedOnce,
    },
    lifecycle,
  )
  add(
    {
      key: 'ns-run',
      label: '@ns/core run (foreground)',
      family: 'ns',
      net: false,
      skipped: nsImportError,
      once: () => nsRunOnce(false),
    },
    lifecycle,
  )
}

/** The monitor of one detached container running `sleep 30`: its memory, in KiB. */
async function monitorMemory() {
  const out = {
    command: ['sleep', '30'],
    monitorPid: null,
    monitorCommand: null,
    monitorExe: null,
    otherProcessesOfSameBinary: null,
    vmRssKiB: null,
    rssAnonKiB: null,
    rssFileKiB: null,
    pssKiB: null,
    pssAnonKiB: null,
    pssFileKiB: null,
    privateKiB: null,
    error: null,
  }
  if (nsImportError) {
    out.error = nsImportError
    return out
  }
  const id = uniqueId('nsbench-monitor')
  let c = null
  try {
    c = await ns.runDetached({
      command: ['sleep', '30'],
      rootfs: FIXTURE,
      namespaces: nsNamespaces(false),
      init: false,
      root: nsState,
      name: id,
    })
    // Let it settle: the figures are those of a monitor that is just watching.
    await new Promise((r) => setTimeout(r, 200))
    const state = JSON.parse(readFileSync(path.join(nsState, id, 'state.json'), 'utf8'))
    const pid = state.monitorPid
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no monitorPid in ${id}/state.json`)
    out.monitorPid = pid
    out.monitorCommand = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')
    out.monitorExe = readlinkSync(`/proc/${pid}/exe`)
    const field = (text, name) => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)
      return m ? Number(m[1]) : null
    }
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
    out.vmRssKiB = field(status, 'VmRSS')
    out.rssAnonKiB = field(status, 'RssAnon')
    out.rssFileKiB = field(status, 'RssFile')
    out.pssKiB = field(rollup, 'Pss')
    out.pssAnonKiB = field(rollup, 'Pss_Anon')
    out.pssFileKiB = field(rollup, 'Pss_File')
    const pc = field(rollup, 'Private_Clean')
    const pd = field(rollup, 'Private_Dirty')
    out.privateKiB = pc === null || pd === null ? null : pc + pd
    // Pss divides the binary's pages among all processes that map it: how many
    // others run the same binary right now (this container's own process, other
    // containers, anyone's) says how far that lowers the monitor's figure.
    let others = 0
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d) || Number(d) === pid) continue
      try {
        if (readlinkSync(`/proc/${d}/exe`) === out.monitorExe) others++
      } catch {
        /* gone, or not ours to read */
      }
    }
    out.otherProcessesOfSameBinary = others
    const status2 = c.state().status
    if (status2 !== 'running') throw new Error(`the container was ${status2}, not running, when its monitor was read`)
  } catch (err) {
    out.error = firstLine(err?.message ?? err)
  } finally {
    if (c) {
      try {
        await c.delete({ force: true })
      } catch (err) {
        out.error ??= `delete --force: ${firstLine(err?.message ?? err)}`
        await nsForceDelete(id)
      }
    } else {
      await nsForceDelete(id)
    }
  }
  return out
}

/** The processes descended from this one, by PID: PID -> parent PID. */
function descendants() {
  const parent = new Map()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {
      /* gone meanwhile */
    }
  }
  const out = new Set()
  let grew = true
  while (grew) {
    grew = false
    for (const [pid, pp] of parent) {
      if (!out.has(pid) && (pp === process.pid || out.has(pp))) {
        out.add(pid)
        grew = true
      }
    }
  }
  return out
}

const POOL_MEMORY_SIZE = 8

/**
 * The memory of idle pooled sandboxes: a pool of POOL_MEMORY_SIZE made and filled, then the Pss
 * and the private memory of every process it added (each sandbox's helper and its waiting first
 * process), summed and divided by the sandboxes. The kernel's own (namespaces, mounts, page
 * tables) is not in these figures.
 */
async function poolMemory() {
  const out = { size: POOL_MEMORY_SIZE, processes: null, pssKiB: null, privateKiB: null, error: null }
  if (nsImportError) {
    out.error = nsImportError
    return out
  }
  const before = descendants()
  const p = ns.pool({ size: POOL_MEMORY_SIZE, ...poolOptions(false) })
  try {
    await p.warm()
    await new Promise((r) => setTimeout(r, 200))
    const field = (text, name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0)
    let pss = 0
    let priv = 0
    let n = 0
    for (const pid of descendants()) {
      if (before.has(pid)) continue
      try {
        const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
        pss += field(rollup, 'Pss')
        priv += field(rollup, 'Private_Clean') + field(rollup, 'Private_Dirty')
        n++
      } catch {
        /* gone meanwhile */
      }
    }
    if (p.ready !== POOL_MEMORY_SIZE) throw new Error(`${p.ready} of ${POOL_MEMORY_SIZE} sandboxes were ready`)
    out.processes = n
    out.pssKiB = Math.round(pss / POOL_MEMORY_SIZE)
    out.privateKiB = Math.round(priv / POOL_MEMORY_SIZE)
  } catch (err) {
    out.error = firstLine(err?.message ?? err)
  } finally {
    await p.close().catch(() => {})
  }
  return out
}

// ---------------------------------------------------------------- measure

// A small seeded generator (mulberry32), so an order can be replayed with --seed.
const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31)
let prngState = seed >>> 0
function random() {
  prngState = (prngState + 0x6d2b79f5) >>> 0
  let t = prngState
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
function shuffle(list) {
  const a = [...list]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}

function activeIn(list) {
  return list.filter((c) => !c.skipped)
}
function active() {
  return activeIn(contenders)
}

function noteFailure(c, r) {
  c.failures++
  c.lastError = reasonFrom(r.stderr, `exit ${r.code ?? '?'}${r.signal ? ` (${r.signal})` : ''}`)
}

// A first run of each contender: one that cannot run at all is skipped.
async function firstRuns(list) {
  for (const c of activeIn(list)) {
    const r = await c.once()
    if (!r.ok) {
      c.skipped = reasonFrom(r.stderr, `exit ${r.code ?? '?'}`)
      if (c.family === 'wrapper') {
        // Without a wrapper, crun's rows cannot be corrected either.
        for (const d of list) if (d.family === 'crun' && !d.skipped) d.skipped = `crun wrapper failed: ${c.skipped}`
      }
    }
  }
}
await firstRuns(contenders)
if (lifecycleOn) await firstRuns(lifecycle)

const machine = {
  kernel: `${os.type()} ${os.release()} (${os.version()})`,
  arch: os.arch(),
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown',
  memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
  node: process.version,
  nsCore: (() => {
    try {
      return JSON.parse(readFileSync(path.join(repoRoot, 'packages', 'core', 'package.json'), 'utf8')).version
    } catch {
      return 'unknown'
    }
  })(),
  runc: versionOf('runc'),
  crun: versionOf('crun'),
  bwrap: versionOf('bwrap'),
  unshare: versionOf('unshare'),
  nsOci: nsOciBin ? versionOf(nsOciBin) : 'not built',
  cgroups: existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? 'cgroup v2 (unified)'
    : existsSync(HYBRID_CONTROLLERS)
      ? 'hybrid (cgroup v1 controllers + cgroup2 at /sys/fs/cgroup/unified)'
      : 'cgroup v1',
  user: isRoot ? 'root' : `uid ${process.getuid?.()}`,
}

console.log(`ns start-up benchmark: /bin/true, isolated, spawn to exit`)
console.log(`fixture: ${fixtureNote}`)
console.log(
  `${opts.warmup} warm-up + ${opts.iterations} timed runs per contender, interleaved round-robin in rotating order, reshuffled each full turn (${active().length} contenders, seed ${seed})`,
)
if (lifecycleOn) {
  console.log(
    `lifecycle: ${opts.warmup} warm-up + ${opts.lifecycleIterations} timed cycles per contender, interleaved the same way, in rounds of their own (${activeIn(lifecycle).length} contenders)`,
  )
}

/**
 * Warm-up, then interleaved timed rounds over the contenders of `list` that
 * can run. Returns { rounds, elapsed, warmupFailures }.
 */
async function measure(list, iterations, tag) {
  const started = Date.now()
  for (let w = 0; w < opts.warmup && !interrupted; w++) {
    for (const c of activeIn(list)) {
      if (interrupted) break
      const r = await c.once()
      if (!r.ok) noteFailure(c, r)
    }
  }
  const warmupFailures = new Map(list.map((c) => [c.key, c.failures]))
  for (const c of list) c.failures = 0

  let rounds = 0
  let base = []
  for (let i = 0; i < iterations && !interrupted; i++) {
    const n = activeIn(list).length
    if (n === 0) break
    // Round i runs the base order rotated by i; after n rounds every contender
    // has held every position once, and the base order is shuffled anew.
    if (i % n === 0 || base.length !== n) base = shuffle(activeIn(list))
    for (let k = 0; k < n && !interrupted; k++) {
      const c = base[(i + k) % n]
      const r = await c.once()
      if (r.ok) c.samples.push(r.ms)
      else noteFailure(c, r)
    }
    rounds++
    if (process.stderr.isTTY && (i + 1) % 10 === 0) {
      process.stderr.write(`\r  ${tag}${i + 1}/${iterations} rounds, ${((Date.now() - started) / 1000).toFixed(0)} s`)
    }
  }
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K')
  return { rounds, elapsed: (Date.now() - started) / 1000, warmupFailures, stopped: rounds < iterations }
}

const startup = await measure(contenders, opts.iterations, '')
const { rounds, elapsed, warmupFailures } = startup

// The lifecycle section, then the monitor's memory, unless interrupted.
const lc = lifecycleOn && !interrupted ? await measure(lifecycle, opts.lifecycleIterations, 'lifecycle ') : null
const monitor = lifecycleOn && !interrupted ? await monitorMemory() : null
await closePools()
const poolMem = !interrupted ? await poolMemory() : null

// ---------------------------------------------------------------- report

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b)
  return { n: s.length, median: quantile(s, 0.5), p10: quantile(s, 0.1), p90: quantile(s, 0.9) }
}

const byKey = new Map(contenders.map((c) => [c.key, c]))
for (const c of contenders) {
  if (!c.skipped && c.samples.length === 0) c.skipped = `no successful runs (${c.failures} failed): ${c.lastError}`
  c.stats = c.skipped ? null : stats(c.samples)
}

// crun with the wrapper's overhead taken out: its median minus the wrapper's
// median; p10/p90 shifted by the same amount.
const wrapper = byKey.get('crun-wrapper')
const rows = []
for (const c of contenders) {
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
    rows.push({ c, label: `crun run${c.net ? ' +net' : ''} (wrapper subtracted)`, stats: adj, skipped, adjusted: true })
  }
}

// The crun reference: the wrapper-subtracted figure when the work-around is in
// use (the fair one: crun's own cost), the plain figure otherwise.
function crunRef(net) {
  const row = rows.find((r) => r.c.family === 'crun' && r.c.net === net && (crunWorkaround ? r.adjusted : true))
  return row?.stats?.median ?? null
}
function unshareRef(net) {
  return byKey.get(net ? 'unshare-net' : 'unshare')?.stats?.median ?? null
}

const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null)
const fmtRatio = (r) => (r === null ? '-' : `${r.toFixed(2)}x`)

const table = [['contender', 'median ms', 'p10 ms', 'p90 ms', 'vs crun', 'vs unshare', 'runs']]
const jsonRows = []
for (const r of rows) {
  const isWrapper = r.c.family === 'wrapper'
  const vsCrun = r.stats && !isWrapper ? ratio(r.stats.median, crunRef(r.c.net)) : null
  const vsUnshare = r.stats && !isWrapper ? ratio(r.stats.median, unshareRef(r.c.net)) : null
  const fails = r.c.failures ? ` (${r.c.failures} failed)` : ''
  if (r.skipped) {
    table.push([r.label, `skipped: ${r.skipped}`])
  } else {
    table.push([
      r.label,
      fmt(r.stats.median),
      fmt(r.stats.p10),
      fmt(r.stats.p90),
      fmtRatio(vsCrun),
      fmtRatio(vsUnshare),
      `${r.stats.n}${fails}`,
    ])
  }
  jsonRows.push({
    contender: r.label,
    key: r.adjusted ? `${r.c.key}-adjusted` : r.c.key,
    network: r.c.net,
    skipped: r.skipped ?? null,
    runs: r.stats?.n ?? 0,
    failures: r.c.failures,
    warmupFailures: warmupFailures.get(r.c.key) ?? 0,
    lastError: r.c.failures ? r.c.lastError : null,
    medianMs: r.stats?.median ?? null,
    p10Ms: r.stats?.p10 ?? null,
    p90Ms: r.stats?.p90 ?? null,
    vsCrun,
    vsUnshare,
  })
}

console.log('')
console.log('machine:')
console.log(`  kernel   ${machine.kernel} ${machine.arch}`)
console.log(`  cpus     ${machine.cpus} x ${machine.cpuModel}, ${machine.memory}`)
console.log(`  cgroups  ${machine.cgroups}`)
console.log(`  node     ${machine.node}, @ns/core ${machine.nsCore}, running as ${machine.user}`)
console.log(`  runc     ${machine.runc}`)
console.log(`  crun     ${machine.crun}`)
console.log(`  bwrap    ${machine.bwrap}`)
console.log(`  unshare  ${machine.unshare}`)
console.log(`  ns-oci   ${machine.nsOci}`)
console.log('')
console.log(`results (${rounds} rounds in ${elapsed.toFixed(1)} s${startup.stopped ? ', interrupted' : ''}):`)
printTable(table)
console.log('')
console.log(
  '  "vs crun" and "vs unshare" compare medians with the matching network setting (+net rows with +net rows).',
)
if (crunWorkaround) {
  console.log(`  crun refuses this hybrid cgroup layout${crunRefusal ? ` ("${crunRefusal}")` : ''}, so its rows run as`)
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
if (configEdits.length) console.log(`  OCI bundle: ${configEdits.join('; ')}.`)
console.log(
  '  "@ns/core pool.run" is a warm sandbox of the same options (pool({ size: 2 })): from pool.run() to the exit, the',
)
console.log('  pool full before each timed run (the refill of the sandbox a run took is not timed).')
for (const c of contenders) {
  if (!c.skipped && c.failures) console.log(`  ${c.label}: ${c.failures} timed runs failed; last error: ${c.lastError}`)
}

// ---------------------------------------------------------------- lifecycle report

const lcByKey = new Map(lifecycle.map((c) => [c.key, c]))
for (const c of lifecycle) {
  if (!c.skipped && c.samples.length === 0) {
    c.skipped = lc ? `no successful runs (${c.failures} failed): ${c.lastError}` : 'not measured (interrupted)'
  }
  c.stats = c.skipped ? null : stats(c.samples)
}
const lcWrapper = lcByKey.get('crun-cycle-wrapper')
const lcRows = []
for (const c of lifecycle) {
  lcRows.push({ c, label: c.label, stats: c.stats, skipped: c.skipped })
  if (c.family === 'crun' && crunWorkaround) {
    let adj = null
    let skipped = c.skipped
    if (!skipped && lcWrapper?.stats) {
      const m = lcWrapper.stats.median
      adj = { n: c.stats.n, median: c.stats.median - m, p10: c.stats.p10 - m, p90: c.stats.p90 - m }
    } else if (!skipped) {
      skipped = `wrapper overhead unknown: ${lcWrapper?.skipped ?? 'not measured'}`
    }
    lcRows.push({ c, label: 'crun create+start+delete (wrapper subtracted)', stats: adj, skipped, adjusted: true })
  }
}
const lcCrunRef =
  lcRows.find((r) => r.c.family === 'crun' && (crunWorkaround ? r.adjusted : true))?.stats?.median ?? null
const lcNsRunRef = lcByKey.get('ns-run')?.stats?.median ?? null

const lcTable = [['contender', 'median ms', 'p10 ms', 'p90 ms', 'vs crun', 'vs ns run', 'runs']]
const lcJsonRows = []
for (const r of lcRows) {
  const isWrapper = r.c.family === 'wrapper'
  const vsCrun = r.stats && !isWrapper ? ratio(r.stats.median, lcCrunRef) : null
  const vsNsRun = r.stats && !isWrapper ? ratio(r.stats.median, lcNsRunRef) : null
  const fails = r.c.failures ? ` (${r.c.failures} failed)` : ''
  if (r.skipped) {
    lcTable.push([r.label, `skipped: ${r.skipped}`])
  } else {
    lcTable.push([
      r.label,
      fmt(r.stats.median),
      fmt(r.stats.p10),
      fmt(r.stats.p90),
      fmtRatio(vsCrun),
      fmtRatio(vsNsRun),
      `${r.stats.n}${fails}`,
    ])
  }
  lcJsonRows.push({
    contender: r.label,
    key: r.adjusted ? `${r.c.key}-adjusted` : r.c.key,
    skipped: r.skipped ?? null,
    runs: r.stats?.n ?? 0,
    failures: r.c.failures,
    warmupFailures: lc?.warmupFailures.get(r.c.key) ?? 0,
    lastError: r.c.failures ? r.c.lastError : null,
    medianMs: r.stats?.median ?? null,
    p10Ms: r.stats?.p10 ?? null,
    p90Ms: r.stats?.p90 ?? null,
    vsCrun,
    vsNsRun,
  })
}

const lcApproach =
  'each OCI runtime runs create --bundle B ID, start ID, then delete --force ID right after start returns, without waiting ' +
  'for /bin/true to end (the same for all three; --force kills it should it still run); every command is spawned from node ' +
  'with stdin/stdout on /dev/null and stderr on a file, and timed to its exit event (a created container keeps the stdio ' +
  'it inherited)'
const lcCrunNote = crunWorkaround
  ? `crun's three commands run in ONE wrapper per cycle: unshare --mount --propagation private sh -c 'mount --bind /dev/null ` +
    `${HYBRID_CONTROLLERS} && crun create ... && crun start ... && exec crun delete --force ...'; "wrapper subtracted" takes ` +
    'away the median of the same wrapper running /bin/true once ("crun wrapper alone", measured in the same rounds). ' +
    "That leaves crun's commands forked by sh where the others are spawned by node, and also takes away one node spawn " +
    'and one /bin/true: if anything, the subtracted figure flatters crun'
  : null
const lcNsNote =
  "@ns/core detached: create({ command: ['/bin/true'], rootfs, namespaces: { network: false, cgroup: false }, init: false, " +
  'root, name }), start(), wait({ pollMs: 1 }), delete(); foreground: run() with the same options but root and name'

if (lifecycleOn) {
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
  if (lcBundleNotes.length) console.log(`  OCI bundle: ${lcBundleNotes.join('; ')}.`)
  console.log(`  ${lcNsNote}.`)
  for (const c of lifecycle) {
    if (!c.skipped && c.failures)
      console.log(`  ${c.label}: ${c.failures} timed runs failed; last error: ${c.lastError}`)
  }

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

if (poolMem) {
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

console.log('')
console.log('targets:')
const targets = []
for (const net of [false, true]) {
  const c = byKey.get(net ? 'ns-net' : 'ns')
  const m = c?.stats?.median ?? null
  const name = c?.label ?? '@ns/core'
  const vsC = ratio(m, crunRef(net))
  const vsU = ratio(m, unshareRef(net))
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
{
  const c = byKey.get('ns-pool')
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
  targets.push(tP, tM)
}
if (lifecycleOn) {
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
}

// Every container should be gone by now; whatever is left in a state
// directory is reported here, and force-deleted by cleanup() below.
const leftovers = []
for (const dir of readdirSync(tmp)) {
  if (!dir.endsWith('-state')) continue
  for (const id of readdirSync(path.join(tmp, dir))) leftovers.push(`${dir}/${id}`)
}
if (leftovers.length) console.log(`\nnote: containers left behind (force-deleted now): ${leftovers.join(', ')}`)

// ---------------------------------------------------------------- CLI start-up section

/**
 * tools/bench-cli.mjs in a process of its own, its output inline; resolves what it wrote as
 * JSON, or why there is none.
 */
let cliChild = null
cleanupSteps.push(() => {
  if (cliChild && cliChild.exitCode === null && cliChild.signalCode === null) cliChild.kill('SIGTERM')
})
async function cliSection() {
  if (!opts.cli) return { skipped: '--no-cli' }
  if (interrupted) return { skipped: 'interrupted' }
  const jsonFile = path.join(tmp, 'cli.json')
  const args = [
    path.join(repoRoot, 'tools', 'bench-cli.mjs'),
    '--iterations',
    String(opts.cliIterations),
    '--warmup',
    String(Math.min(opts.warmup, 5)),
    '--json',
    jsonFile,
  ]
  console.log('')
  const code = await new Promise((resolve) => {
    cliChild = spawn(process.execPath, args, { stdio: 'inherit', env: { ...process.env, NS_BENCH_CLI_EMBEDDED: '1' } })
    cliChild.on('error', (err) => resolve(`cannot start it: ${err.message}`))
    cliChild.on('exit', (c, sig) => resolve(c ?? sig))
  })
  let out = null
  try {
    out = JSON.parse(readFileSync(jsonFile, 'utf8'))
  } catch {
    /* none written */
  }
  if (code !== 0)
    console.log(`note: the CLI section ended with ${typeof code === 'number' ? `exit code ${code}` : code}`)
  return out ?? { skipped: `no results (${typeof code === 'number' ? `exit code ${code}` : code})` }
}
const cliStartup = await cliSection()

// ---------------------------------------------------------------- network section

/** tools/bench-net.mjs in a process (and a sandbox host) of its own, its output inline. */
let netChild = null
cleanupSteps.push(() => {
  if (netChild && netChild.exitCode === null && netChild.signalCode === null) netChild.kill('SIGTERM')
})
async function netSection() {
  if (!opts.net) return { skipped: '--no-net' }
  if (interrupted) return { skipped: 'interrupted' }
  const jsonFile = path.join(tmp, 'net.json')
  const args = [
    path.join(repoRoot, 'tools', 'bench-net.mjs'),
    '--iterations',
    String(opts.netIterations),
    '--warmup',
    String(Math.min(opts.warmup, 5)),
    '--json',
    jsonFile,
  ]
  console.log('')
  const code = await new Promise((resolve) => {
    netChild = spawn(process.execPath, args, { stdio: 'inherit' })
    netChild.on('error', (err) => resolve(`cannot start it: ${err.message}`))
    netChild.on('exit', (c, sig) => resolve(c ?? sig))
  })
  let out = null
  try {
    out = JSON.parse(readFileSync(jsonFile, 'utf8'))
  } catch {
    /* none written */
  }
  if (code !== 0)
    console.log(`note: the network section ended with ${typeof code === 'number' ? `exit code ${code}` : code}`)
  return out ?? { skipped: `no results (${typeof code === 'number' ? `exit code ${code}` : code})` }
}
const network = await netSection()

// ---------------------------------------------------------------- server section

/**
 * The third section: tools/bench-server.mjs in a process of its own, its output inline. It
 * stops and cleans up by itself on Ctrl-C (it gets the terminal's SIGINT too). Resolves what it
 * wrote as JSON, or why there is none.
 */
let serverChild = null
cleanupSteps.push(() => {
  // Our own exit while it still runs: it cleans up on SIGTERM.
  if (serverChild && serverChild.exitCode === null && serverChild.signalCode === null) serverChild.kill('SIGTERM')
})
async function serverSection() {
  if (!opts.server) return { skipped: '--no-server' }
  if (interrupted) return { skipped: 'interrupted' }
  const jsonFile = path.join(tmp, 'server.json')
  const args = [
    path.join(repoRoot, 'tools', 'bench-server.mjs'),
    '--containers',
    String(opts.serverContainers),
    '--json',
    jsonFile,
  ]
  if (!opts.install) args.push('--no-install')
  console.log('')
  const code = await new Promise((resolve) => {
    // NS_BENCH_SERVER_EMBEDDED: it leaves out its "wrote FILE" line, the file being ours.
    serverChild = spawn(process.execPath, args, {
      stdio: 'inherit',
      env: { ...process.env, NS_BENCH_SERVER_EMBEDDED: '1' },
    })
    serverChild.on('error', (err) => resolve(`cannot start it: ${err.message}`))
    serverChild.on('exit', (c, sig) => resolve(c ?? sig))
  })
  let out = null
  try {
    out = JSON.parse(readFileSync(jsonFile, 'utf8'))
  } catch {
    /* none written */
  }
  if (code !== 0)
    console.log(`note: the server section ended with ${typeof code === 'number' ? `exit code ${code}` : code}`)
  return out ?? { skipped: `no results (${typeof code === 'number' ? `exit code ${code}` : code})` }
}
const server = await serverSection()

if (opts.json) {
  const out = {
    date: new Date().toISOString(),
    command: '/bin/true',
    fixture: FIXTURE,
    iterations: opts.iterations,
    rounds,
    warmup: opts.warmup,
    seed,
    interrupted,
    elapsedSeconds: elapsed,
    machine,
    crunWorkaround: crunWorkaround
      ? {
          applied: true,
          reason: 'crun refuses the hybrid cgroup layout',
          wrapper: `unshare --mount --propagation private sh -c 'mount --bind /dev/null ${HYBRID_CONTROLLERS} && exec crun ...'`,
          adjustment:
            'wrapper-subtracted rows = crun medians (and p10/p90) minus the median of the wrapper running /bin/true',
        }
      : { applied: false },
    ociConfigEdits: configEdits,
    results: jsonRows,
    lifecycle: lifecycleOn
      ? {
          command: '/bin/true',
          network: false,
          iterations: opts.lifecycleIterations,
          rounds: lc?.rounds ?? 0,
          warmup: opts.warmup,
          elapsedSeconds: lc?.elapsed ?? 0,
          approach: lcApproach,
          deleteAfterStart: 'delete --force right after start, for all three runtimes',
          bundle: !lcBundle
            ? null
            : lcBundle === bundles[false]
              ? 'the start-up bundle without network namespace'
              : 'the start-up bundle without network namespace, minus its /sys/fs/cgroup mount',
          bundleNotes: lcBundleNotes,
          nsOciRefusedStartupBundle: nsOciRefusal,
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
          results: lcJsonRows,
        }
      : null,
    monitorMemory: monitor,
    poolMemory: poolMem,
    leftovers,
    targets,
    cli: cliStartup,
    network,
    server,
  }
  mkdirSync(path.dirname(opts.json), { recursive: true })
  writeFileSync(opts.json, `${JSON.stringify(out, null, 2)}\n`)
  console.log(`\nwrote ${opts.json}`)
}

cleanup()
process.exit(interrupted ? 130 : 0)
