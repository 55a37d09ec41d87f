// The command line of tools/bench-server.mjs: its usage text, and its options read into an
// object.

import path from 'node:path'
import { readArgs, usageExit } from '../../bench-common.mjs'

export function usage(code) {
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

export function parseArgs(argv) {
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
