#!/usr/bin/env node
// Network benchmark, run inside a sandbox host of its own (a network, mount and PID namespace
// with a tmpfs on /run, its own network store, an upstream namespace on 198.51.100.0/24): the
// real host's interfaces, routes and firewall are never touched. Three parts:
//
// 1. Start-up: @ns/core's run() of /bin/true on the fixture rootfs with --network none and on a
//    bridge network, next to podman run --rm --network none and --network bridge (netavark) of
//    the same rootfs; interleaved rounds in rotating order. The cost of a bridge attachment is
//    the difference of the medians (target: at most 1.5 ms); ns on a bridge against podman on
//    one, as a ratio (target: 10x faster).
// 2. Churn: N containers (default 500), each on the bridge network with a published port of its
//    own, run to completion at concurrency 8; then the counts of host veths, firewall elements,
//    allocations and DNS entries must be back where they started.
// 3. Throughput (iperf3, 3 s each): container to container on a bridge, a client on the host to
//    a container's published port, and a bare veth pair between two namespaces, in one run.
//
//   node tools/bench-net.mjs [--iterations N] [--warmup N] [--churn N] [--no-podman] [--no-iperf]
//                            [--json FILE]
//
// A report, not a test: it exits 0 when it completes.

import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.join(here, '..')

const TARGET_BRIDGE_MS = 1.5
const TARGET_VS_PODMAN = 10
const SUBNET = '10.89.200.0/24'
const PODMAN_IMAGE = 'localhost/nsbench-net:latest'
const PODMAN_CONF = (dir) =>
  `[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n[network]\nnetwork_config_dir = "${dir}/networks"\n`

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : dflt
}
const opts = {
  inside: args.includes('--inside'),
  iterations: Number(opt('--iterations', '60')),
  warmup: Number(opt('--warmup', '5')),
  churn: Number(opt('--churn', '500')),
  podman: !args.includes('--no-podman'),
  iperf: !args.includes('--no-iperf'),
  json: opt('--json', null),
}
if (args.includes('-h') || args.includes('--help')) {
  console.log(
    'usage: node tools/bench-net.mjs [--iterations N] [--warmup N] [--churn N] [--no-podman] [--no-iperf] [--json FILE]',
  )
  process.exit(0)
}

const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || null

// ---------------------------------------------------------------- outside: the sandbox

if (!opts.inside) {
  const why =
    process.geteuid?.() !== 0
      ? 'bridge networks need root'
      : ['unshare', 'ip', 'nft'].find((t) => !which(t))
        ? 'needs unshare, ip and nft'
        : null
  if (why) {
    console.log(`network section: skipped: ${why}`)
    if (opts.json) writeFileSync(opts.json, JSON.stringify({ skipped: why }))
    process.exit(0)
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ns-bench-net-'))
  const script = String.raw`
set -e
mount --make-rprivate /
mount -t tmpfs -o mode=755 tmpfs /run
printf 'nameserver 198.51.100.2\n' > "$SANDBOX/resolv.conf"
mount --bind "$SANDBOX/resolv.conf" /etc/resolv.conf
ip link set lo up
ip netns add up
ip link add up0 type veth peer name eth0 netns up
ip addr add 198.51.100.1/24 dev up0
ip link set up0 up
ip -n up link set lo up
ip -n up addr add 198.51.100.2/24 dev eth0
ip -n up link set eth0 up
ip route add default via 198.51.100.2
exec node "$BENCH" --inside "$@"
`
  writeFileSync(path.join(dir, 'sandbox.sh'), script)
  const child = spawn(
    'unshare',
    [
      '--net',
      '--mount',
      '--pid',
      '--mount-proc',
      '--fork',
      'bash',
      path.join(dir, 'sandbox.sh'),
      ...args.filter((a) => a !== '--inside'),
    ],
    {
      stdio: 'inherit',
      env: {
        ...process.env,
        SANDBOX: dir,
        BENCH: fileURLToPath(import.meta.url),
        NS_NETWORK_STORE: path.join(dir, 'networks'),
        NS_BENCH_NET_TMP: dir,
      },
    },
  )
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig))
  child.on('exit', (code, sig) => {
    rmSync(dir, { recursive: true, force: true })
    process.exit(code ?? (sig ? 130 : 1))
  })
} else {
  await inside()
}

// ---------------------------------------------------------------- inside: the measurements

async function inside() {
  const core = await import(path.join(repoRoot, 'packages', 'core', 'dist', 'index.js'))
  const FIXTURE = path.join(repoRoot, 'test', 'fixtures', 'rootfs')
  const cli = path.join(repoRoot, 'packages', 'cli', 'bin', 'ns.js')
  const tmp = process.env.NS_BENCH_NET_TMP
  const nets = core.networks()
  nets.create({ name: 'bench', subnet: SUBNET })
  const out = { date: new Date().toISOString(), iterations: opts.iterations, warmup: opts.warmup }

  const median = (a) => quantile(a, 0.5)
  function quantile(a, q) {
    const s = [...a].sort((x, y) => x - y)
    if (!s.length) return NaN
    const pos = (s.length - 1) * q
    const lo = Math.floor(pos)
    const hi = Math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)
  }
  const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-')
  const table = (rows) => {
    const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '').length)))
    const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ')
    console.log([line(rows[0]), w.map((n) => '-'.repeat(n)).join('  '), ...rows.slice(1).map(line)].join('\n'))
  }

  // ------------------------------------------------------------ 1. start-up
  let lastNsError = ''
  const nsRun = async (o) => {
    try {
      const r = await core.run(o)
      if (r.exitCode !== 0) lastNsError = String(r.stderr).trim().split('\n').pop() ?? ''
      return r.exitCode
    } catch (e) {
      lastNsError = e.message
      return 125
    }
  }
  const contenders = [
    {
      key: 'ns-none',
      label: 'ns run() --network none',
      run: () => nsRun({ command: ['/bin/true'], rootfs: FIXTURE }),
    },
    {
      key: 'ns-bridge',
      label: 'ns run() --network bench (bridge)',
      run: () => nsRun({ command: ['/bin/true'], rootfs: FIXTURE, network: 'bench' }),
    },
  ]
  let podmanNote = null
  const podmanBin = which('podman')
  if (!opts.podman) podmanNote = 'skipped: --no-podman'
  else if (!podmanBin) podmanNote = 'skipped: podman not installed'
  else if (!which('runc')) podmanNote = 'skipped: runc not installed'
  else {
    const dir = path.join(tmp, 'podman')
    const conf = path.join(tmp, 'containers.conf')
    writeFileSync(conf, PODMAN_CONF(dir))
    const g = ['--root', `${dir}/storage`, '--runroot', `${dir}/run`, '--tmpdir', `${dir}/tmp`, '--runtime', 'runc']
    const env = { ...process.env, CONTAINERS_CONF: conf }
    const tar = spawnSync('tar', ['-C', FIXTURE, '-c', '.'], { maxBuffer: 256 << 20 }).stdout
    const imp = spawnSync(podmanBin, [...g, 'import', '-', PODMAN_IMAGE], { input: tar, env })
    if (imp.status !== 0) podmanNote = `skipped: podman import failed: ${String(imp.stderr).trim().split('\n').pop()}`
    else {
      const pod = (network) => () =>
        new Promise((resolve) => {
          const c = spawn(podmanBin, [...g, 'run', '--rm', '--network', network, PODMAN_IMAGE, '/bin/true'], {
            env,
            stdio: 'ignore',
          })
          c.on('exit', (code) => resolve(code))
        })
      contenders.push(
        { key: 'podman-none', label: 'podman run --rm --network none', run: pod('none') },
        { key: 'podman-bridge', label: 'podman run --rm --network bridge (netavark)', run: pod('bridge') },
      )
      out.podman = {
        version: String(spawnSync(podmanBin, ['--version'], { encoding: 'utf8' }).stdout).trim(),
        networkBackend: String(
          spawnSync(podmanBin, [...g, 'info', '--format', '{{.Host.NetworkBackend}}'], { encoding: 'utf8', env })
            .stdout,
        ).trim(),
      }
    }
  }
  for (const c of contenders) c.samples = []
  for (const c of contenders) {
    const code = await c.run()
    if (code !== 0) c.skipped = `skipped: exit code ${code}${c.key.startsWith('ns') ? ` (${lastNsError})` : ''}`
  }
  const live = contenders.filter((c) => !c.skipped)
  for (let w = 0; w < opts.warmup; w++) for (const c of live) await c.run()
  for (let i = 0; i < opts.iterations; i++) {
    for (let k = 0; k < live.length; k++) {
      const c = live[(i + k) % live.length]
      const t0 = process.hrtime.bigint()
      const code = await c.run()
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      if (code === 0) c.samples.push(ms)
    }
  }
  const med = Object.fromEntries(contenders.map((c) => [c.key, median(c.samples)]))
  console.log(`network start-up: /bin/true on the fixture rootfs, ${opts.warmup} warm-up + ${opts.iterations} rounds`)
  table([
    ['contender', 'median ms', 'p10', 'p90', 'runs'],
    ...contenders.map((c) =>
      c.skipped
        ? [c.label, c.skipped, '', '', '']
        : [
            c.label,
            fmt(med[c.key]),
            fmt(quantile(c.samples, 0.1)),
            fmt(quantile(c.samples, 0.9)),
            String(c.samples.length),
          ],
    ),
  ])
  if (podmanNote) console.log(`podman: ${podmanNote}`)
  const attach = med['ns-bridge'] - med['ns-none']
  const vsPodman = med['podman-bridge'] / med['ns-bridge']
  console.log(
    `a bridge attachment adds ${fmt(attach)} ms (target <= ${TARGET_BRIDGE_MS}: ${attach <= TARGET_BRIDGE_MS ? 'met' : 'missed'})`,
  )
  if (Number.isFinite(vsPodman))
    console.log(
      `podman --network bridge / ns --network bench: ${fmt(vsPodman, 1)}x (target >= ${TARGET_VS_PODMAN}x: ${vsPodman >= TARGET_VS_PODMAN ? 'met' : 'missed'})`,
    )
  out.startup = {
    results: contenders.map((c) => ({
      key: c.key,
      label: c.label,
      skipped: c.skipped ?? null,
      medianMs: med[c.key],
      p10Ms: quantile(c.samples, 0.1),
      p90Ms: quantile(c.samples, 0.9),
      runs: c.samples.length,
    })),
    bridgeAttachMs: attach,
    podmanBridgeOverNsBridge: Number.isFinite(vsPodman) ? vsPodman : null,
    podmanNote,
  }

  // ------------------------------------------------------------ 2. churn
  const counts = () => {
    const links = spawnSync('ip', ['-br', 'link'], { encoding: 'utf8' }).stdout
    const veths = links.split('\n').filter((l) => /^ns[0-9a-f]{12}/.test(l)).length
    const nft = spawnSync('nft', ['-j', 'list', 'table', 'inet', 'ns'], { encoding: 'utf8' }).stdout ?? ''
    const elements = (nft.match(/"comment": "ns:/g) ?? []).length
    let allocations = 0
    try {
      allocations = readdirSync(path.join(nets.stateDir, 'bench', 'holders')).length
    } catch {
      allocations = 0
    }
    let dns = 0
    try {
      dns = JSON.parse(readFileSync(path.join(nets.dnsDir, 'bench.json'), 'utf8')).containers.length
    } catch {
      dns = 0
    }
    const folders = existsSync(nets.containersDir) ? readdirSync(nets.containersDir).length : 0
    return { veths, elements, allocations, dns, folders }
  }
  const before = counts()
  const t0 = process.hrtime.bigint()
  let next = 0
  let failed = 0
  let lastError = ''
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= opts.churn) return
      try {
        const r = await core.run({ command: ['/bin/true'], network: 'bench', ports: [`${20000 + i}:80`] })
        if (r.exitCode !== 0) failed++
      } catch (e) {
        failed++
        lastError = e.message
      }
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  const churnS = Number(process.hrtime.bigint() - t0) / 1e9
  const after = counts()
  console.log(`\nchurn: ${opts.churn} containers on a bridge with a published port each, concurrency 8`)
  console.log(
    `  ${fmt(churnS, 1)} s, ${fmt(opts.churn / churnS, 1)} containers/s, ${failed} failed${lastError ? ` (${lastError})` : ''}`,
  )
  table([
    ['left on the host', 'before', 'after'],
    ...Object.keys(before).map((k) => [k, String(before[k]), String(after[k])]),
  ])
  const clean = Object.keys(before).every((k) => before[k] === after[k])
  console.log(`  back where they started: ${clean ? 'yes' : 'NO'}`)
  out.churn = { containers: opts.churn, concurrency: 8, seconds: churnS, failed, lastError, before, after, clean }

  // ------------------------------------------------------------ 3. throughput
  if (!opts.iperf || !which('iperf3')) {
    console.log(`\nthroughput: skipped: ${opts.iperf ? 'iperf3 not installed' : '--no-iperf'}`)
    out.throughput = { skipped: true }
  } else {
    const ns = (...a) => spawnSync('node', [cli, ...a], { encoding: 'utf8' })
    const gbps = (text) => {
      try {
        return JSON.parse(text).end.sum_received.bits_per_second / 1e9
      } catch {
        return NaN
      }
    }
    ns('run', '-d', '--name', 'iperf-srv', '--network', 'bench', '-p', '15201:5201', '--', 'iperf3', '-s')
    const ip = JSON.parse(ns('inspect', 'iperf-srv').stdout)[0].networks[0].addresses[0].split('/')[0]
    const sh = (c) => spawnSync('sh', ['-c', c], { encoding: 'utf8' })
    // Listening, by the socket table (a probe connection would take a session of iperf3's).
    const listening = (cmd) => {
      for (let i = 0; i < 200 && sh(`${cmd} ss -ltn | grep -q ':5201 '`).status !== 0; i++) sh('sleep 0.05')
    }
    listening(`node ${cli} exec iperf-srv`)
    // A bare veth pair between two namespaces: what the kernel gives without a bridge or NAT.
    sh(
      'ip netns add va && ip netns add vb && ip link add va0 netns va type veth peer name vb0 netns vb && ' +
        'ip -n va addr add 192.0.2.1/24 dev va0 && ip -n vb addr add 192.0.2.2/24 dev vb0 && ' +
        'ip -n va link set va0 up && ip -n vb link set vb0 up && ip -n va link set lo up && ip -n vb link set lo up',
    )
    const srv = spawn('ip', ['netns', 'exec', 'vb', 'iperf3', '-s'], { stdio: 'ignore' })
    listening('ip netns exec vb')
    // Three rounds of the three paths, interleaved (a loaded machine moves them all alike).
    const paths = {
      veth: () => sh('ip netns exec va iperf3 -c 192.0.2.2 -t 3 -J').stdout,
      c2c: () => ns('run', '--network', 'bench', '--', 'iperf3', '-c', ip, '-t', '3', '-J').stdout,
      pub: () => sh('iperf3 -c 127.0.0.1 -p 15201 -t 3 -J').stdout,
    }
    const got = { veth: [], c2c: [], pub: [] }
    for (let round = 0; round < 3; round++) for (const k of Object.keys(paths)) got[k].push(gbps(paths[k]()))
    srv.kill()
    ns('rm', '-f', 'iperf-srv')
    sh('ip netns del va; ip netns del vb')
    const veth = median(got.veth.filter(Number.isFinite))
    const c2c = median(got.c2c.filter(Number.isFinite))
    const pub = median(got.pub.filter(Number.isFinite))
    console.log('\nthroughput (iperf3, TCP, one stream, median of 3 interleaved runs of 3 s)')
    table([
      ['path', 'Gbit/s', 'of bare veth'],
      ['bare veth pair, two namespaces', fmt(veth), '1.00'],
      ['container to container, one bridge', fmt(c2c), fmt(c2c / veth)],
      ['host 127.0.0.1 to a published port', fmt(pub), fmt(pub / veth)],
    ])
    out.throughput = { vethGbps: veth, containerToContainerGbps: c2c, publishedPortGbps: pub, runs: got }
  }
  nets.remove('bench')
  if (opts.json) writeFileSync(opts.json, JSON.stringify(out, null, 2))
}
