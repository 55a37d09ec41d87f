#!/usr/bin/env node
// Layer unpack benchmark: one layer of host files (/usr/lib/python3*, /usr/include: about
// 200 MB in thousands of files), compressed with gzip and with zstd, unpacked by the addon's
// unpackLayer and by the host's tools from the same blob in the same run:
//
//   decompress   gzip -dc / zstd -dc to /dev/null (the floor: decompression alone)
//   tar          tar -xzf BLOB / zstd -dc BLOB | tar -x (the yardstick)
//   tar+sync     the same, then sync -f (durable, as unpackLayer's result is)
//   ns           unpackLayer: digest and diff_id verified, safe extraction, syncfs, rename
//   ns rootless  the same for a rootless store: the owners set again from inside a user
//                namespace that maps a subordinate range (as root: an explicit map)
//
// Every entry of the layer is owned by uid 33 (as if made by www-data), the worst case of a
// rootless store: each one is given its owner in the user namespace.
// Every round runs each contender once, in an order that rotates from round to round; the
// extracted trees are removed after each round (not timed), which then waits --settle seconds
// (30) so that ext4's pass over recently freed inodes does not land on the next contender. The
// blob stays in the page cache.
//
//   node tools/bench-unpack.mjs [--rounds N] [--settle SECONDS] [--json FILE] [--keep]
//
// A report, not a test: it exits 0 when it completes, whether or not the target (ns within
// 1.3x of tar) is met.

import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

import { fmt, median, printTable, readArgs, repoRoot, round, usageExit, which } from './bench-common.mjs'

const USAGE = 'usage: node tools/bench-unpack.mjs [--rounds N] [--settle SECONDS] [--json FILE] [--keep]\n'
const opts = { rounds: 5, settle: 30, json: undefined, keep: false }
readArgs(process.argv.slice(2), {
  prog: 'bench-unpack',
  usage: (code) => usageExit(USAGE, code),
  opts,
  counts: { '--rounds': ['rounds', 1], '--settle': ['settle', 0] },
  handle: (arg, next, fail) => {
    if (arg === '--json') opts.json = next()
    else if (arg === '--keep') opts.keep = true
    else if (arg === '--help' || arg === '-h') usageExit(USAGE, 0)
    else fail(`unknown option ${arg}`)
  },
})

const native = createRequire(import.meta.url)(path.join(repoRoot, 'packages', 'native', 'lib.cjs'))
for (const tool of ['tar', 'gzip', 'zstd', 'sync']) {
  if (!which(tool)) {
    console.error(`bench-unpack: ${tool} is not installed`)
    process.exit(1)
  }
}

const cache = path.join(repoRoot, 'tools', '.cache', 'bench-unpack')
mkdirSync(cache, { recursive: true })
const SOURCES = ['lib/python3', 'lib/python3.11', 'include'].filter((d) => existsSync(path.join('/usr', d)))
const tarFile = path.join(cache, 'layer.tar')
const blobs = { gzip: path.join(cache, 'layer.tar.gz'), zstd: path.join(cache, 'layer.tar.zst') }

const sh = (cmd) => {
  const r = spawnSync('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr.trim()}`)
}
const sha256 = (file) =>
  new Promise((resolve, reject) => {
    const h = createHash('sha256')
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(`sha256:${h.digest('hex')}`))
      .on('error', reject)
  })

if (!existsSync(blobs.gzip) || !existsSync(blobs.zstd)) {
  console.log(`making the layer from /usr/{${SOURCES.join(',')}} ...`)
  sh(`tar --numeric-owner --owner=33 --group=33 -C /usr -cf ${tarFile} ${SOURCES.join(' ')}`)
  sh(`gzip -6 -c ${tarFile} > ${blobs.gzip}.new && mv ${blobs.gzip}.new ${blobs.gzip}`)
  sh(`zstd -q -3 -T1 -c ${tarFile} > ${blobs.zstd}.new && mv ${blobs.zstd}.new ${blobs.zstd}`)
}
const diffId = await sha256(tarFile)
const size = statSync(tarFile).size
const files = Number(spawnSync('sh', ['-c', `tar -tf ${tarFile} | wc -l`], { encoding: 'utf8' }).stdout.trim())
const digests = { gzip: await sha256(blobs.gzip), zstd: await sha256(blobs.zstd) }

const work = mkdtempSync(path.join(cache, 'run-'))
let seq = 0
const fresh = () => {
  const d = path.join(work, `d${seq++}`)
  mkdirSync(d)
  return d
}
/** Layers unpackLayer made this round, with the options that remove them. */
const made = []
// ext4 passes over inodes freed in the last 30 s when it allocates new ones, which bills the
// removal of one contender's tree to the next: trees are removed once a round, then left to age.
const clear = async () => {
  for (const m of made.splice(0)) await native.removeLayer(m)
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work)
  sh(`sync -f ${work}`)
  await new Promise((r) => setTimeout(r, opts.settle * 1000))
}

/** CPU seconds of this process's waited-for children (utime + stime of /proc/self/stat). */
function childCpu() {
  const s = readFileSync('/proc/self/stat', 'utf8')
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
  return (Number(f[13]) + Number(f[14])) / 100
}
const ownCpu = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}
const cpu = {}

function timeSync(cmd) {
  const c0 = childCpu()
  const t0 = process.hrtime.bigint()
  sh(cmd)
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  cpu.last = childCpu() - c0
  return ms
}

const contenders = {
  decompress: (c) =>
    timeSync(c === 'gzip' ? `gzip -dc ${blobs.gzip} > /dev/null` : `zstd -dc ${blobs.zstd} > /dev/null`),
  tar: (c) => {
    const d = fresh()
    return timeSync(c === 'gzip' ? `tar -xzf ${blobs.gzip} -C ${d}` : `zstd -dc ${blobs.zstd} | tar -x -C ${d}`)
  },
  'tar+sync': (c) => {
    const d = fresh()
    const x = c === 'gzip' ? `tar -xzf ${blobs.gzip} -C ${d}` : `zstd -dc ${blobs.zstd} | tar -x -C ${d}`
    return timeSync(`${x} && sync -f ${d}`)
  },
  ns: async (c) => {
    const dest = path.join(work, `layer${seq++}`)
    const c0 = ownCpu()
    const t0 = process.hrtime.bigint()
    const r = await native.unpackLayer({ blob: blobs[c], dest, digest: digests[c], diffId })
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    cpu.last = ownCpu() - c0
    if (r.diffId !== diffId || r.size !== size) throw new Error(`unpackLayer gave ${r.diffId} (${r.size} bytes)`)
    made.push({ path: dest })
    return ms
  },
}

const euid = process.geteuid?.() ?? 0
const egid = process.getegid?.() ?? 0
// Root may write any map; anyone else gets its /etc/subuid range (unpackLayer's default).
const mapped =
  euid === 0
    ? {
        uidMappings: [
          { containerID: 0, hostID: euid, size: 1 },
          { containerID: 1, hostID: 700000, size: 65536 },
        ],
        gidMappings: [
          { containerID: 0, hostID: egid, size: 1 },
          { containerID: 1, hostID: 700000, size: 65536 },
        ],
      }
    : {}
contenders['ns rootless'] = async (c) => {
  const dest = path.join(work, `layer${seq++}`)
  const c0 = ownCpu()
  const t0 = process.hrtime.bigint()
  const r = await native.unpackLayer({ blob: blobs[c], dest, digest: digests[c], diffId, rootless: true, ...mapped })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  cpu.last = ownCpu() - c0
  if (r.diffId !== diffId || !r.rootless) throw new Error(`unpackLayer gave ${r.diffId}`)
  made.push({ path: dest, rootless: true, ...mapped })
  return ms
}

const names = Object.keys(contenders)
const samples = {}
const cpuSamples = {}
for (const c of ['gzip', 'zstd'])
  for (const n of names) {
    samples[`${c} ${n}`] = []
    cpuSamples[`${c} ${n}`] = []
  }
console.log(
  `layer: ${(size / 1e6).toFixed(0)} MB uncompressed, ${files} entries; gzip ${(statSync(blobs.gzip).size / 1e6).toFixed(0)} MB, zstd ${(statSync(blobs.zstd).size / 1e6).toFixed(0)} MB; ${opts.rounds} rounds`,
)
for (let round_ = 0; round_ < opts.rounds; round_++) {
  for (const c of ['gzip', 'zstd']) {
    const order = names.map((_, i) => names[(i + round_) % names.length])
    for (const n of order) {
      samples[`${c} ${n}`].push(await contenders[n](c))
      cpuSamples[`${c} ${n}`].push(cpu.last)
    }
  }
  await clear()
  process.stdout.write(`round ${round_ + 1}/${opts.rounds} done\n`)
}

const rows = [['contender', 'median ms', 'min ms', 'MB/s (tar stream)', 'vs tar', 'CPU s', 'CPU vs tar']]
const report = { size, files, rounds: opts.rounds, results: {} }
for (const c of ['gzip', 'zstd']) {
  const tarMs = median(samples[`${c} tar`])
  const tarCpu = median(cpuSamples[`${c} tar`])
  for (const n of names) {
    const xs = samples[`${c} ${n}`]
    const m = median(xs)
    const k = median(cpuSamples[`${c} ${n}`])
    rows.push([
      `${c} ${n}`,
      fmt(m, 0),
      fmt(Math.min(...xs), 0),
      fmt(size / 1e6 / (m / 1000), 0),
      fmt(m / tarMs, 2),
      fmt(k, 2),
      fmt(k / tarCpu, 2),
    ])
    report.results[`${c} ${n}`] = {
      medianMs: round(m, 1),
      minMs: round(Math.min(...xs), 1),
      ratioToTar: round(m / tarMs, 3),
      cpuSeconds: round(k, 3),
      cpuRatioToTar: round(k / tarCpu, 3),
    }
  }
}
printTable(rows)
for (const c of ['gzip', 'zstd']) {
  const r = report.results[`${c} ns`].ratioToTar
  const k = report.results[`${c} ns`].cpuRatioToTar
  console.log(
    `${c}: ns is ${fmt(r, 2)}x tar in wall-clock time (target <= 1.3x: ${r <= 1.3 ? 'met' : 'NOT met'}), ${fmt(k, 2)}x in CPU time`,
  )
}
if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2))
if (!opts.keep) rmSync(work, { recursive: true, force: true })
