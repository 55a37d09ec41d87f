// The command line of tools/bench.mjs: its usage text, and its options read into an object.

import path from 'node:path'
import { readArgs, usageExit } from '../bench-common.mjs'

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
  --no-server      leave out the server section (tools/bench-server.mjs)
  --server-containers N
                   containers run to completion over the server's API (default 500)
  -h, --help       this text
`
  usageExit(text, code)
}

export function parseArgs(argv) {
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
    },
    aliases: { '-n': '--iterations', '-h': '--help' },
    handle(arg, next, fail) {
      if (arg === '--json') opts.json = path.resolve(next())
      else if (arg === '--no-install') opts.install = false
      else if (arg === '--no-server') opts.server = false
      else if (arg === '--no-cli') opts.cli = false
      else if (arg === '--help') usage(0)
      else fail(`unknown argument ${arg}`)
    },
  })
}
