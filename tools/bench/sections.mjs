// The sections of tools/bench.mjs that are programs of their own (tools/bench-cli.mjs,
// tools/bench-server.mjs): where they are registered, and how each is run, in a process of
// its own with its output inline, its results read back from the JSON file it writes.

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { repoRoot } from '../bench-common.mjs'

/**
 * The sections, in the order they run after the start-up and lifecycle sections. Each one's
 * results go into the JSON under its `key`. `on(opts)` says whether it runs (`off` names the
 * option that leaves it out), `args(opts, jsonFile)` its command line, and `embedded` the
 * variable that tells it it runs inside bench.mjs (it leaves out its "wrote FILE" line, the
 * file being ours). A new section is one more entry here, and its option in options.mjs.
 */
export const SECTIONS = [
  {
    key: 'cli',
    what: 'the CLI section',
    script: 'bench-cli.mjs',
    embedded: 'NS_BENCH_CLI_EMBEDDED',
    on: (opts) => opts.cli,
    off: '--no-cli',
    args: (opts, jsonFile) => [
      '--iterations',
      String(opts.cliIterations),
      '--warmup',
      String(Math.min(opts.warmup, 5)),
      '--json',
      jsonFile,
    ],
  },
  {
    // It stops and cleans up by itself on Ctrl-C (it gets the terminal's SIGINT too).
    key: 'server',
    what: 'the server section',
    script: 'bench-server.mjs',
    embedded: 'NS_BENCH_SERVER_EMBEDDED',
    on: (opts) => opts.server,
    off: '--no-server',
    args: (opts, jsonFile) => [
      '--containers',
      String(opts.serverContainers),
      '--json',
      jsonFile,
      ...(opts.install ? [] : ['--no-install']),
    ],
  },
]

/**
 * Runs one section in a process of its own, its output inline; resolves what it wrote as
 * JSON, or why there is none. Should we exit while it still runs, it gets a SIGTERM, on which
 * it cleans up.
 */
async function runSection(run, opts, section) {
  if (!section.on(opts)) return { skipped: section.off }
  if (run.interrupted) return { skipped: 'interrupted' }
  const jsonFile = path.join(run.tmp, `${section.key}.json`)
  const args = [path.join(repoRoot, 'tools', section.script), ...section.args(opts, jsonFile)]
  let child = null
  run.steps.push(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  })
  console.log('')
  const code = await new Promise((resolve) => {
    child = spawn(process.execPath, args, { stdio: 'inherit', env: { ...process.env, [section.embedded]: '1' } })
    child.on('error', (err) => resolve(`cannot start it: ${err.message}`))
    child.on('exit', (c, sig) => resolve(c ?? sig))
  })
  let out = null
  try {
    out = JSON.parse(readFileSync(jsonFile, 'utf8'))
  } catch {
    /* none written */
  }
  const how = typeof code === 'number' ? `exit code ${code}` : code
  if (code !== 0) console.log(`note: ${section.what} ended with ${how}`)
  return out ?? { skipped: `no results (${how})` }
}

/** Every registered section, one after the other: their results by key. */
export async function runSections(run, opts) {
  const results = {}
  for (const section of SECTIONS) results[section.key] = await runSection(run, opts, section)
  return results
}
