#!/usr/bin/env node
// Start-up benchmark: wall-clock time to start /bin/true fully isolated and
// wait for it to exit, for @ns/core and for the usual tools (unshare, bwrap,
// runc, crun). All contenders are measured in one run, interleaved: each
// iteration runs every contender once, in an order that rotates from one
// iteration to the next, so drift on the machine hits them all alike. The
// base order of the rotation is reshuffled after each full turn, so that no
// contender always follows the same one (a network namespace is torn down
// asynchronously, and would otherwise bill its cost to whoever comes next).
//
//   node tools/bench.mjs [--iterations N] [--warmup N] [--seed N] [--json FILE] [--no-install]
//
// This is a report, not a test: it exits 0 when it completes, whether or not
// the targets are met. A contender that cannot run is reported as skipped.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE = path.join(repoRoot, 'test', 'fixtures', 'rootfs');
const RUN_TIMEOUT_MS = 15_000;

// The cgroup2 file that makes crun 1.8 refuse a hybrid cgroup layout.
const HYBRID_CONTROLLERS = '/sys/fs/cgroup/unified/cgroup.controllers';

const TARGET_VS_CRUN = 0.5;
const TARGET_VS_UNSHARE = 1.5;

// ---------------------------------------------------------------- options

function usage(code) {
  const text = `usage: node tools/bench.mjs [options]

  --iterations N   timed rounds; each round runs every contender once (default 200)
  --warmup N       untimed runs of each contender first (default 10)
  --seed N         seed for the order of contenders (default: random, printed)
  --json FILE      also write the results as JSON to FILE
  --no-install     do not apt-get install missing tools, even as root
  -h, --help       this text
`;
  (code === 0 ? process.stdout : process.stderr).write(text);
  process.exit(code);
}

function parseArgs(argv) {
  const opts = { iterations: 200, warmup: 10, seed: null, json: null, install: true };
  const count = (name, value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || (name === '--iterations' && n < 1)) {
      console.error(`bench: ${name} needs a whole number${name === '--iterations' ? ' >= 1' : ''}, got ${value}`);
      usage(2);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const next = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) {
        console.error(`bench: ${arg} needs a value`);
        usage(2);
      }
      return argv[++i];
    };
    switch (arg) {
      case '--iterations':
      case '-n':
        opts.iterations = count('--iterations', next());
        break;
      case '--warmup':
        opts.warmup = count('--warmup', next());
        break;
      case '--seed':
        opts.seed = count('--seed', next());
        break;
      case '--json':
        opts.json = path.resolve(next());
        break;
      case '--no-install':
        opts.install = false;
        break;
      case '-h':
      case '--help':
        usage(0);
        break;
      default:
        console.error(`bench: unknown argument ${arg}`);
        usage(2);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------- helpers

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function which(cmd) {
  for (const dir of (process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    if (existsSync(p)) return p;
  }
  // Tools in sbin are missing from some PATHs of non-login shells.
  for (const dir of ['/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
    const p = path.join(dir, cmd);
    if (existsSync(p)) return p;
  }
  return null;
}

function firstLine(text) {
  return String(text ?? '').trim().split('\n')[0]?.trim() ?? '';
}

/** Last meaningful line of a stderr, shortened, for "skipped: <reason>". */
function reasonFrom(stderr, fallback) {
  const lines = String(stderr ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const line = lines.at(-1) || fallback;
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

function versionOf(cmd, args = ['--version']) {
  const bin = which(cmd);
  if (!bin) return 'not installed';
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  if (r.error) return `unknown (${r.error.message})`;
  return firstLine(r.stdout || r.stderr) || 'unknown';
}

function installMissing() {
  const wanted = [
    { pkg: 'runc', ok: () => which('runc') },
    { pkg: 'crun', ok: () => which('crun') },
    { pkg: 'bubblewrap', ok: () => which('bwrap') },
    { pkg: 'busybox-static', ok: () => existsSync('/bin/busybox') || existsSync('/usr/bin/busybox') },
  ];
  const missing = wanted.filter((w) => !w.ok()).map((w) => w.pkg);
  if (missing.length === 0) return;
  if (!opts.install || !isRoot || !which('apt-get')) {
    console.log(`note: missing ${missing.join(', ')}; not installing (${!isRoot ? 'not root' : !opts.install ? '--no-install' : 'no apt-get'})`);
    return;
  }
  console.log(`installing missing packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const upd = spawnSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (upd.status !== 0) console.log('note: apt-get update failed; trying the install anyway');
  const inst = spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (inst.status !== 0) console.log(`note: apt-get install ${missing.join(' ')} failed; those contenders will be skipped`);
}

function ensureFixture() {
  const script = path.join(repoRoot, 'tools', 'make-rootfs.sh');
  const r = spawnSync('bash', [script, FIXTURE], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`tools/make-rootfs.sh ${FIXTURE} failed:\n${r.stderr || r.stdout}`);
  }
  return firstLine(r.stdout);
}

// ---------------------------------------------------------------- processes

const live = new Set();

/**
 * Spawn a command and time it from spawn() to 'close' (exit and stdio closed).
 * Resolves { ms, ok, code, signal, stderr }; never rejects.
 */
function timedSpawn(argv) {
  return new Promise((resolve) => {
    let stderr = '';
    let done = false;
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const timer = setTimeout(() => {
      stderr += `\n(timed out after ${RUN_TIMEOUT_MS} ms)`;
      child.kill('SIGKILL');
    }, RUN_TIMEOUT_MS);
    child.stdout.resume();
    child.stderr.on('data', (d) => {
      if (stderr.length < 8192) stderr += d;
    });
    const finish = (code, signal, error) => {
      if (done) return;
      done = true;
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      live.delete(child);
      if (error) stderr += `\n${error.message}`;
      resolve({ ms, ok: !error && code === 0, code, signal, stderr });
    };
    child.on('error', (err) => finish(null, null, err));
    child.on('close', (code, signal) => finish(code, signal));
  });
}

function quietSync(argv) {
  return spawnSync(argv[0], argv.slice(1), { stdio: 'ignore', timeout: RUN_TIMEOUT_MS });
}

// ---------------------------------------------------------------- setup

installMissing();
const fixtureNote = ensureFixture();

const tmp = mkdtempSync(path.join(os.tmpdir(), 'ns-bench-'));
let cleanedUp = false;
const cleanupSteps = [];
function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const step of cleanupSteps.reverse()) {
    try {
      step();
    } catch {
      /* best effort */
    }
  }
  rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (interrupted) {
      cleanup();
      process.exit(130);
    }
    interrupted = true;
    console.error(`\nbench: ${sig}, stopping after the current run (again to force)`);
  });
}

const contenders = [];
let nextId = 0;
const uniqueId = (prefix) => `${prefix}-${process.pid}-${nextId++}`;

function add(c) {
  contenders.push({ samples: [], failures: 0, lastError: '', skipped: null, ...c });
}

// a, b: @ns/core in this process.
let ns = null;
let nsImportError = null;
try {
  ns = await import('@ns/core');
} catch (err) {
  nsImportError = `cannot import @ns/core (${firstLine(err?.message)}); build it with npm run build`;
}
for (const net of [false, true]) {
  const namespaces = net ? { cgroup: false } : { network: false, cgroup: false };
  add({
    key: net ? 'ns-net' : 'ns',
    label: net ? '@ns/core +net' : '@ns/core',
    family: 'ns',
    net,
    skipped: nsImportError,
    async once() {
      const t0 = process.hrtime.bigint();
      try {
        const r = await ns.run({
          command: ['/bin/true'],
          rootfs: FIXTURE,
          namespaces,
          init: false,
          timeout: RUN_TIMEOUT_MS,
        });
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const ok = r.exitCode === 0 && !r.timedOut;
        return { ms, ok, stderr: ok ? '' : `exit ${r.exitCode}${r.signal ? ` (${r.signal})` : ''}: ${r.stderr}` };
      } catch (err) {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        return { ms, ok: false, stderr: String(err?.message ?? err) };
      }
    },
  });
}

// A contender that is one external command, with and without a network namespace.
function addCommand(family, bin, missing, argvFor) {
  for (const net of [false, true]) {
    const argv = bin ? argvFor(net) : [];
    add({
      key: net ? `${family}-net` : family,
      label: net ? `${family} +net` : family,
      family,
      net,
      skipped: bin ? null : missing,
      once: () => timedSpawn(argv),
    });
  }
}

// c: unshare from util-linux, the same namespaces, no root change.
const unshareBin = which('unshare');
addCommand('unshare', unshareBin, 'unshare (util-linux) not installed', (net) => [
  unshareBin, '--user', '--map-root-user', '--pid', '--fork', '--mount', '--uts', '--ipc',
  ...(net ? ['--net'] : []), '/bin/true',
]);

// d: bubblewrap on the same rootfs.
const bwrapBin = which('bwrap');
addCommand('bwrap', bwrapBin, 'bwrap (bubblewrap) not installed', (net) => [
  bwrapBin, '--unshare-user', '--unshare-pid', '--unshare-uts', '--unshare-ipc',
  ...(net ? ['--unshare-net'] : []),
  '--bind', FIXTURE, '/', '--proc', '/proc', '--dev', '/dev', '/bin/true',
]);

// e: runc and crun on an OCI bundle whose root is the fixture.
const runcBin = which('runc');
const crunBin = which('crun');
const configEdits = [];
const bundles = {};
let bundleError = null;
{
  const specTool = runcBin || crunBin;
  if (!specTool) {
    bundleError = 'neither runc nor crun is installed';
  } else {
    const specDir = path.join(tmp, 'spec');
    mkdirSync(specDir);
    const r = spawnSync(specTool, ['spec', '--rootless'], { cwd: specDir, encoding: 'utf8' });
    if (r.status !== 0) {
      bundleError = `${path.basename(specTool)} spec --rootless failed: ${reasonFrom(r.stderr, `exit ${r.status}`)}`;
    } else {
      const base = JSON.parse(readFileSync(path.join(specDir, 'config.json'), 'utf8'));
      for (const net of [false, true]) {
        const spec = structuredClone(base);
        spec.process.args = ['/bin/true'];
        spec.process.terminal = false;
        spec.root = { path: FIXTURE, readonly: false };
        // As root: map the first 65536 ids onto themselves. Otherwise keep the
        // rootless spec's mapping of container root onto our own ids.
        if (isRoot) {
          spec.linux.uidMappings = [{ containerID: 0, hostID: 0, size: 65536 }];
          spec.linux.gidMappings = [{ containerID: 0, hostID: 0, size: 65536 }];
        }
        const types = ['pid', 'ipc', 'uts', 'mount', 'user', ...(net ? ['network'] : [])];
        spec.linux.namespaces = types.map((type) => ({ type }));
        // No resource limits: nothing to set up in cgroups beyond the runtime's defaults.
        delete spec.linux.resources;
        const dir = path.join(tmp, net ? 'bundle-net' : 'bundle');
        mkdirSync(dir);
        writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2));
        bundles[net] = dir;
      }
      configEdits.push(
        `generated with "${path.basename(specTool)} spec --rootless"`,
        'process.args=["/bin/true"], process.terminal=false',
        'root.path=<fixture> (absolute), root.readonly=false',
        isRoot ? 'uid/gid mappings 0->0 size 65536 (we are root)' : 'uid/gid mappings as generated (0 -> our uid/gid, size 1)',
        'namespaces pid, ipc, uts, mount, user (+ network for the +net rows)',
        'linux.resources removed',
      );
    }
  }
}

// crun 1.8 refuses the hybrid cgroup layout (v1 controllers plus a cgroup2 at
// /sys/fs/cgroup/unified). Its rows run in a private mount namespace where
// /dev/null hides the cgroup2's cgroup.controllers; the wrapper's own cost is
// measured as a separate contender and subtracted in the report.
const crunWorkaround =
  isRoot && existsSync(HYBRID_CONTROLLERS) && !existsSync('/sys/fs/cgroup/cgroup.controllers');
const wrapperPrefix = crunWorkaround
  ? [unshareBin, '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind /dev/null "$1" && shift && exec "$@"', 'sh', HYBRID_CONTROLLERS]
  : [];
if (crunWorkaround && !unshareBin) bundleError ??= 'the crun workaround needs unshare, which is missing';

for (const [name, bin] of [
  ['runc', runcBin],
  ['crun', crunBin],
]) {
  const state = path.join(tmp, `${name}-state`);
  const prefix = name === 'crun' ? wrapperPrefix : [];
  const deleteOne = (id) => quietSync([...prefix, bin, '--root', state, 'delete', '-f', id]);
  if (bin) {
    // Whatever is left in the state directory at the end gets deleted.
    cleanupSteps.push(() => {
      if (!existsSync(state)) return;
      for (const id of readdirSync(state)) deleteOne(id);
    });
  }
  for (const net of [false, true]) {
    add({
      key: net ? `${name}-net` : name,
      label: `${name} run${net ? ' +net' : ''}${name === 'crun' && crunWorkaround ? ' (raw, in wrapper)' : ''}`,
      family: name,
      net,
      skipped: !bin ? `${name} not installed` : bundleError,
      async once() {
        const id = uniqueId(`nsbench-${name}`);
        const r = await timedSpawn([...prefix, bin, '--root', state, 'run', '--bundle', bundles[net], id]);
        if (!r.ok) deleteOne(id);
        return r;
      },
    });
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
  });
}

// What crun says without the work-around, for the report.
let crunRefusal = null;
if (crunWorkaround && crunBin && bundles[false]) {
  const state = path.join(tmp, 'crun-probe-state');
  const id = uniqueId('nsbench-crun-probe');
  const r = await timedSpawn([crunBin, '--root', state, 'run', '--bundle', bundles[false], id]);
  if (!r.ok) {
    crunRefusal = reasonFrom(r.stderr, `exit ${r.code}`);
    quietSync([...wrapperPrefix, crunBin, '--root', state, 'delete', '-f', id]);
  } else {
    crunRefusal = 'it ran without the work-around here, which is kept anyway for consistency';
  }
}

// ---------------------------------------------------------------- measure

// A small seeded generator (mulberry32), so an order can be replayed with --seed.
const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
let prngState = seed >>> 0;
function random() {
  prngState = (prngState + 0x6d2b79f5) >>> 0;
  let t = prngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function shuffle(list) {
  const a = [...list];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function active() {
  return contenders.filter((c) => !c.skipped);
}

function noteFailure(c, r) {
  c.failures++;
  c.lastError = reasonFrom(r.stderr, `exit ${r.code ?? '?'}${r.signal ? ` (${r.signal})` : ''}`);
}

// A first run of each contender: one that cannot run at all is skipped.
for (const c of active()) {
  const r = await c.once();
  if (!r.ok) {
    c.skipped = reasonFrom(r.stderr, `exit ${r.code ?? '?'}`);
    if (c.key === 'crun-wrapper') {
      // Without a wrapper, crun's rows cannot be corrected either.
      for (const d of contenders) if (d.family === 'crun' && !d.skipped) d.skipped = `crun wrapper failed: ${c.skipped}`;
    }
  }
}

const machine = {
  kernel: `${os.type()} ${os.release()} (${os.version()})`,
  arch: os.arch(),
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown',
  memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
  node: process.version,
  nsCore: (() => {
    try {
      return JSON.parse(readFileSync(path.join(repoRoot, 'packages', 'core', 'package.json'), 'utf8')).version;
    } catch {
      return 'unknown';
    }
  })(),
  runc: versionOf('runc'),
  crun: versionOf('crun'),
  bwrap: versionOf('bwrap'),
  unshare: versionOf('unshare'),
  cgroups: existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? 'cgroup v2 (unified)'
    : existsSync(HYBRID_CONTROLLERS)
      ? 'hybrid (cgroup v1 controllers + cgroup2 at /sys/fs/cgroup/unified)'
      : 'cgroup v1',
  user: isRoot ? 'root' : `uid ${process.getuid?.()}`,
};

console.log(`ns start-up benchmark: /bin/true, isolated, spawn to exit`);
console.log(`fixture: ${fixtureNote}`);
console.log(
  `${opts.warmup} warm-up + ${opts.iterations} timed runs per contender, interleaved round-robin in rotating order, reshuffled each full turn (${active().length} contenders, seed ${seed})`,
);

const started = Date.now();
for (let w = 0; w < opts.warmup && !interrupted; w++) {
  for (const c of active()) {
    if (interrupted) break;
    const r = await c.once();
    if (!r.ok) noteFailure(c, r);
  }
}
const warmupFailures = new Map(contenders.map((c) => [c.key, c.failures]));
for (const c of contenders) c.failures = 0;

let rounds = 0;
let base = [];
for (let i = 0; i < opts.iterations && !interrupted; i++) {
  const n = active().length;
  // Round i runs the base order rotated by i; after n rounds every contender
  // has held every position once, and the base order is shuffled anew.
  if (i % n === 0 || base.length !== n) base = shuffle(active());
  for (let k = 0; k < n && !interrupted; k++) {
    const c = base[(i + k) % n];
    const r = await c.once();
    if (r.ok) c.samples.push(r.ms);
    else noteFailure(c, r);
  }
  rounds++;
  if (process.stderr.isTTY && (i + 1) % 10 === 0) {
    process.stderr.write(`\r  ${i + 1}/${opts.iterations} rounds, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
}
if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
const elapsed = (Date.now() - started) / 1000;

// ---------------------------------------------------------------- report

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, median: quantile(s, 0.5), p10: quantile(s, 0.1), p90: quantile(s, 0.9) };
}

const byKey = new Map(contenders.map((c) => [c.key, c]));
for (const c of contenders) {
  if (!c.skipped && c.samples.length === 0) c.skipped = `no successful runs (${c.failures} failed): ${c.lastError}`;
  c.stats = c.skipped ? null : stats(c.samples);
}

// crun with the wrapper's overhead taken out: its median minus the wrapper's
// median; p10/p90 shifted by the same amount.
const wrapper = byKey.get('crun-wrapper');
const rows = [];
for (const c of contenders) {
  rows.push({ c, label: c.label, stats: c.stats, skipped: c.skipped });
  if (c.family === 'crun' && crunWorkaround) {
    let adj = null;
    let skipped = c.skipped;
    if (!skipped && wrapper?.stats) {
      const m = wrapper.stats.median;
      adj = { n: c.stats.n, median: c.stats.median - m, p10: c.stats.p10 - m, p90: c.stats.p90 - m };
    } else if (!skipped) {
      skipped = `wrapper overhead unknown: ${wrapper?.skipped ?? 'not measured'}`;
    }
    rows.push({ c, label: `crun run${c.net ? ' +net' : ''} (wrapper subtracted)`, stats: adj, skipped, adjusted: true });
  }
}

// The crun reference: the wrapper-subtracted figure when the work-around is in
// use (the fair one: crun's own cost), the plain figure otherwise.
function crunRef(net) {
  const row = rows.find((r) => r.c.family === 'crun' && r.c.net === net && (crunWorkaround ? r.adjusted : true));
  return row?.stats?.median ?? null;
}
function unshareRef(net) {
  return byKey.get(net ? 'unshare-net' : 'unshare')?.stats?.median ?? null;
}

const fmt = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null);
const fmtRatio = (r) => (r === null ? '-' : `${r.toFixed(2)}x`);

const table = [['contender', 'median ms', 'p10 ms', 'p90 ms', 'vs crun', 'vs unshare', 'runs']];
const jsonRows = [];
for (const r of rows) {
  const isWrapper = r.c.family === 'wrapper';
  const vsCrun = r.stats && !isWrapper ? ratio(r.stats.median, crunRef(r.c.net)) : null;
  const vsUnshare = r.stats && !isWrapper ? ratio(r.stats.median, unshareRef(r.c.net)) : null;
  const fails = r.c.failures ? ` (${r.c.failures} failed)` : '';
  if (r.skipped) {
    table.push([r.label, `skipped: ${r.skipped}`]);
  } else {
    table.push([
      r.label,
      fmt(r.stats.median),
      fmt(r.stats.p10),
      fmt(r.stats.p90),
      fmtRatio(vsCrun),
      fmtRatio(vsUnshare),
      `${r.stats.n}${fails}`,
    ]);
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
  });
}

function printTable(t) {
  const widths = [];
  for (const row of t) {
    if (row.length === 2 && row[1].startsWith('skipped')) {
      widths[0] = Math.max(widths[0] ?? 0, row[0].length);
      continue;
    }
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  }
  const lines = t.map((row) => {
    if (row.length === 2 && row[1].startsWith('skipped')) return `${row[0].padEnd(widths[0])}  ${row[1]}`;
    return row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  });
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  console.log(lines.join('\n'));
}

console.log('');
console.log('machine:');
console.log(`  kernel   ${machine.kernel} ${machine.arch}`);
console.log(`  cpus     ${machine.cpus} x ${machine.cpuModel}, ${machine.memory}`);
console.log(`  cgroups  ${machine.cgroups}`);
console.log(`  node     ${machine.node}, @ns/core ${machine.nsCore}, running as ${machine.user}`);
console.log(`  runc     ${machine.runc}`);
console.log(`  crun     ${machine.crun}`);
console.log(`  bwrap    ${machine.bwrap}`);
console.log(`  unshare  ${machine.unshare}`);
console.log('');
console.log(`results (${rounds} rounds in ${elapsed.toFixed(1)} s${interrupted ? ', interrupted' : ''}):`);
printTable(table);
console.log('');
console.log('  "vs crun" and "vs unshare" compare medians with the matching network setting (+net rows with +net rows).');
if (crunWorkaround) {
  console.log(
    `  crun refuses this hybrid cgroup layout${crunRefusal ? ` ("${crunRefusal}")` : ''}, so its rows run as`,
  );
  console.log(
    `    unshare --mount --propagation private sh -c 'mount --bind /dev/null ${HYBRID_CONTROLLERS} && exec crun ...'`,
  );
  console.log(
    '    "raw, in wrapper" includes that wrapper; "wrapper subtracted" takes away the median of the same wrapper running',
  );
  console.log(
    '    /bin/true ("crun wrapper alone"; p10/p90 shifted by that median). "vs crun" uses the wrapper-subtracted figure.',
  );
}
console.log('  every contender gets user, pid, mount, uts and ipc namespaces; @ns/core, bwrap, runc and crun also change root to');
console.log(`  the fixture (${path.relative(repoRoot, FIXTURE)}); unshare runs the host's /bin/true without changing root.`);
if (configEdits.length) console.log(`  OCI bundle: ${configEdits.join('; ')}.`);
for (const c of contenders) {
  if (!c.skipped && c.failures) console.log(`  ${c.label}: ${c.failures} timed runs failed; last error: ${c.lastError}`);
}

console.log('');
console.log('targets:');
const targets = [];
for (const net of [false, true]) {
  const c = byKey.get(net ? 'ns-net' : 'ns');
  const m = c?.stats?.median ?? null;
  const name = c?.label ?? '@ns/core';
  const vsC = ratio(m, crunRef(net));
  const vsU = ratio(m, unshareRef(net));
  const judge = (r, limit, what) =>
    r === null ? `unknown (${m === null ? `${name} skipped` : `${what} skipped`})` : r <= limit ? 'met' : 'NOT met';
  const tC = {
    target: `${name} at or below ${TARGET_VS_CRUN}x crun run${net ? ' +net' : ''}`,
    ratio: vsC,
    met: vsC === null ? null : vsC <= TARGET_VS_CRUN,
  };
  const tU = {
    target: `${name} at most ${TARGET_VS_UNSHARE}x unshare${net ? ' +net' : ''}`,
    ratio: vsU,
    met: vsU === null ? null : vsU <= TARGET_VS_UNSHARE,
  };
  console.log(`  ${tC.target}: ${fmtRatio(vsC)} -> ${judge(vsC, TARGET_VS_CRUN, 'crun')}`);
  console.log(`  ${tU.target}: ${fmtRatio(vsU)} -> ${judge(vsU, TARGET_VS_UNSHARE, 'unshare')}`);
  targets.push(tC, tU);
}

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
          adjustment: 'wrapper-subtracted rows = crun medians (and p10/p90) minus the median of the wrapper running /bin/true',
        }
      : { applied: false },
    ociConfigEdits: configEdits,
    results: jsonRows,
    targets,
  };
  mkdirSync(path.dirname(opts.json), { recursive: true });
  writeFileSync(opts.json, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwrote ${opts.json}`);
}

cleanup();
process.exit(interrupted ? 130 : 0);
