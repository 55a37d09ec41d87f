// What the benchmark scripts (tools/bench*.mjs and the modules under tools/bench/) share: the
// command line, the fixture, finding and installing tools, a scratch directory cleaned up on
// the way out, the seeded order of contenders, and the figures and tables of the report. Each
// script stays a program of its own; only these plain helpers are shared.

import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const FIXTURE = path.join(repoRoot, 'test', 'fixtures', 'rootfs')

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

// ---------------------------------------------------------------- command line

/** The usage text, on stdout when asked for (exit 0), on stderr after a mistake; then exit. */
export function usageExit(text, code) {
  ;(code === 0 ? process.stdout : process.stderr).write(text)
  process.exit(code)
}

/**
 * Reads a command line into `opts`. `counts` names the options that take a whole number: the
 * property of `opts` each sets and the least value it accepts. `aliases` maps short names onto
 * long ones. Every other option goes to `handle(arg, next, fail)`, where `next()` gives its
 * value, from `--name=value` or else the argument after it. A mistake is told as `prog: ...`,
 * followed by the usage (`usage(2)`, which exits).
 */
export function readArgs(argv, { prog, usage, opts, counts, aliases = {}, handle }) {
  const fail = (message) => {
    console.error(`${prog}: ${message}`)
    usage(2)
  }
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]
    let value
    const eq = arg.indexOf('=')
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1)
      arg = arg.slice(0, eq)
    }
    const next = () => {
      if (value !== undefined) return value
      if (i + 1 >= argv.length) fail(`${arg} needs a value`)
      return argv[++i]
    }
    const name = aliases[arg] ?? arg
    if (!Object.hasOwn(counts, name)) {
      handle(name, next, fail)
      continue
    }
    const [key, min] = counts[name]
    const given = next()
    const n = Number(given)
    if (!Number.isInteger(n) || n < min) fail(`${name} needs a whole number${min ? ` >= ${min}` : ''}, got ${given}`)
    opts[key] = n
  }
  return opts
}

// ---------------------------------------------------------------- the machine

/** The CPUs and memory of the machine, as the reports give them. */
export function hostFigures() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown',
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
  }
}

// ---------------------------------------------------------------- tools and text

export function which(cmd) {
  // Tools in sbin are missing from some PATHs of non-login shells: the usual directories are
  // looked at after the PATH.
  const dirs = (process.env.PATH || '')
    .split(':')
    .concat(['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])
  for (const dir of dirs) {
    if (!dir) continue
    const p = path.join(dir, cmd)
    if (existsSync(p)) return p
  }
  return null
}

export function firstLine(text) {
  return (
    String(text ?? '')
      .trim()
      .split('\n')[0]
      ?.trim() ?? ''
  )
}

/** Last meaningful line of a stderr, shortened to `max` characters, for "skipped: <reason>" and the like. */
export function lastLine(text, fallback, max = 200) {
  const lines = String(text ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  const line = lines.at(-1) || fallback
  return line.length > max ? `${line.slice(0, max - 3)}...` : line
}

/** The first line a tool prints about its version; `cmd` is a name looked up in PATH, or a path. */
export function versionOf(cmd, args = ['--version']) {
  const bin = !cmd ? null : path.isAbsolute(cmd) ? (existsSync(cmd) ? cmd : null) : which(cmd)
  if (!bin) return 'not installed'
  const r = spawnSync(bin, args, { encoding: 'utf8' })
  if (r.error) return `unknown (${r.error.message})`
  return firstLine(r.stdout || r.stderr) || 'unknown'
}

/**
 * apt-get install the `missing` packages, when `allowed` (no --no-install) and possible (root,
 * apt-get at hand). Returns null when there was nothing to do or the install went through, or
 * else why not, as one line.
 */
export function installPackages(missing, allowed) {
  if (missing.length === 0) return null
  if (!allowed || !isRoot || !which('apt-get')) {
    return `missing ${missing.join(', ')}; not installing (${!isRoot ? 'not root' : !allowed ? '--no-install' : 'no apt-get'})`
  }
  console.log(`installing missing packages: ${missing.join(' ')}`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const upd = spawnSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env })
  if (upd.status !== 0) console.log('note: apt-get update failed; trying the install anyway')
  const inst = spawnSync('apt-get', ['install', '-y', '-qq', ...missing], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env,
  })
  if (inst.status !== 0) return `apt-get install ${missing.join(' ')} failed`
  return null
}

/** Builds the fixture rootfs unless it is there already; returns what make-rootfs.sh said. */
export function ensureFixture() {
  const r = spawnSync('bash', [path.join(repoRoot, 'tools', 'make-rootfs.sh'), FIXTURE], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`tools/make-rootfs.sh ${FIXTURE} failed:\n${r.stderr || r.stdout}`)
  return firstLine(r.stdout)
}

// ---------------------------------------------------------------- clean-up

/** Runs clean-up steps last-registered first, each on its own: one that throws goes to `onError`, and the rest still run. */
export function runSteps(steps, onError = () => {}) {
  for (const step of steps.reverse()) {
    try {
      step()
    } catch (err) {
      onError(err)
    }
  }
}

/**
 * The first SIGINT, SIGTERM or SIGHUP only says so and calls `onFirst`: the script stops at its
 * next check and cleans up on its way out. A second one cleans up now and exits 130.
 */
export function trapSignals(prog, what, cleanup, onFirst) {
  let seen = false
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (seen) {
        console.error(`\n${prog}: ${sig} again, cleaning up now`)
        cleanup()
        process.exit(130)
      }
      seen = true
      onFirst()
      console.error(`\n${prog}: ${sig}, ${what} (again to force)`)
    })
  }
}

/**
 * A scratch directory for one run (`prefix` in the system's temporary directory), and the
 * clean-up of everything the run registers in `steps`, synchronous so that it can run from the
 * 'exit' event too: `first()`, then the steps last-registered first (one that throws goes to
 * `onStepError`), then whatever is mounted under the directory, then the directory. It runs on
 * exit, and on a second SIGINT, SIGTERM or SIGHUP; the first only sets `interrupted` (see
 * trapSignals, which says `what` the script does then).
 */
export function openScratch({ prog, prefix, what, first = () => {}, onStepError = () => {} }) {
  let cleanedUp = false
  const run = {
    tmp: mkdtempSync(path.join(os.tmpdir(), prefix)),
    steps: [],
    interrupted: false,
    cleanup() {
      if (cleanedUp) return
      cleanedUp = true
      first()
      runSteps(run.steps, onStepError)
      unmountUnder(run.tmp)
      try {
        rmSync(run.tmp, { recursive: true, force: true })
      } catch (err) {
        console.error(`${prog}: cannot remove ${run.tmp}: ${firstLine(err?.message ?? err)}`)
      }
    },
  }
  process.on('exit', run.cleanup)
  trapSignals(prog, what, run.cleanup, () => (run.interrupted = true))
  return run
}

/** Mount points whose path lies under `dir`, deepest first. */
export function mountsUnder(dir) {
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

/** Lazily unmounts every mount point under `dir`; returns them. */
export function unmountUnder(dir) {
  const left = mountsUnder(dir)
  for (const m of left) spawnSync('umount', ['-l', m], { stdio: 'ignore' })
  return left
}

/**
 * Force-deletes, synchronously (the exit path needs it so), every container left in an
 * @ns/core state root: with ns-oci, which understands that root, when there is one (`nsOci`),
 * and failing that by killing the processes its state.json names.
 */
export function forceDeleteLeftovers(root, nsOci) {
  if (!existsSync(root)) return
  for (const id of readdirSync(root)) {
    if (nsOci) spawnSync(nsOci, ['--root', root, 'delete', '--force', id], { stdio: 'ignore', timeout: 15_000 })
    if (!existsSync(path.join(root, id))) continue
    try {
      const st = JSON.parse(readFileSync(path.join(root, id, 'state.json'), 'utf8'))
      for (const pid of [st.pid, st.monitorPid]) if (Number.isInteger(pid) && pid > 1) process.kill(pid, 'SIGKILL')
    } catch {
      /* best effort */
    }
  }
}

// ---------------------------------------------------------------- order of the contenders

/**
 * A shuffle driven by a small seeded generator (mulberry32), so that an order can be told
 * apart from another, and replayed with the same seed. Returns `shuffle(list)`, a shuffled copy.
 */
export function seededShuffle(seed) {
  let state = seed >>> 0
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return (list) => {
    const a = [...list]
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      ;[a[i], a[j]] = [a[j], a[i]]
    }
    return a
  }
}

/**
 * Up to `iterations` rounds, until `stopped()`, each running every contender of `active()`
 * once, through `each(c)`: round i runs a base order rotated by i, so that after n rounds
 * every one of the n contenders has held every position once, and the base order is then
 * shuffled anew (`shuffle(list)`). `after(i)` follows round i. Resolves the rounds run.
 */
export async function rotatingRounds({ iterations, active, shuffle, stopped, each, after = () => {} }) {
  let rounds = 0
  let base = []
  for (let i = 0; i < iterations && !stopped(); i++) {
    const n = active().length
    if (n === 0) break
    if (i % n === 0 || base.length !== n) base = shuffle(active())
    for (let k = 0; k < n && !stopped(); k++) await each(base[(i + k) % n])
    rounds++
    after(i)
  }
  return rounds
}

// ---------------------------------------------------------------- figures and tables

/** The q-quantile of sorted samples, interpolated between the two nearest. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo)
}

/** The median of samples in any order. */
export const median = (samples) =>
  quantile(
    [...samples].sort((a, b) => a - b),
    0.5,
  )

/** For JSON: `d` decimals, and null for what is not a number. */
export const round = (x, d = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null)
/** For the tables: `d` decimals, and '-' for what is not a number. */
export const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-')

/**
 * Prints rows of cells as columns, the first left-aligned and the others right-aligned; the
 * first row is the header, underlined when `rule` is set. A row of two cells whose second starts
 * with "skipped" is a contender that did not run: its reason runs on past the columns.
 */
export function printTable(rows, { rule = true } = {}) {
  const isSkipped = (row) => row.length === 2 && row[1].startsWith('skipped')
  const widths = []
  for (const row of rows) {
    if (isSkipped(row)) widths[0] = Math.max(widths[0] ?? 0, row[0].length)
    else row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  }
  const lines = rows.map((row) => {
    if (isSkipped(row)) return `${row[0].padEnd(widths[0])}  ${row[1]}`
    return row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ')
  })
  if (rule) lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '))
  console.log(lines.join('\n'))
}
