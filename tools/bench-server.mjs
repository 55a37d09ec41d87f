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

import { execFileSync, spawn, spawnSync } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {
  ensureFixture,
  firstLine,
  FIXTURE,
  fmt,
  forceDeleteLeftovers,
  installPackages,
  lastLine,
  printTable,
  quantile,
  readArgs,
  repoRoot,
  round,
  runSteps,
  trapSignals,
  usageExit,
  versionOf,
  which,
} from './bench-common.mjs'

const NS_CLI = path.join(repoRoot, 'packages', 'cli', 'bin', 'ns.js')
const NS_CLI_DIST = path.join(repoRoot, 'packages', 'cli', 'dist', 'index.js')
const NS_OCI = path.join(repoRoot, 'packages', 'native', 'bin', 'ns-oci')
const PODMAN_IMAGE = 'localhost/nsbench:latest'
const PODMAN_API = '/v1.41'
const PODMAN_CONF =
  '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'

const REQUEST_TIMEOUT_MS = 60_000
const START_TIMEOUT_MS = 20_000
const SETTLE_MS = 5_000

const TARGET_RATIO = 20
const TARGET_MEDIAN_MS = 15

// ---------------------------------------------------------------- options

function usage(code) {
  const text = `usage: node tools/bench-server.mjs [options]

  --containers N          containers run to completion with POST /v1/run (default 500)
  --concurrency N         workers sending requests back to back (default 8)
  --serial-containers N   POST /v1/run at each lower concurrency of the sweep, for comparison
                          (default 100; 0 skips)
  --sweep LIST            the lower concurrencies, comma-separated (default 1,2,4)
  --lifecycle-containers N
                          containers through create + start + wait + delete (default 100; 0 skips)
  --load-seconds S        length of the list/inspect load test (default 5; 0 skips)
  --load-containers N     detached containers (sleep 1000) running during it (default 20)
  --podman-containers N   containers through podman's service (default 80; 0 skips podman)
  --pool-size N           warm sandboxes of ns serve --pool for its POST /v1/run phases (default 4;
                          0 skips them)
  --pool-containers N     POST /v1/run per phase over ns serve --pool (default 200; 0 skips)
  --floor-containers N    bare containers of tools/bench-floor.c, the kernel's own cost with no
                          runtime, for the yardstick (default 800; 0 skips)
  --warmup N              untimed requests before the timed phases (default 200: a server's steady
                          state, its hot paths compiled by V8; podman gets at most a tenth of its containers)
  --json FILE             also write the results as JSON to FILE
  --no-podman             leave podman out
  --no-install            do not apt-get install podman or runc when missing
  -h, --help              this text
`
  usageExit(text, code)
}

function parseArgs(argv) {
  const opts = {
    containers: 500,
    concurrency: 8,
    serialContainers: 100,
    sweep: [1, 2, 4],
    floorContainers: 800,
    lifecycleContainers: 100,
    loadSeconds: 5,
    loadContainers: 20,
    podmanContainers: 80,
    poolSize: 4,
    poolContainers: 200,
    warmup: 200,
    json: null,
    podman: true,
    install: true,
  }
  readArgs(argv, {
    prog: 'bench-server',
    usage,
    opts,
    counts: {
      '--containers': ['containers', 1],
      '--concurrency': ['concurrency', 1],
      '--serial-containers': ['serialContainers', 0],
      '--lifecycle-containers': ['lifecycleContainers', 0],
      '--load-containers': ['loadContainers', 1],
      '--podman-containers': ['podmanContainers', 0],
      '--pool-size': ['poolSize', 0],
      '--pool-containers': ['poolContainers', 0],
      '--floor-containers': ['floorContainers', 0],
      '--warmup': ['warmup', 0],
    },
    aliases: { '-n': '--containers', '-c': '--concurrency', '-h': '--help' },
    handle(arg, next, fail) {
      if (arg === '--load-seconds') {
        // Seconds need not be whole.
        const n = Number(next())
        if (!Number.isFinite(n) || n < 0) fail('--load-seconds needs a number >= 0')
        opts.loadSeconds = n
      } else if (arg === '--sweep') {
        const list = next().split(',').map(Number)
        if (!list.every((n) => Number.isInteger(n) && n >= 1)) fail('--sweep needs whole numbers >= 1, comma-separated')
        opts.sweep = list
      } else if (arg === '--json') opts.json = path.resolve(next())
      else if (arg === '--no-podman') opts.podman = false
      else if (arg === '--no-install') opts.install = false
      else if (arg === '--help') usage(0)
      else fail(`unknown argument ${arg}`)
    },
  })
  if (opts.podmanContainers === 0) opts.podman = false
  return opts
}

const opts = parseArgs(process.argv.slice(2))

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const now = () => Number(process.hrtime.bigint()) / 1e6

/** apt-get install what podman's section needs, as bench.mjs does for its tools; null, or why not. */
function installMissing() {
  return installPackages(
    ['podman', 'runc'].filter((cmd) => !which(cmd)),
    opts.install,
  )
}

function summary(samples) {
  const s = [...samples].sort((a, b) => a - b)
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN
  return {
    n: s.length,
    medianMs: round(quantile(s, 0.5)),
    p90Ms: round(quantile(s, 0.9)),
    p99Ms: round(quantile(s, 0.99)),
    minMs: round(s[0] ?? NaN),
    maxMs: round(s.at(-1) ?? NaN),
    meanMs: round(mean),
  }
}

/** A line about what runs now, for a person at a terminal only (as tools/bench.mjs does). */
const progress = (text) => {
  if (process.stderr.isTTY) process.stderr.write(text)
}

// ---------------------------------------------------------------- clean-up on every way out

const tmp = mkdtempSync(path.join(os.tmpdir(), 'ns-bench-server-'))
const cleanupSteps = []
let cleanedUp = false
/** Synchronous, so it can run from the 'exit' event too. Steps run last-registered first. */
function cleanup() {
  if (cleanedUp) return
  cleanedUp = true
  runSteps(cleanupSteps, (err) =>
    console.error(`bench-server: clean-up step failed: ${firstLine(err?.message ?? err)}`),
  )
  unmountUnder(tmp)
  try {
    rmSync(tmp, { recursive: true, force: true })
  } catch (err) {
    console.error(`bench-server: cannot remove ${tmp}: ${firstLine(err?.message ?? err)}`)
  }
}
process.on('exit', cleanup)
let interrupted = false
trapSignals('bench-server', 'stopping and cleaning up', cleanup, () => (interrupted = true))
process.on('uncaughtException', (err) => {
  console.error(`bench-server: ${err?.stack ?? err}`)
  cleanup()
  process.exit(1)
})

/** Mount points whose path lies under `dir`, deepest first. */
function mountsUnder(dir) {
  let text = ''
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8')
  } catch {
    return []
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4].replace(/\\040/g, ' '))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .reverse()
}

function unmountUnder(dir) {
  const left = mountsUnder(dir)
  for (const m of left) spawnSync('umount', ['-l', m], { stdio: 'ignore' })
  return left
}

/** SIGTERM a process group we started, SIGKILL it after `graceMs`; synchronous. */
function stopGroupSync(child, graceMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const alive = () => {
    try {
      process.kill(child.pid, 0)
      // A zombie still answers kill 0: look at its state.
      const st = readFileSync(`/proc/${child.pid}/stat`, 'utf8')
      return !/^\d+ \(.*\) Z /.test(st)
    } catch {
      return false
    }
  }
  try {
    process.kill(-child.pid, 'SIGTERM')
  } catch {
    /* gone */
  }
  const until = Date.now() + graceMs
  while (alive() && Date.now() < until) spawnSync('sleep', ['0.05'])
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    /* gone */
  }
}

/** The same, asynchronously, for the normal path. */
async function stopGroup(child, graceMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  try {
    process.kill(-child.pid, 'SIGTERM')
  } catch {
    return
  }
  const t = setTimeout(() => {
    try {
      process.kill(-child.pid, 'SIGKILL')
    } catch {
      /* gone */
    }
  }, graceMs)
  await exited
  clearTimeout(t)
  // Whatever else is left in its group.
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    /* gone */
  }
}

// ---------------------------------------------------------------- HTTP client

/** A keep-alive client of one unix socket. */
function client(socketPath, concurrency) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency })
  const counters = { retries: 0 }
  /**
   * One request; resolves { status, body, ms, error }, never rejects. A request on a reused
   * keep-alive connection that the server had closed meanwhile (ECONNRESET before any answer)
   * is sent again once, as Node's documentation advises; such retries are counted.
   */
  function request(method, urlPath, body, retry = true) {
    return new Promise((resolve) => {
      const payload = body === undefined ? null : Buffer.from(JSON.stringify(body))
      const headers = payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}
      const t0 = now()
      let settled = false
      const done = (r) => {
        if (settled) return
        settled = true
        resolve({ ms: now() - t0, ...r })
      }
      const req = http.request({ socketPath, path: urlPath, method, headers, agent }, (res) => {
        const chunks = []
        res.on('data', (c) => chunks.push(c))
        res.on('error', (err) => done({ status: res.statusCode, body: null, error: err.message }))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let parsed = text
          if ((res.headers['content-type'] ?? '').includes('json') && text) {
            try {
              parsed = JSON.parse(text)
            } catch {
              /* keep the text */
            }
          }
          done({ status: res.statusCode, body: parsed, error: null })
        })
      })
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)))
      req.on('error', (err) => {
        if (settled) return
        if (retry && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          counters.retries++
          settled = true
          request(method, urlPath, body, false).then(resolve)
          return
        }
        done({ status: null, body: null, error: `${err.code ?? 'error'}: ${err.message}` })
      })
      req.end(payload ?? undefined)
    })
  }
  return { request, agent, counters, close: () => agent.destroy() }
}

/** What went wrong with a response, as one line. */
function describe(what, r) {
  if (r.error) return `${what}: ${r.error}`
  const msg =
    r.body?.error?.message ?? r.body?.message ?? r.body?.cause ?? (typeof r.body === 'string' ? firstLine(r.body) : '')
  return `${what}: HTTP ${r.status}${msg ? ` ${msg}` : ''}`
}

/**
 * `count` jobs by `workers` workers, each taking the next job as soon as it is done with one.
 * `job(i)` resolves { ok, ms, error?, extra? }. Returns samples of the good ones, the failures,
 * and the wall time from the first start to the last end.
 */
async function pool(count, workers, job) {
  const samples = []
  const extras = []
  const errors = []
  let next = 0
  let failures = 0
  const t0 = now()
  const worker = async () => {
    while (!interrupted) {
      const i = next++
      if (i >= count) return
      const r = await job(i)
      if (r.ok) {
        samples.push(r.ms)
        if (r.extra) extras.push(r.extra)
      } else {
        failures++
        if (errors.length < 5) errors.push(r.error)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(workers, count) }, worker))
  const wallMs = now() - t0
  return { samples, extras, failures, errors, wallMs, attempted: Math.min(next, count) }
}

function phaseResult(label, p, concurrency) {
  const s = summary(p.samples)
  return {
    contender: label,
    concurrency,
    containers: p.attempted,
    ok: p.samples.length,
    failed: p.failures,
    errors: p.errors,
    wallSeconds: round(p.wallMs / 1000, 3),
    // Containers that ran and ended well, over the wall time of the phase.
    containersPerSecond: round(p.samples.length / (p.wallMs / 1000), 1),
    ...s,
  }
}

// ---------------------------------------------------------------- CPU accounting

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
  const n = Number(firstLine(r.stdout))
  return Number.isInteger(n) && n > 0 ? n : 100
})()

/** CPU time of a process and of its reaped children (the ns-oci helpers of POST /v1/run), in ms. */
function processCpu(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = st
      .slice(st.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number)
    // After the comm: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
    return { self: ((f[11] + f[12]) * 1000) / CLK_TCK, children: ((f[13] + f[14]) * 1000) / CLK_TCK }
  } catch {
    return { self: NaN, children: NaN }
  }
}

/** CPU time spent by the whole machine, all CPUs, in ms: user, nice, system, irq, softirq, steal. */
function machineBusy() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    return ((f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0)) * 1000) / CLK_TCK
  } catch {
    return NaN
  }
}

/**
 * The zygotes of a server: its children running `ns-oci zygote`, which fork its helpers (and
 * reap them, so the helpers' CPU time is theirs, not the server's).
 */
function zygotesOf(serverPid) {
  const found = []
  for (const [pid, p] of processTable()) {
    if (p.ppid !== serverPid || p.comm !== 'ns-oci') continue
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1] === 'zygote') found.push(pid)
    } catch {
      /* gone */
    }
  }
  return found
}

/** The server's CPU: its own, and that of its helpers (reaped by it, or by its zygotes). */
function serverCpu(serverPid) {
  const cpu = processCpu(serverPid)
  for (const z of zygotesOf(serverPid)) {
    const zc = processCpu(z)
    cpu.children += zc.self + zc.children
  }
  return cpu
}

function cpuMark(serverPid) {
  return { machine: machineBusy(), server: serverCpu(serverPid), client: process.cpuUsage() }
}

/** CPU per container between two marks, in ms: the server's node, its helpers, us, the rest. */
function cpuPerContainer(a, b, n) {
  if (!n) return null
  const machine = b.machine - a.machine
  const serverNode = b.server.self - a.server.self
  const helpers = b.server.children - a.server.children
  const cu = process.cpuUsage(a.client)
  const client = (cu.user + cu.system) / 1000
  const other = machine - serverNode - helpers - client
  const per = (x) => round(x / n)
  return {
    totalMs: per(machine),
    serverNodeMs: per(serverNode),
    helpersMs: per(helpers),
    clientMs: per(client),
    otherMs: per(other),
  }
}

// ---------------------------------------------------------------- leak check

/** Every process: pid -> { ppid, state, comm }. */
function processTable() {
  const table = new Map()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8')
      const close = st.lastIndexOf(')')
      const comm = st.slice(st.indexOf('(') + 1, close)
      const [state, ppid] = st.slice(close + 2).split(' ')
      table.set(Number(d), { ppid: Number(ppid), state, comm })
    } catch {
      /* gone */
    }
  }
  return table
}

function hasTag(pid, tag) {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(tag)
  } catch {
    return false
  }
}

/** The roots of the cgroup hierarchies: /sys/fs/cgroup itself on v2, one per controller on v1. */
function cgroupRoots() {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return ['/sys/fs/cgroup']
  try {
    return readdirSync('/sys/fs/cgroup').map((c) => path.join('/sys/fs/cgroup', c))
  } catch {
    return [] // no cgroups
  }
}

/** Every directory below `dir`, at any depth; none when it cannot be read (or is not there). */
function dirsBelow(dir, out = []) {
  let entries = []
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return out
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue
    const p = path.join(dir, e.name)
    out.push(p)
    dirsBelow(p, out)
  }
  return out
}

/** The cgroup directories where @ns/core puts containers: `<controller>/ns` on v1, `ns` on v2. */
function nsCgroupDirs() {
  return cgroupRoots()
    .map((r) => path.join(r, 'ns'))
    .filter((d) => existsSync(d))
}

function cgroupList() {
  return nsCgroupDirs().flatMap((d) => dirsBelow(d))
}

/**
 * What the server and its containers hold now. Processes: every process that carries our tag
 * in its environment (the server passes its environment to the ns-oci helpers and monitors,
 * which leave its process tree) and their descendants, the server itself left out; zombies:
 * those of them, and any ns-oci, in state Z.
 */
function snapshot(server, stateRoot, tag) {
  const table = processTable()
  const ours = new Set()
  for (const pid of table.keys()) if (pid !== server.pid && hasTag(pid, tag)) ours.add(pid)
  // Descendants of the server and of every tagged process, to a fixed point.
  let grew = true
  while (grew) {
    grew = false
    for (const [pid, p] of table) {
      if (ours.has(pid)) continue
      if (p.ppid === server.pid || ours.has(p.ppid)) {
        ours.add(pid)
        grew = true
      }
    }
  }
  const processes = []
  const zombies = []
  // The server's zygote lives as long as the server: not a container's.
  const zygotes = new Set(zygotesOf(server.pid))
  for (const pid of ours) {
    const p = table.get(pid)
    if (zygotes.has(pid) && p.state !== 'Z') continue
    if (p.state === 'Z') zombies.push(`${pid} ${p.comm}`)
    else processes.push(`${pid} ${p.comm}`)
  }
  for (const [pid, p] of table)
    if (p.state === 'Z' && p.comm === 'ns-oci' && !ours.has(pid)) zombies.push(`${pid} ${p.comm} (parent ${p.ppid})`)
  let mounts = []
  try {
    mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
  } catch {
    /* none */
  }
  let state = []
  try {
    state = readdirSync(stateRoot)
  } catch {
    /* not made yet */
  }
  return { processes, zombies, mounts, cgroups: cgroupList(), state }
}

/** After minus before, as counts and the new items; `zombies` is an absolute count. */
function compare(before, after) {
  const added = (a, b) => {
    const seen = new Set(a)
    return b.filter((x) => !seen.has(x))
  }
  const d = {
    processes: after.processes.length - before.processes.length,
    mounts: after.mounts.length - before.mounts.length,
    cgroups: after.cgroups.length - before.cgroups.length,
    stateDirs: after.state.length - before.state.length,
    zombies: after.zombies.length,
  }
  const what = []
  if (d.processes > 0)
    what.push(`${d.processes} process(es): ${added(before.processes, after.processes).slice(0, 5).join(', ')}`)
  if (d.mounts > 0)
    what.push(
      `${d.mounts} mount(s): ${added(before.mounts, after.mounts)
        .slice(0, 3)
        .map((l) => l.split(' ').slice(3, 5).join(' '))
        .join('; ')}`,
    )
  if (d.cgroups > 0) what.push(`${d.cgroups} cgroup(s): ${added(before.cgroups, after.cgroups).slice(0, 5).join(', ')}`)
  if (d.stateDirs > 0)
    what.push(`${d.stateDirs} state dir(s): ${added(before.state, after.state).slice(0, 5).join(', ')}`)
  if (d.zombies > 0) what.push(`${d.zombies} zombie(s): ${after.zombies.slice(0, 5).join(', ')}`)
  return { deltas: d, leaked: what }
}

/** Compare, again and again for up to SETTLE_MS while anything is still above the baseline (teardown is partly asynchronous). */
async function leakCheck(label, before, take) {
  const t0 = Date.now()
  let c
  let after
  for (;;) {
    after = take()
    c = compare(before, after)
    if (c.leaked.length === 0 || Date.now() - t0 >= SETTLE_MS || interrupted) break
    await sleep(100)
  }
  return {
    after: label,
    settledMs: Date.now() - t0,
    ...c.deltas,
    before: {
      processes: before.processes.length,
      mounts: before.mounts.length,
      cgroups: before.cgroups.length,
      stateDirs: before.state.length,
      zombies: before.zombies.length,
    },
    afterCounts: {
      processes: after.processes.length,
      mounts: after.mounts.length,
      cgroups: after.cgroups.length,
      stateDirs: after.state.length,
      zombies: after.zombies.length,
    },
    leaked: c.leaked,
  }
}

function leakLine(l) {
  const sign = (x) => (x >= 0 ? `+${x}` : `${x}`)
  const settled = l.settledMs >= 100 ? ` (after ${(l.settledMs / 1000).toFixed(1)} s for the teardown to settle)` : ''
  return (
    `processes ${sign(l.processes)}, mounts ${sign(l.mounts)}, cgroups ${sign(l.cgroups)}, state dirs ${sign(l.stateDirs)}, zombies ${l.zombies}` +
    ` -> ${l.leaked.length ? `LEAKED: ${l.leaked.join('; ')}` : 'no leaks'}${settled}`
  )
}

// ---------------------------------------------------------------- services

/**
 * Waits for a service we started (`child`) to answer on the unix socket it was told to make:
 * GET `probe` every `pollMs` until `ready(answer)`, for up to START_TIMEOUT_MS. Resolves null once
 * it is ready, or else why not: its exit and the last line of its log, the time-out, or
 * 'interrupted'.
 */
async function serviceReady({ name, child, socket, probe, ready, logFile, pollMs }) {
  const c = client(socket, 1)
  try {
    const until = Date.now() + START_TIMEOUT_MS
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        return `${name} exited (${child.exitCode ?? child.signalCode}): ${lastLine(readFileSync(logFile, 'utf8'), 'no message')}`
      }
      if (existsSync(socket)) {
        const r = await c.request('GET', probe)
        if (ready(r)) return null
      }
      if (Date.now() > until) return `${name} did not answer GET ${probe} within ${START_TIMEOUT_MS / 1000} s`
      if (interrupted) return 'interrupted'
      await sleep(pollMs)
    }
  } finally {
    c.close()
  }
}

// ---------------------------------------------------------------- ns serve

/** Start `ns serve` on a socket of our own; resolves once GET /v1/health answers. */
async function startNsServer(tag, extra = [], name = 'ns') {
  const dir = path.join(tmp, name)
  mkdirSync(dir)
  const socket = path.join(dir, 'ns.sock')
  const root = path.join(dir, 'state')
  const errFile = path.join(dir, 'serve.stderr')
  const errFd = openSync(errFile, 'w')
  // Its own process group: a Ctrl-C at the terminal reaches us, and we stop it once its
  // containers are gone. The request log (one JSON line per request on stdout) goes to /dev/null.
  const argv = [NS_CLI, '--root', root, 'serve', '--socket', socket, '--allow-bind', path.dirname(FIXTURE), ...extra]
  const child = spawn(process.execPath, argv, {
    stdio: ['ignore', 'ignore', errFd],
    detached: true,
    env: { ...process.env, NS_BENCH_SERVER_TAG: tag.split('=')[1] },
  })
  closeSync(errFd)
  const server = {
    child,
    pid: child.pid,
    socket,
    root,
    errFile,
    argv: ['node', path.relative(repoRoot, NS_CLI), ...argv.slice(1)],
  }
  cleanupSteps.push(() => nsServerCleanupSync(server))
  const why = await serviceReady({
    name: 'ns serve',
    child,
    socket,
    probe: '/v1/health',
    ready: (r) => r.status === 200 && r.body?.ok === true,
    logFile: errFile,
    pollMs: 50,
  })
  if (why) throw new Error(why)
  return server
}

/** Whatever is left in the server's state root is force-deleted, then the server stopped. Synchronous. */
function nsServerCleanupSync(server) {
  forceDeleteLeftovers(server.root, existsSync(NS_OCI) ? NS_OCI : null)
  stopGroupSync(server.child)
}

/** Force-delete every container of the server, over its API. */
async function deleteAll(c) {
  const r = await c.request('GET', '/v1/containers')
  if (r.status !== 200 || !Array.isArray(r.body)) return
  await Promise.all(r.body.map((s) => c.request('DELETE', `/v1/containers/${encodeURIComponent(s.id)}?force=true`)))
}

async function nsRunJob(c, body) {
  const r = await c.request('POST', '/v1/run', body)
  if (r.status !== 200) return { ok: false, ms: r.ms, error: describe('POST /v1/run', r) }
  if (r.body?.exitCode !== 0) {
    return {
      ok: false,
      ms: r.ms,
      error: `POST /v1/run: exitCode ${r.body?.exitCode}${r.body?.signal ? ` (${r.body.signal})` : ''}${r.body?.stderr ? `: ${firstLine(r.body.stderr)}` : ''}`,
    }
  }
  return { ok: true, ms: r.ms, extra: { serverMs: r.body.durationMs } }
}

/**
 * How the four calls of a detached container go in one API: where its containers are, what
 * the create call is named and answers with, the statuses of a start and a delete that went
 * well, how the delete is sent, and what the wait's answer says of an exit that was not 0.
 */
const NS_CALLS = {
  containers: '/v1/containers',
  create: { path: '/v1/containers', what: 'POST /v1/containers', id: (b) => b?.id },
  startStatus: [200],
  delete: { query: '', what: 'DELETE', statuses: [204] },
  badExit: (b) => (b?.exitCode === 0 ? null : `exitCode ${b?.exitCode}${b?.signal ? ` (${b.signal})` : ''}`),
}
const PODMAN_CALLS = {
  containers: `${PODMAN_API}/containers`,
  create: { path: `${PODMAN_API}/containers/create`, what: 'create', id: (b) => b?.Id },
  startStatus: [204],
  delete: { query: '?force=true', what: 'delete', statuses: [204, 200] },
  badExit: (b) =>
    b?.StatusCode === 0 ? null : `StatusCode ${b?.StatusCode}${b?.Error?.Message ? `: ${b.Error.Message}` : ''}`,
}

/**
 * create, start, wait, delete: the four calls of a detached container, timed as a whole and one
 * by one, in the API that `calls` describes. A container left behind by a failed call is
 * force-deleted.
 */
async function cycleJob(c, calls, body) {
  const t0 = now()
  const steps = {}
  const at = (id) => `${calls.containers}/${encodeURIComponent(id)}`
  const fail = async (what, r, id) => {
    if (id) await c.request('DELETE', `${at(id)}?force=true`)
    return { ok: false, ms: now() - t0, error: describe(what, r) }
  }
  const step = async (name, method, urlPath, payload) => {
    const r = await c.request(method, urlPath, payload)
    steps[name] = r.ms
    return r
  }
  const cr = await step('create', 'POST', calls.create.path, body)
  const id = calls.create.id(cr.body)
  if (cr.status !== 201 || typeof id !== 'string') return fail(calls.create.what, cr, id)
  const st = await step('start', 'POST', `${at(id)}/start`)
  if (!calls.startStatus.includes(st.status)) return fail('start', st, id)
  const wt = await step('wait', 'POST', `${at(id)}/wait`)
  if (wt.status !== 200) return fail('wait', wt, id)
  const del = await step('delete', 'DELETE', `${at(id)}${calls.delete.query}`)
  if (!calls.delete.statuses.includes(del.status)) return fail(calls.delete.what, del, id)
  const badExit = calls.badExit(wt.body)
  if (badExit) return { ok: false, ms: now() - t0, error: `wait: ${badExit}` }
  return { ok: true, ms: now() - t0, extra: steps }
}

function stepMedians(extras) {
  const out = {}
  for (const k of ['create', 'start', 'wait', 'delete'])
    out[k] = round(
      quantile(
        extras.map((e) => e[k]).sort((a, b) => a - b),
        0.5,
      ),
    )
  return out
}

/** GET /v1/containers and GET /v1/containers/{id}, alternately, by every worker, for `seconds`. */
async function listInspectLoad(c, ids, seconds, workers) {
  const byKind = { list: [], inspect: [] }
  const errors = []
  let failures = 0
  let n = 0
  const t0 = now()
  const end = t0 + seconds * 1000
  const worker = async (w) => {
    for (let k = w; now() < end && !interrupted; k++) {
      const list = k % 2 === 0
      const id = ids[n++ % ids.length]
      const r = list
        ? await c.request('GET', '/v1/containers')
        : await c.request('GET', `/v1/containers/${encodeURIComponent(id)}`)
      let error = null
      if (r.status !== 200) error = describe(list ? 'GET /v1/containers' : `GET /v1/containers/${id}`, r)
      else if (list && (!Array.isArray(r.body) || r.body.length < ids.length))
        error = `GET /v1/containers: ${Array.isArray(r.body) ? r.body.length : 'no'} containers listed, ${ids.length} expected`
      else if (!list && (r.body?.id !== id || r.body?.status !== 'running'))
        error = `GET /v1/containers/${id}: ${r.body?.id} ${r.body?.status}, expected running`
      if (error) {
        failures++
        if (errors.length < 5) errors.push(error)
      } else {
        byKind[list ? 'list' : 'inspect'].push(r.ms)
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)))
  const wallMs = now() - t0
  const all = [...byKind.list, ...byKind.inspect]
  return {
    concurrency: workers,
    detachedContainers: ids.length,
    seconds: round(wallMs / 1000, 3),
    requests: all.length + failures,
    requestsPerSecond: round((all.length + failures) / (wallMs / 1000), 1),
    failed: failures,
    errors,
    ...summary(all),
    list: summary(byKind.list),
    inspect: summary(byKind.inspect),
  }
}

// ---------------------------------------------------------------- podman

/** podman's cgroups (cgroupfs manager): the directories under libpod_parent, in every hierarchy. */
function podmanCgroups() {
  return cgroupRoots().flatMap((r) => dirsBelow(path.join(r, 'libpod_parent')))
}

async function podmanSection(podmanBin) {
  const dir = path.join(tmp, 'podman')
  mkdirSync(dir)
  const conf = path.join(dir, 'containers.conf')
  writeFileSync(conf, PODMAN_CONF)
  const socket = path.join(dir, 'podman.sock')
  // Private storage, run root and libpod tmp dir (the last so that nothing of the host's
  // /run/libpod is touched); runc, as crun refuses the hybrid cgroup layout here.
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
  const podman = (...args) =>
    spawnSync(podmanBin, [...globalArgs, ...args], { encoding: 'utf8', env, timeout: 120_000 })
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
  cleanupSteps.push(podmanCleanup)

  const tar = execFileSync('tar', ['-C', FIXTURE, '-c', '.'], { maxBuffer: 256 << 20 })
  const imp = spawnSync(podmanBin, [...globalArgs, 'import', '-', PODMAN_IMAGE], {
    input: tar,
    env,
    encoding: 'utf8',
    timeout: 120_000,
  })
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
    await pool(warm, opts.concurrency, () => cycle(body))
    if (interrupted) return out
    const p = await pool(opts.podmanContainers, opts.concurrency, () => cycle(body))
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

// ---------------------------------------------------------------- main

async function main() {
  const started = Date.now()
  const result = {
    date: new Date().toISOString(),
    command: ['/bin/true'],
    fixture: FIXTURE,
    options: { ...opts, json: undefined },
    machine: {
      kernel: `${os.type()} ${os.release()}`,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown',
      memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
      loadAverageAtStart: os.loadavg().map((x) => round(x)),
      node: process.version,
      cgroups: existsSync('/sys/fs/cgroup/cgroup.controllers')
        ? 'v2'
        : existsSync('/sys/fs/cgroup/unified')
          ? 'hybrid (v1 + cgroup2 at /sys/fs/cgroup/unified)'
          : 'v1',
    },
    server: null,
    results: [],
    lifecycleSteps: null,
    serverSideRunMs: null,
    load: null,
    leaks: [],
    podman: null,
    ratio: null,
    targets: [],
    interrupted: false,
    notes: [],
  }

  if (!existsSync(NS_CLI) || !existsSync(NS_CLI_DIST)) {
    console.log(`server benchmark: skipped: ${path.relative(repoRoot, NS_CLI_DIST)} not built (npm run build)`)
    result.skipped = 'the CLI is not built'
    return result
  }
  const fixtureNote = ensureFixture()
  const body = { command: ['/bin/true'], rootfs: FIXTURE }
  const c = opts.concurrency

  console.log(`server benchmark: /bin/true over the HTTP API of ns serve, concurrency ${c}`)
  console.log(`fixture: ${fixtureNote}`)
  console.log(
    `machine: ${result.machine.cpus} x ${result.machine.cpuModel}, load average ${result.machine.loadAverageAtStart.join(' ')}; figures are noisy when other work runs`,
  )

  const tag = `NS_BENCH_SERVER_TAG=${process.pid}-${Date.now()}`
  const server = await startNsServer(tag)
  result.server = { command: server.argv.join(' ').replaceAll(tmp, '<tmp>'), pid: server.pid }
  console.log(`ns serve: ${result.server.command} (pid ${server.pid})`)
  const api = client(server.socket, c)
  const take = () => snapshot(server, server.root, tag)
  const before = take()

  try {
    // Warm-up: the server's first requests load code and fill caches.
    if (opts.warmup) await pool(opts.warmup, c, () => nsRunJob(api, body))

    // 1. run to completion, at concurrency c, then at 1.
    progress(`  POST /v1/run x ${opts.containers} at concurrency ${c}...\n`)
    const m0 = cpuMark(server.pid)
    const run = await pool(opts.containers, c, () => nsRunJob(api, body))
    const runRow = {
      ...phaseResult('ns serve POST /v1/run', run, c),
      key: 'ns-run',
      cpuPerContainer: cpuPerContainer(m0, cpuMark(server.pid), run.attempted),
    }
    result.results.push(runRow)
    result.serverSideRunMs = summary(run.extras.map((e) => e.serverMs))

    // 2. leak check after those containers.
    if (!interrupted) result.leaks.push(await leakCheck(`${opts.containers} containers (POST /v1/run)`, before, take))

    // The same at lower concurrencies: how the latency grows with the requests in flight.
    for (const k of opts.serialContainers ? opts.sweep.filter((k) => k !== c) : []) {
      if (interrupted) break
      progress(`  POST /v1/run x ${opts.serialContainers} at concurrency ${k}...\n`)
      const m1 = cpuMark(server.pid)
      const lower = await pool(opts.serialContainers, k, () => nsRunJob(api, body))
      const cpu = cpuPerContainer(m1, cpuMark(server.pid), lower.attempted)
      result.results.push({
        ...phaseResult(`ns serve POST /v1/run (concurrency ${k})`, lower, k),
        key: k === 1 ? 'ns-run-serial' : `ns-run-c${k}`,
        cpuPerContainer: cpu,
      })
      if (k === 1) result.serverSideRunMsSerial = summary(lower.extras.map((e) => e.serverMs))
    }

    // 3. the four calls.
    if (opts.lifecycleContainers && !interrupted) {
      progress(`  create+start+wait+delete x ${opts.lifecycleContainers} at concurrency ${c}...\n`)
      if (opts.warmup) await pool(Math.min(opts.warmup, c), c, () => cycleJob(api, NS_CALLS, body))
      const cyc = await pool(opts.lifecycleContainers, c, () => cycleJob(api, NS_CALLS, body))
      result.results.push({ ...phaseResult('ns serve create+start+wait+delete', cyc, c), key: 'ns-cycle' })
      result.lifecycleSteps = stepMedians(cyc.extras)
    }

    // 4. list and inspect under load, with detached containers running.
    if (opts.loadSeconds > 0 && !interrupted) {
      progress(
        `  GET /v1/containers[/{id}] for ${opts.loadSeconds} s with ${opts.loadContainers} detached containers...\n`,
      )
      const ids = []
      const made = await Promise.all(
        Array.from({ length: opts.loadContainers }, (_, i) =>
          api.request('POST', '/v1/containers', {
            command: ['sleep', '1000'],
            rootfs: FIXTURE,
            name: `nsbench-load-${i}`,
            start: true,
          }),
        ),
      )
      const createErrors = []
      for (const r of made) {
        if (r.status === 201 && r.body?.id) ids.push(r.body.id)
        else createErrors.push(describe('POST /v1/containers', r))
      }
      if (ids.length === 0) {
        result.load = { skipped: `no detached container could be created: ${createErrors[0]}` }
      } else {
        result.load = await listInspectLoad(api, ids, opts.loadSeconds, c)
        if (createErrors.length) result.load.createErrors = createErrors.slice(0, 5)
      }
      const dels = await Promise.all(
        ids.map((id) => api.request('DELETE', `/v1/containers/${encodeURIComponent(id)}?force=true`)),
      )
      const delFailed = dels.filter((r) => r.status !== 204)
      if (result.load && delFailed.length)
        result.load.deleteErrors = delFailed.slice(0, 5).map((r) => describe('DELETE ?force=true', r))
    }

    // 5. and again after everything.
    if (!interrupted) {
      await deleteAll(api)
      result.leaks.push(
        await leakCheck(
          'all ns containers of this run (also create/start/wait/delete and the detached ones)',
          before,
          take,
        ),
      )
    }
  } finally {
    api.close()
    if (interrupted) await deleteAll(client(server.socket, 1)).catch(() => {})
    await stopGroup(server.child)
  }
  result.retries = api.counters.retries
  result.serverStderr = lastLine(readFileSync(server.errFile, 'utf8'), '')

  // 5b. POST /v1/run over ns serve --pool: warm sandboxes of the same options as the body's.
  if (opts.poolSize && opts.poolContainers && !interrupted) {
    try {
      await poolPhases(tag, body, result)
    } catch (err) {
      result.poolSkipped = `failed: ${firstLine(err?.message ?? err)}`
    }
  } else result.poolSkipped = 'left out (--pool-size 0 or --pool-containers 0)'

  // 6. the kernel's floor: what the namespaces alone cost here, with no runtime.
  if (opts.floorContainers && !interrupted) {
    progress(`  kernel floor: ${opts.floorContainers} bare containers at concurrency ${c}...\n`)
    result.floor = await kernelFloor(opts.floorContainers, c)
  }

  // 7. podman.
  if (!opts.podman) {
    result.podman = { skipped: 'left out (--no-podman or --podman-containers 0)' }
  } else if (!interrupted) {
    const why = installMissing()
    const podmanBin = which('podman')
    if (!podmanBin || !which('runc')) {
      result.podman = { skipped: why ?? 'podman or runc not installed' }
    } else {
      progress(`  podman: create+start+wait+delete x ${opts.podmanContainers} at concurrency ${c}...\n`)
      try {
        result.podman = await podmanSection(podmanBin)
      } catch (err) {
        result.podman = { skipped: `failed: ${firstLine(err?.message ?? err)}` }
      }
    }
    if (result.podman?.result) result.results.push({ ...result.podman.result, key: 'podman' })
  }

  result.interrupted = interrupted
  result.elapsedSeconds = round((Date.now() - started) / 1000, 1)
  return result
}

/**
 * ns serve --pool N: POST /v1/run of `body` one at a time with the pool full before each request
 * (the warm latency over the API; the wait for the refill untimed), then back to back at the
 * concurrency (the refill's cost in the way: some start cold once the pool runs dry). Each row
 * says how many ran warm (GET /v1/pool before and after).
 */
async function poolPhases(tag, body, result) {
  const size = opts.poolSize
  const server = await startNsServer(
    tag,
    ['--pool', String(size), '--pool-options', JSON.stringify({ rootfs: body.rootfs })],
    'ns-pool',
  )
  const api = client(server.socket, opts.concurrency)
  const state = async () => {
    const r = await api.request('GET', '/v1/pool')
    if (r.status !== 200) throw new Error(describe('GET /v1/pool', r))
    return r.body
  }
  const full = async () => {
    for (const until = Date.now() + 20_000; Date.now() < until && !interrupted;) {
      if ((await state()).ready === size) return
      await new Promise((r) => setTimeout(r, 5))
    }
    throw new Error(`the pool did not fill within 20 s`)
  }
  try {
    await full()
    for (let i = 0; i < Math.min(opts.warmup, 20); i++) await nsRunJob(api, body)
    const phase = async (label, key, k, job) => {
      if (interrupted) return
      await full()
      const s0 = await state()
      const m0 = cpuMark(server.pid)
      const p = await pool(opts.poolContainers, k, job)
      const cpu = cpuPerContainer(m0, cpuMark(server.pid), p.attempted)
      const s1 = await state()
      result.results.push({
        ...phaseResult(label, p, k),
        key,
        cpuPerContainer: cpu,
        pool: { size, warm: s1.warm - s0.warm, cold: s1.cold - s0.cold },
      })
    }
    progress(
      `  ns serve --pool ${size}: POST /v1/run x ${opts.poolContainers}, one at a time, pool full before each...\n`,
    )
    await phase(`ns serve --pool ${size} POST /v1/run (concurrency 1, pool full)`, 'ns-pool-serial', 1, async () => {
      await full()
      return nsRunJob(api, body)
    })
    progress(`  ns serve --pool ${size}: POST /v1/run x ${opts.poolContainers} at concurrency ${opts.concurrency}...\n`)
    await phase(`ns serve --pool ${size} POST /v1/run`, 'ns-pool', opts.concurrency, () => nsRunJob(api, body))
  } finally {
    api.close()
    await deleteAll(client(server.socket, 1)).catch(() => {})
    await stopGroup(server.child)
  }
}

/**
 * tools/bench-floor.c, compiled here and run by `workers` processes at once: containers/s and
 * CPU per container on the whole machine, or why it was skipped.
 */
async function kernelFloor(containers, workers) {
  const cc = which('cc') ?? which('gcc')
  if (!cc) return { skipped: 'no C compiler (cc) to build tools/bench-floor.c' }
  const bin = path.join(tmp, 'bench-floor')
  const built = spawnSync(cc, ['-O2', '-o', bin, path.join(repoRoot, 'tools', 'bench-floor.c')], { encoding: 'utf8' })
  if (built.status !== 0) return { skipped: `cc failed: ${firstLine(built.stderr)}` }
  // Root maps the child's root to a host id far above the ranges ns leases; anyone else to itself.
  const hostId = process.getuid() === 0 ? 0x60000000 + 65536 * 4096 : process.getuid()
  const each = Math.ceil(containers / workers)
  const one = () =>
    new Promise((resolve) => {
      const child = spawn(bin, [FIXTURE, String(each), String(hostId)], { stdio: ['ignore', 'ignore', 'pipe'] })
      let err = ''
      child.stderr.on('data', (d) => (err += d))
      child.on('close', (code) => resolve(code === 0 ? null : firstLine(err) || `exit ${code}`))
      child.on('error', (e) => resolve(e.message))
    })
  const busy0 = machineBusy()
  const t0 = now()
  const failures = (await Promise.all(Array.from({ length: workers }, one))).filter(Boolean)
  const wallMs = now() - t0
  if (failures.length) return { skipped: `failed: ${failures[0]}` }
  const n = each * workers
  return {
    containers: n,
    concurrency: workers,
    containersPerSecond: round(n / (wallMs / 1000), 1),
    cpuPerContainerMs: round((machineBusy() - busy0) / n),
  }
}

function report(r) {
  if (r.skipped) return
  console.log('')
  console.log(
    `server: run-to-completion of /bin/true over the API, concurrency ${r.options.concurrency}${r.interrupted ? ' (interrupted)' : ''}`,
  )
  const rows = [['contender', 'containers', 'median ms', 'p90 ms', 'p99 ms', 'containers/s', 'failed']]
  for (const x of r.results) {
    rows.push([
      x.contender,
      String(x.containers),
      fmt(x.medianMs),
      fmt(x.p90Ms),
      fmt(x.p99Ms),
      fmt(x.containersPerSecond, 1),
      String(x.failed),
    ])
  }
  if (r.podman?.skipped) rows.push(['podman service (docker API)', `skipped: ${r.podman.skipped}`])
  printTable(rows, { rule: false })

  const nsRun = r.results.find((x) => x.key === 'ns-run')
  const nsCycle = r.results.find((x) => x.key === 'ns-cycle')
  const pm = r.results.find((x) => x.key === 'podman')
  const ratioRun = nsRun && pm && pm.containersPerSecond > 0 ? nsRun.containersPerSecond / pm.containersPerSecond : null
  const ratioCycle =
    nsCycle && pm && pm.containersPerSecond > 0 ? nsCycle.containersPerSecond / pm.containersPerSecond : null
  r.ratio = { runVsPodman: round(ratioRun, 1), cycleVsPodman: round(ratioCycle, 1) }
  const median = nsRun?.medianMs ?? null
  console.log(
    `ratio ns/podman containers/s: ${ratioRun === null ? '-' : `${ratioRun.toFixed(1)}x`} (target >= ${TARGET_RATIO}x)` +
      `${ratioCycle === null ? '' : `; create+start+wait+delete ${ratioCycle.toFixed(1)}x`}; ns median ${fmt(median)} ms (target < ${TARGET_MEDIAN_MS} ms)`,
  )
  r.targets.push(
    {
      target: `ns serve POST /v1/run containers/s at least ${TARGET_RATIO}x podman's`,
      value: round(ratioRun, 1),
      met: ratioRun === null ? null : ratioRun >= TARGET_RATIO,
    },
    {
      target: `ns serve POST /v1/run median under ${TARGET_MEDIAN_MS} ms at concurrency ${r.options.concurrency}`,
      value: median,
      met: median === null ? null : median < TARGET_MEDIAN_MS,
    },
  )
  console.log(
    `  targets: ${r.targets.map((t) => `${t.target}: ${t.met === null ? 'unknown' : t.met ? 'met' : 'NOT met'}`).join('; ')}`,
  )
  if (r.poolSkipped) console.log(`  ns serve --pool: skipped: ${r.poolSkipped}`)
  for (const x of r.results.filter((x) => x.pool)) {
    // Against the cold POST /v1/run at the same concurrency.
    const cold = r.results.find((y) => !y.pool && y.key.startsWith('ns-run') && y.concurrency === x.concurrency)
    const vsRun = cold?.medianMs && x.medianMs !== null ? x.medianMs / cold.medianMs : null
    const vsPodman = pm && pm.containersPerSecond > 0 ? x.containersPerSecond / pm.containersPerSecond : null
    console.log(
      `  ${x.contender}: ${x.pool.warm} ran warm, ${x.pool.cold} cold; median ${vsRun === null ? '-' : `${vsRun.toFixed(2)}x`} the cold POST /v1/run's at concurrency ${x.concurrency}` +
        `${vsPodman === null ? '' : `, containers/s ${vsPodman.toFixed(1)}x podman's`}`,
    )
  }
  if (r.serverSideRunMs?.n) {
    console.log(
      `  POST /v1/run as the server times it (durationMs: spawn to exit, output drained): median ${fmt(r.serverSideRunMs.medianMs)} ms, p90 ${fmt(r.serverSideRunMs.p90Ms)} ms` +
        `${r.serverSideRunMsSerial?.n ? `; at concurrency 1: median ${fmt(r.serverSideRunMsSerial.medianMs)} ms` : ''}`,
    )
  }
  for (const x of r.results) {
    const u = x.cpuPerContainer
    if (!u) continue
    console.log(
      `  CPU per container, ${x.contender.replace('ns serve ', '')}: ${fmt(u.totalMs)} ms on the whole machine = server's node ${fmt(u.serverNodeMs)}` +
        ` + its ns-oci helpers ${fmt(u.helpersMs)} + this client ${fmt(u.clientMs)} + other ${fmt(u.otherMs)} (kernel threads, other work)`,
    )
  }
  for (const x of r.results) {
    const u = x.cpuPerContainer
    if (u && u.totalMs > 0 && u.otherMs / u.totalMs > 0.25) {
      console.log(
        `  note: ${((100 * u.otherMs) / u.totalMs).toFixed(0)}% of the machine's CPU during "${x.contender}" went to other work: its figures are disturbed`,
      )
    }
  }
  if (nsRun?.cpuPerContainer?.totalMs) {
    const cpus = r.machine.cpus
    const cap = (cpus * 1000) / nsRun.cpuPerContainer.totalMs
    const need = (cpus * TARGET_MEDIAN_MS) / r.options.concurrency
    console.log(
      `  at that cost ${cpus} CPUs run at most ~${cap.toFixed(0)} containers/s, so ${r.options.concurrency} requests in flight wait ~${fmt((r.options.concurrency / cap) * 1000, 1)} ms each` +
        ` (Little's law); a median under ${TARGET_MEDIAN_MS} ms at concurrency ${r.options.concurrency} needs at most ~${fmt(need, 2)} ms of CPU per container`,
    )
  }
  if (r.floor?.skipped) console.log(`  kernel floor: skipped: ${r.floor.skipped}`)
  else if (r.floor && nsRun?.cpuPerContainer?.totalMs) {
    const f = r.floor
    const floorWait = (r.options.concurrency / ((r.machine.cpus * 1000) / f.cpuPerContainerMs)) * 1000
    console.log(
      `  kernel floor (tools/bench-floor.c: 7 namespaces, id maps, bind + pivot_root, proc, exec /bin/true; no runtime, no HTTP): ${fmt(f.containersPerSecond, 1)} containers/s at concurrency ${f.concurrency},` +
        ` ${fmt(f.cpuPerContainerMs)} ms of CPU per container; ns serve's whole request (/dev, /sys, masked paths, seccomp, init, idmapped root, HTTP both ends) costs ${fmt(nsRun.cpuPerContainer.totalMs / f.cpuPerContainerMs, 1)}x that;` +
        ` the floor alone makes ${r.options.concurrency} in flight wait ~${fmt(floorWait, 1)} ms each`,
    )
  }
  // Median latency by requests in flight (the run phases, lowest concurrency first).
  const byConcurrency = r.results
    .filter((x) => x.key === 'ns-run' || x.key === 'ns-run-serial' || /^ns-run-c\d+$/.test(x.key))
    .sort((a, b) => a.concurrency - b.concurrency)
  if (byConcurrency.length > 1) {
    const under = byConcurrency.filter((x) => x.medianMs < TARGET_MEDIAN_MS).map((x) => x.concurrency)
    r.medianUnderTargetUpToConcurrency = under.length ? Math.max(...under) : 0
    console.log(
      `  median POST /v1/run by concurrency: ${byConcurrency.map((x) => `${x.concurrency}: ${fmt(x.medianMs)} ms (${fmt(x.containersPerSecond, 1)}/s)`).join(', ')}` +
        `; under ${TARGET_MEDIAN_MS} ms at ${under.length ? under.join(', ') : 'none'}`,
    )
  }
  if (r.lifecycleSteps) {
    const s = r.lifecycleSteps
    console.log(
      `  create+start+wait+delete, median of each call: create ${fmt(s.create)}, start ${fmt(s.start)}, wait ${fmt(s.wait)}, delete ${fmt(s.delete)} ms`,
    )
  }
  if (pm?.steps) {
    const s = pm.steps
    console.log(
      `  podman, median of each call: create ${fmt(s.create)}, start ${fmt(s.start)}, wait ${fmt(s.wait)}, delete ${fmt(s.delete)} ms`,
    )
  }
  if (r.podman && !r.podman.skipped) {
    console.log(
      `  podman: ${r.podman.version}, runtime ${r.podman.runtime}, NetworkMode ${r.podman.networkMode}, private storage; ${r.podman.warmup} warm-up containers`,
    )
  }
  if (r.podman?.cleanup) {
    const k = r.podman.cleanup
    console.log(
      `  podman clean-up: mounts left under its storage ${k.unmounted.length}${k.unmounted.length ? ` (unmounted: ${k.unmounted.join(', ')})` : ''}, ` +
        `processes of it left ${k.processesKilled}${k.processesKilled ? ' (killed)' : ''}, its cgroups under libpod_parent ${k.cgroupsLeft >= 0 ? '+' : ''}${k.cgroupsLeft}`,
    )
  }
  for (const x of r.results)
    if (x.failed) console.log(`  ${x.contender}: ${x.failed} failed; first errors: ${x.errors.join(' | ')}`)
  console.log(
    `  every container: ${JSON.stringify(r.command)} on the fixture rootfs, in a network namespace of its own without network (podman: NetworkMode none);` +
      ` ${r.options.warmup} untimed warm-up requests first;`,
  )
  console.log(
    '  latency is client-side, from sending the request to the end of the answer(s); containers/s = those that ended well / wall time.',
  )

  if (r.load) {
    const l = r.load
    if (l.skipped) console.log(`list/inspect under load: skipped: ${l.skipped}`)
    else {
      console.log(
        `list/inspect under load: ${fmt(l.requestsPerSecond, 0)} req/s, median ${fmt(l.medianMs)} ms, p99 ${fmt(l.p99Ms)} ms, failed ${l.failed}` +
          ` (${l.requests} requests in ${fmt(l.seconds, 1)} s at concurrency ${l.concurrency}, ${l.detachedContainers} detached containers running;` +
          ` list median ${fmt(l.list.medianMs)} ms, inspect median ${fmt(l.inspect.medianMs)} ms)`,
      )
      if (l.failed) console.log(`  first errors: ${l.errors.join(' | ')}`)
      if (l.createErrors) console.log(`  creating the detached containers: ${l.createErrors.join(' | ')}`)
      if (l.deleteErrors) console.log(`  deleting the detached containers: ${l.deleteErrors.join(' | ')}`)
    }
  }
  for (const l of r.leaks) console.log(`leaks after ${l.after}: ${leakLine(l)}`)
  if (r.leaks.length) {
    console.log(
      '  processes: ns-oci helpers and monitors of this server (and theirs; its zygote left out); mounts: lines of /proc/self/mountinfo;',
    )
    console.log(
      `  cgroups: directories under ${nsCgroupDirs().length > 1 ? '/sys/fs/cgroup/*/ns' : '/sys/fs/cgroup/ns'}; state dirs: entries of the state root; zombies: ours, and any ns-oci`,
    )
  }
  if (r.retries)
    console.log(`  note: ${r.retries} request(s) sent again after a kept-alive connection was closed under them`)
}

let result = null
let failed = null
try {
  result = await main()
} catch (err) {
  failed = err
}
if (failed) {
  console.log(`server benchmark: failed: ${interrupted ? 'interrupted' : firstLine(failed?.message ?? failed)}`)
}
cleanup()
const stillMounted = mountsUnder(tmp)
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
process.exit(interrupted ? 130 : failed ? 1 : 0)
