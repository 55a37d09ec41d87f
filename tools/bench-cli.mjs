#!/usr/bin/env node
// CLI start-up benchmark: the wall time of `ns` as a person or a script starts it, next to
// `node -e 0` (what no Node program can go below) and to `podman run --rm` of the same rootfs.
// Every row runs once per round, in an order that rotates each round and is reshuffled after
// each full turn, so drift on the machine hits them all alike. Medians, and each one's ratio to
// `node -e 0`; and the CPU time each took (its own and its reaped children's, from wait4), which
// a loaded machine disturbs less than the wall time.
//
//   node tools/bench-cli.mjs [--iterations N] [--warmup N] [--cli PATH] [--compare PATH]
//                            [--no-podman] [--json FILE]
//
// `--cli` measures another build of ns (a bin/ns.js); `--compare` one more in the same rounds,
// for a before/after in one run. This is a report, not a test: it exits 0 when it completes
// (130 when interrupted).

import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import {
  ensureFixture,
  FIXTURE,
  fmt,
  lastLine,
  median,
  openScratch,
  printTable,
  quantile,
  readArgs,
  repoRoot,
  rotatingRounds,
  round,
  seededShuffle,
  unmountUnder,
  usageExit,
  versionOf,
  which,
} from './bench-common.mjs'
import { PODMAN_CONF, privatePodman } from './bench/podman-store.mjs'

const RUN_TIMEOUT_MS = 20_000
const PODMAN_IMAGE = 'localhost/nsbench-cli:latest'
// Targets: ratios to `node -e 0`.
const TARGETS = { version: 1.3, ps: 1.3, run: 1.5, 'run-rootfs': 1.5 }

function usage(code) {
  usageExit(
    `usage: node tools/bench-cli.mjs [options]

  --iterations N   timed rounds; each runs every row once (default 40)
  --warmup N       untimed rounds first (default 3)
  --cli PATH       the ns to measure (default: packages/cli/bin/ns.js of this tree)
  --label TEXT     a name for that ns in the table (default: ns)
  --compare PATH   another ns (a bin/ns.js) measured in the same rounds, for a before/after
  --compare-label TEXT
                   its name in the table (default: before)
  --no-podman      leave podman out
  --json FILE      also write the results as JSON to FILE
  -h, --help       this text
`,
    code,
  )
}

const opts = {
  iterations: 40,
  warmup: 3,
  cli: path.join(repoRoot, 'packages', 'cli', 'bin', 'ns.js'),
  label: 'ns',
  compare: null,
  compareLabel: 'before',
  podman: true,
  json: null,
}
readArgs(process.argv.slice(2), {
  prog: 'bench-cli',
  usage,
  opts,
  counts: { '--iterations': ['iterations', 1], '--warmup': ['warmup', 0] },
  aliases: { '-n': '--iterations', '-h': '--help' },
  handle(arg, next, fail) {
    if (arg === '--cli') opts.cli = path.resolve(next())
    else if (arg === '--label') opts.label = next()
    else if (arg === '--compare') opts.compare = path.resolve(next())
    else if (arg === '--compare-label') opts.compareLabel = next()
    else if (arg === '--no-podman') opts.podman = false
    else if (arg === '--json') opts.json = path.resolve(next())
    else if (arg === '--help') usage(0)
    else fail(`unknown argument ${arg}`)
  },
})

ensureFixture()
const scratch = openScratch({ prog: 'bench-cli', prefix: 'ns-bench-cli-', what: 'stopping after the current run' })
const { tmp } = scratch
const nsRoot = path.join(tmp, 'ns-state')

/**
 * Runs a command and measures it from fork to its reaping, wall and CPU (user + system, its own
 * and that of the children it reaped): through a small python3 wrapper, as Node gives no
 * rusage of a child. CPU time is what a loaded machine (a shared CI runner) disturbs least.
 */
const WRAP = `import os, sys, time
argv = sys.argv[1:]
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(os.open('/dev/null', os.O_RDONLY), 0)
    os.dup2(os.open('/dev/null', os.O_WRONLY), 1)
    try:
        os.execv(argv[0], argv)
    except OSError as e:
        sys.stderr.write(str(e) + "\\n")
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
t1 = time.perf_counter()
print("%.3f %.3f %d" % ((t1 - t0) * 1000, (ru.ru_utime + ru.ru_stime) * 1000, os.waitstatus_to_exitcode(status)))
`
const python = which('python3')

/** Run `argv` (stdin and stdout on /dev/null, stderr kept); resolves { ms, cpu, ok, stderr }. */
function timed(argv, env) {
  return new Promise((resolve) => {
    let stderr = ''
    let stdout = ''
    const t0 = process.hrtime.bigint()
    const cmd = python ? [python, '-c', WRAP, ...argv] : argv
    const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env })
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS)
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => {
      if (stderr.length < 4096) stderr += d
    })
    child.on('error', (err) => {
      clearTimeout(timer)
      resolve({ ms: NaN, cpu: NaN, ok: false, stderr: err.message })
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      if (!python) return resolve({ ms, cpu: NaN, ok: code === 0, stderr: stderr || `exit ${code ?? signal}` })
      const [wall, cpu, status] = stdout.trim().split(' ').map(Number)
      resolve({ ms: wall, cpu, ok: code === 0 && status === 0, stderr: stderr || `exit ${status ?? code ?? signal}` })
    })
  })
}

const node = process.execPath
/** The rows of one ns: `--version`, `ps`, and `run` of /bin/true in the sandbox and on the rootfs. */
function nsRows(cli, label, prefix) {
  const ns = (...args) => [node, cli, '--root', nsRoot, ...args]
  return [
    { key: `${prefix}version`, label: `${label} --version`, argv: ns('--version') },
    { key: `${prefix}ps`, label: `${label} ps`, argv: ns('ps') },
    { key: `${prefix}run`, label: `${label} run -- /bin/true`, argv: ns('run', '--', '/bin/true') },
    {
      key: `${prefix}run-rootfs`,
      label: `${label} run --rootfs DIR -- /bin/true`,
      argv: ns('run', '--rootfs', FIXTURE, '--', '/bin/true'),
    },
  ]
}
const rows = [
  { key: 'node', label: 'node -e 0', argv: [node, '-e', '0'] },
  ...nsRows(opts.cli, opts.label, ''),
  ...(opts.compare ? nsRows(opts.compare, opts.compareLabel, 'compare-') : []),
]
for (const r of rows) Object.assign(r, { samples: [], cpu: [], failures: 0, skipped: null, lastError: '' })

// podman run --rm of the same rootfs, imported as an image into a private store.
const podmanBin = which('podman')
const podman = {
  key: 'podman',
  label: 'podman run --rm (same rootfs)',
  samples: [],
  cpu: [],
  failures: 0,
  skipped: null,
}
let podmanInfo = null
if (!opts.podman) podman.skipped = 'skipped: --no-podman'
else if (!podmanBin) podman.skipped = 'skipped: podman not installed'
else if (!which('runc')) podman.skipped = 'skipped: runc (the runtime podman is given) not installed'
else {
  const dir = path.join(tmp, 'podman')
  const { globalArgs, env, sync, importFixture } = privatePodman(podmanBin, dir)
  scratch.steps.push(() => {
    sync('rm', '--all', '--force')
    sync('rmi', '--all', '--force')
    unmountUnder(dir)
  })
  const imp = importFixture(PODMAN_IMAGE)
  if (imp.status !== 0) podman.skipped = `skipped: podman import failed: ${lastLine(String(imp.stderr), 'error')}`
  else {
    podman.argv = [podmanBin, ...globalArgs, 'run', '--rm', '--network', 'none', PODMAN_IMAGE, '/bin/true']
    podman.env = env
    podmanInfo = {
      version: versionOf(podmanBin),
      runtime: versionOf(which('runc')),
      containersConf: PODMAN_CONF,
      command: `podman ${globalArgs.map((a) => a.replace(tmp, '<tmp>')).join(' ')} run --rm --network none IMAGE /bin/true`,
    }
  }
}
rows.push(podman)

const active = () => rows.filter((r) => !r.skipped)
for (const r of active()) {
  const first = await timed(r.argv, r.env)
  if (!first.ok) r.skipped = `skipped: ${lastLine(first.stderr, 'failed')}`
}

// A seeded order: printed, so that a run can be told from another.
const firstSeed = Math.floor(Math.random() * 2 ** 31)
const shuffle = seededShuffle(firstSeed)

console.log(`ns CLI start-up: wall time of each command from spawn to exit (seed ${firstSeed})`)
console.log(`  ${opts.warmup} warm-up + ${opts.iterations} timed rounds, every row once a round, in rotating order`)
for (let w = 0; w < opts.warmup && !scratch.interrupted; w++) for (const r of active()) await timed(r.argv, r.env)
await rotatingRounds({
  iterations: opts.iterations,
  active,
  shuffle,
  stopped: () => scratch.interrupted,
  async each(r) {
    const res = await timed(r.argv, r.env)
    if (res.ok) {
      r.samples.push(res.ms)
      r.cpu.push(res.cpu)
    } else {
      r.failures++
      r.lastError = lastLine(res.stderr, 'failed')
    }
  },
  after(i) {
    if (process.stderr.isTTY) process.stderr.write(`\r  ${i + 1}/${opts.iterations} rounds`)
  },
})
if (process.stderr.isTTY) process.stderr.write('\r\x1b[K')

const nodeMs = median(rows[0].samples)
const nodeCpu = median(rows[0].cpu)
const table = [['command', 'median ms', 'p10 ms', 'p90 ms', 'vs node -e 0', 'target', 'cpu ms', 'cpu vs node', 'runs']]
const results = []
for (const r of rows) {
  if (r.skipped) {
    table.push([r.label, r.skipped])
    results.push({ key: r.key, label: r.label, skipped: r.skipped })
    continue
  }
  const s = [...r.samples].sort((a, b) => a - b)
  const m = quantile(s, 0.5)
  const ratio = m / nodeMs
  const target = TARGETS[r.key]
  table.push([
    r.label,
    fmt(m, 1),
    fmt(quantile(s, 0.1), 1),
    fmt(quantile(s, 0.9), 1),
    `${fmt(ratio)}x`,
    target ? `<= ${target}x ${ratio <= target ? 'met' : 'MISSED'}` : '',
    fmt(median(r.cpu), 1),
    Number.isFinite(median(r.cpu)) ? `${fmt(median(r.cpu) / nodeCpu)}x` : '-',
    `${s.length}${r.failures ? ` (${r.failures} failed: ${r.lastError})` : ''}`,
  ])
  results.push({
    key: r.key,
    label: r.label,
    medianMs: round(m),
    p10Ms: round(quantile(s, 0.1)),
    p90Ms: round(quantile(s, 0.9)),
    vsNode: round(ratio, 3),
    cpuMs: round(median(r.cpu)),
    cpuVsNode: round(median(r.cpu) / nodeCpu, 3),
    target: target ?? null,
    met: target ? ratio <= target : null,
    runs: s.length,
    failures: r.failures,
  })
}
console.log('')
printTable(table)
if (podmanInfo) console.log(`\n  podman: ${podmanInfo.version}, runc ${podmanInfo.runtime}; ${podmanInfo.command}`)

if (opts.json) {
  mkdirSync(path.dirname(opts.json), { recursive: true })
  const out = {
    date: new Date().toISOString(),
    cli: opts.cli,
    iterations: opts.iterations,
    seed: firstSeed,
    node: process.version,
    results,
    podman: podmanInfo,
  }
  writeFileSync(opts.json, `${JSON.stringify(out, null, 2)}\n`)
  if (!process.env.NS_BENCH_CLI_EMBEDDED) console.log(`\nwrote ${opts.json}`)
}
scratch.cleanup()
process.exit(scratch.interrupted ? 130 : 0)
