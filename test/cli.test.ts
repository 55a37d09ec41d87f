// `ns` as a person types it: real processes, real namespaces, exit codes as docker gives them.
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'

import { cli, fixtureRootfs, itNs, itRoot, repoRoot } from './helpers.js'
import { ociBin } from './oci-bundle.js'

function ns(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 20_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('ns run', () => {
  itNs('ns run -- sh -c "hostname; ps": its own hostname and only its own processes', () => {
    const r = ns('run', '--', 'sh', '-c', 'hostname; ps -e -o pid=,comm=')
    expect(r.code, r.stderr).toBe(0)
    const [host, ...procs] = r.stdout.trim().split('\n')
    expect(host).not.toBe(hostname())
    expect(procs.map((l) => l.trim())).toEqual(['1 ns-oci', '2 sh', expect.stringMatching(/^\d+ ps$/)])
  })

  itNs('rootfs, hostname, volume, env and workdir flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ns-cli-'))
    chmodSync(dir, 0o777)
    try {
      const r = ns(
        'run',
        '--rootfs',
        fixtureRootfs,
        '--hostname',
        'box',
        '-v',
        `${dir}:/data`,
        '-e',
        'A=1',
        '-w',
        '/data',
        '--',
        'sh',
        '-c',
        'hostname; echo $A; pwd; echo hi > out',
      )
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toBe('box\n1\n/data\n')
      expect(readFileSync(join(dir, 'out'), 'utf8')).toBe('hi\n')
    } finally {
      rmSync(dir, { recursive: true })
    }
  })

  itNs("exit codes: the command's own, 127 not found, 128+N for a signal", () => {
    expect(ns('run', '--', 'sh', '-c', 'exit 42').code).toBe(42)
    const nf = ns('run', '--', 'no-such-command-here')
    expect(nf.code).toBe(127)
    expect(nf.stderr).toBe('ns: exec "no-such-command-here": executable file not found in $PATH\n')
    expect(ns('run', '--', 'sh', '-c', 'kill -TERM $$').code).toBe(143)
  })

  itNs('--no-init makes the command PID 1; --timeout kills it', () => {
    expect(ns('run', '--no-init', '--', 'sh', '-c', 'echo $$').stdout).toBe('1\n')
    const t = ns('run', '--timeout', '0.3', '--', 'sleep', '20')
    expect(t.code).toBe(137)
    expect(t.stderr).toContain('timed out')
  })

  itNs('--share net shares the host network; --time-offset moves the boot clock', () => {
    const shared = ns('run', '--share', 'network', '--', 'sh', '-c', 'ls /sys/class/net | wc -l')
    expect(Number(shared.stdout.trim())).toBeGreaterThan(1)
    const t = ns('run', '--time-offset', 'boottime=864000', '--', 'cat', '/proc/uptime')
    expect(Number(t.stdout.split(' ')[0])).toBeGreaterThan(864000)
  })

  itNs("a signal sent to ns reaches the container once, and ns exits with the container's status", async () => {
    const child = spawn(
      process.execPath,
      [cli, 'run', '--', 'sh', '-c', 'trap "echo got-int; exit 3" INT; echo started; while :; do sleep 0.05; done'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out === 'started\n') child.kill('SIGINT')
    })
    // 'close', not 'exit': the output may still be in the pipe when the process has ended.
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)))
    expect(out).toBe('started\ngot-int\n')
    expect(code).toBe(3)
  })

  it('bad flags: a one-line message naming the flag, and 125', () => {
    const r = ns('run', '--uidmap', 'nonsense', '--', 'true')
    expect(r.code).toBe(125)
    expect(r.stderr).toBe('ns: --uidmap: "nonsense" must be CONTAINER:HOST:SIZE\n')
    const s = ns('run', '--share', 'bogus', '--', 'true')
    expect(s.code).toBe(125)
    expect(s.stderr).toContain('--share: unknown namespace "bogus"')
    const v = ns('run', '-v', 'nocolon', '--', 'true')
    expect(v.code).toBe(125)
    expect(v.stderr).toBe(
      'ns: --volume "nocolon": must be SRC:DST[:OPTS] with an absolute DST, OPTS among ro, rw, idmap\n',
    )
  })

  it('ns --version prints the version', () => {
    const r = ns('--version')
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
  })
})

describe("bad usage is an error with status 125, and nothing after -- is read as ns's", () => {
  it("an unknown option: 125 and the option named, not the help of ns (the -h after -- is the program's)", () => {
    for (const args of [
      ['run', '--no-such-flag', '--', 'ls', '-h', '/'],
      ['run', '--no-such-flag', 'ls', '-h', '/'],
      ['create', '--no-such-flag', '--', 'ls', '--help'],
      ['exec', '--no-such-flag', 'abc', '--', 'ls', '-h'],
      ['ps', '--no-such-flag'],
      ['--no-such-flag', 'ps'],
    ]) {
      const r = ns(...args)
      expect(r.code, args.join(' ')).toBe(125)
      expect(r.stderr, args.join(' ')).toContain("error: unknown option '--no-such-flag'")
      expect(r.stdout, args.join(' ')).toBe('')
    }
  })

  it('a missing argument, a missing value, too many arguments, an unknown command: 125', () => {
    const cases: Array<[string[], string]> = [
      [['run'], 'error: missing the command to run (put it after --)'],
      [['run', '--'], 'error: missing the command to run (put it after --)'],
      [['run', '--rootfs'], "error: option '--rootfs <dir>' argument missing"],
      [['exec'], "error: missing required argument 'id'"],
      [['exec', 'abc', '--'], 'error: missing the command to run (put it after --)'],
      [['start'], "error: missing required argument 'id'"],
      [['ps', 'extra'], "error: too many arguments for 'ps'"],
      [['bogus'], "error: unknown command 'bogus'"],
      [['ps', '--format', 'yaml'], "error: option '--format <format>' argument 'yaml' is invalid"],
    ]
    for (const [args, message] of cases) {
      const r = ns(...args)
      expect(r.code, args.join(' ')).toBe(125)
      expect(r.stderr, args.join(' ')).toContain(message)
    }
  })

  it('ns serve --allow-registry reaches the server: a malformed registry stops it at start, naming the flag and the value', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ns-cli-serve-'))
    try {
      const socket = join(dir, 'ns.sock')
      const r = ns('serve', '--socket', socket, '--allow-registry', '127.0.0.1:5000', '--allow-registry', 'https://x/')
      expect(r.code, r.stderr).toBe(125)
      expect(r.stderr).toContain('--allow-registry "https://x/": ')
      expect(r.stderr).toContain('must be HOST or HOST:PORT')
      expect(r.stdout).toBe('')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('ns serve --socket in a folder that does not exist: 125, the path named, and no folder made', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ns-cli-serve-'))
    try {
      const socket = join(dir, 'no', 'such', 'x.sock')
      const r = ns('serve', '--socket', socket)
      expect(r.code, r.stderr).toBe(125)
      expect(r.stderr).toContain(join(dir, 'no', 'such'))
      expect(existsSync(join(dir, 'no'))).toBe(false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('help asked for is help: status 0, on stdout', () => {
    for (const args of [['run', '-h'], ['run', '--help'], ['ps', '--help'], ['help', 'exec'], ['--help']]) {
      const r = ns(...args)
      expect(r.code, args.join(' ')).toBe(0)
      expect(r.stdout, args.join(' ')).toMatch(/^Usage: ns/)
    }
  })

  itNs("ns run -- PROGRAM ARGS: every argument after -- is the program's, -h and -- included", () => {
    const r = ns('run', '--', 'sh', '-c', 'echo "$@"', 'sh', '-h', '--help', '--', '-v', '--rootfs')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('-h --help -- -v --rootfs\n')
    // ns's options end at the first operand too (without --, that is an image: image-cli.test.ts).
    const p = ns('run', '-e', 'A=1', '--', 'sh', '-c', 'echo "$A $*"', 'sh', '-e', 'B=2')
    expect(p.code, p.stderr).toBe(0)
    expect(p.stdout).toBe('1 -e B=2\n')
  })
})

describe('what users type, handled right', () => {
  itNs('-e KEY passes on a variable that is set, and leaves one that is not unset (as docker)', () => {
    const r = spawnSync(
      process.execPath,
      [cli, 'run', '-e', 'NS_SET', '-e', 'NS_UNSET', '--', 'sh', '-c', 'echo "${NS_SET-unset} ${NS_UNSET-unset}"'],
      { encoding: 'utf8', env: { ...process.env, NS_SET: 'here', NS_UNSET: undefined } },
    )
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe('here unset\n')
  })

  itNs(
    '-m 0, -v SRC:/proc and --tmpfs /proc: refused before anything runs, naming the flag (not a silent 137, not a masking error)',
    () => {
      const src = mkdtempSync(join(tmpdir(), 'ns-cli-proc-'))
      try {
        const proc = 'only a proc filesystem may be mounted on /proc (the set-up and the masked paths rely on it)'
        const cases: Array<[string[], string]> = [
          [['-m', '0'], 'ns: --memory "0": must be at least 6m (6 MiB): less cannot start a process'],
          [['-m', '5m'], 'ns: --memory "5m": must be at least 6m (6 MiB)'],
          [['-v', `${src}:/proc`], `ns: --volume "${src}:/proc": ${proc}`],
          [['--tmpfs', '/proc'], `ns: --tmpfs "/proc": ${proc}`],
        ]
        for (const [flags, message] of cases) {
          const r = ns('run', ...flags, '--', 'sh', '-c', 'echo ran')
          expect({ flags, code: r.code, stdout: r.stdout }).toEqual({ flags, code: 125, stdout: '' })
          expect(r.stderr, flags.join(' ')).toContain(message)
          expect(r.stderr, flags.join(' ')).not.toMatch(/sys\/firmware/)
        }
      } finally {
        rmSync(src, { recursive: true, force: true })
      }
    },
  )

  itNs('a long --name is a name, not a hostname: the container gets a hostname of its own', () => {
    const root = mkdtempSync(join(tmpdir(), 'ns-cli-names-'))
    try {
      const name = `a_long_name.${'x'.repeat(70)}`
      const r = ns('--root', root, 'run', '-d', '--name', name, '--', 'hostname')
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toBe(`${name}\n`)
      expect(ns('--root', root, 'wait', name).stdout).toBe('0\n')
      expect(ns('--root', root, 'logs', name).stdout).toMatch(/^[0-9a-f]{12}\n$/)
      // A name that is a hostname is the hostname.
      expect(ns('--root', root, 'run', '-d', '--rm', '--name', 'web-1', '--', 'true').code).toBe(0)
      const bad = ns('--root', root, 'run', '-d', '--name', 'a b', '--', 'true')
      expect(bad.code).toBe(125)
      expect(bad.stderr).toBe(
        'ns: --name "a b": must be a letter or digit, then letters, digits, _ . or - (at most 255 characters)\n',
      )
    } finally {
      ns('--root', root, 'rm', '-f', `a_long_name.${'x'.repeat(70)}`)
      rmSync(root, { recursive: true, force: true })
    }
  })

  itRoot(
    'ns pause and ns unpause (or ns-oci on the same root): ns ps (without -a) shows it paused, then running',
    () => {
      const root = mkdtempSync(join(tmpdir(), 'ns-cli-paused-'))
      const oci = (...args: string[]) =>
        spawnSync(ociBin, ['--root', root, ...args], { encoding: 'utf8', timeout: 20_000 })
      try {
        const r = ns('--root', root, 'run', '-d', '--name', 'napping', '-m', '64m', '--', 'sleep', '30')
        expect(r.code, r.stderr).toBe(0)
        const ps = () =>
          JSON.parse(ns('--root', root, 'ps', '--format', 'json').stdout).map((s: any) => [s.id, s.status])
        const p = ns('--root', root, 'pause', 'napping')
        expect(p.code, p.stderr).toBe(0)
        expect(ps()).toEqual([['napping', 'paused']])
        expect(ns('--root', root, 'ps').stdout).toMatch(/^napping\s+paused\s/m)
        const again = ns('--root', root, 'pause', 'napping')
        expect(again.code).toBe(125)
        expect(again.stderr).toContain('cannot pause container "napping": it is paused')
        expect(ns('--root', root, 'unpause', 'napping').code).toBe(0)
        expect(ps()).toEqual([['napping', 'running']])
        // An engine's pause is seen the same way.
        const byEngine = oci('pause', 'napping')
        expect(byEngine.status, byEngine.stderr).toBe(0)
        expect(ps()).toEqual([['napping', 'paused']])
        expect(oci('resume', 'napping').status).toBe(0)
        expect(ps()).toEqual([['napping', 'running']])
        // Without limits there is no cgroup to freeze: said so, and it runs on.
        expect(ns('--root', root, 'run', '-d', '--name', 'free', '--', 'sleep', '30').code).toBe(0)
        const free = ns('--root', root, 'pause', 'free')
        expect(free.code).toBe(125)
        expect(free.stderr).toContain('cannot pause container "free": it has no cgroup to freeze')
      } finally {
        ns('--root', root, 'rm', '-f', 'napping', 'free')
        rmSync(root, { recursive: true, force: true })
      }
    },
  )

  itRoot('ns update writes new limits to a running container, read back from its cgroup on the host', () => {
    const root = mkdtempSync(join(tmpdir(), 'ns-cli-update-'))
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers')
    /** A cgroup file of `pid` (v1: under its controller's hierarchy). */
    const cg = (pid: number, controller: string, v1File: string, v2File: string) => {
      for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
        const [, names, path] = line.split(':') as [string, string, string]
        if (v2 && names === '') return readFileSync(join('/sys/fs/cgroup', path, v2File), 'utf8').trim()
        if (!v2 && names.split(',').includes(controller))
          return readFileSync(join('/sys/fs/cgroup', controller, path, v1File), 'utf8').trim()
      }
      throw new Error(`no ${controller} cgroup for ${pid}`)
    }
    try {
      const r = ns(
        '--root',
        root,
        'run',
        '-d',
        '--name',
        'grow',
        '-m',
        '64m',
        '--pids-limit',
        '20',
        '--',
        'sleep',
        '30',
      )
      expect(r.code, r.stderr).toBe(0)
      const pid = JSON.parse(ns('--root', root, 'inspect', 'grow').stdout)[0].pid as number
      expect(cg(pid, 'memory', 'memory.limit_in_bytes', 'memory.max')).toBe(String(64 << 20))
      const u = ns('--root', root, 'update', '-m', '128m', '--pids-limit', '50', 'grow')
      expect(u.code, u.stderr).toBe(0)
      expect(u.stdout).toBe('grow\n')
      expect(cg(pid, 'memory', 'memory.limit_in_bytes', 'memory.max')).toBe(String(128 << 20))
      expect(cg(pid, 'pids', 'pids.max', 'pids.max')).toBe('50')
      // The config keeps what was written.
      expect(JSON.parse(ns('--root', root, 'inspect', 'grow').stdout)[0].config.linux.resources.memory.limit).toBe(
        128 << 20,
      )
      const none = ns('--root', root, 'update', 'grow')
      expect(none.code).toBe(125)
      expect(none.stderr).toContain('give at least one limit')
      const small = ns('--root', root, 'update', '-m', '1k', 'grow')
      expect(small.code).toBe(125)
      expect(small.stderr).toMatch(/^ns: --memory "1k": /)
      expect(cg(pid, 'memory', 'memory.limit_in_bytes', 'memory.max')).toBe(String(128 << 20))
      expect(ns('--root', root, 'run', '-d', '--name', 'loose', '--', 'sleep', '30').code).toBe(0)
      const loose = ns('--root', root, 'update', '-m', '128m', 'loose')
      expect(loose.code).toBe(125)
      expect(loose.stderr).toContain('cannot update container "loose": it has no cgroup to apply limits to')
    } finally {
      ns('--root', root, 'rm', '-f', 'grow', 'loose')
      rmSync(root, { recursive: true, force: true })
    }
  })

  it('mounts over the root, paths with .., sizes and numbers past what the kernel takes: the flag named', () => {
    const cases: Array<[string[], string]> = [
      [
        ['-v', '/tmp:/'],
        `ns: --volume "/tmp:/": must not be / (a mount cannot replace the container's root; use rootfs)`,
      ],
      [
        ['-v', '/tmp:/.'],
        `ns: --volume "/tmp:/.": must not be / (a mount cannot replace the container's root; use rootfs)`,
      ],
      [['--tmpfs', '/'], `ns: --tmpfs "/": must not be / (a mount cannot replace the container's root; use rootfs)`],
      [['-v', '/tmp:/../x'], `ns: --volume "/tmp:/../x": must not contain '..'`],
      [['--tmpfs', '/a/../../b'], `ns: --tmpfs "/a/../../b": must not contain '..'`],
      [['-m', '99999999999999999999'], 'ns: --memory "99999999999999999999": must be at most 9007199254740991 bytes'],
      [['--memory-swap', '99999999999999999999g'], 'ns: --memory-swap "99999999999999999999g": must be at most'],
      [['--pids-limit', '99999999999999999999'], 'ns: --pids-limit "99999999999999999999": Too big'],
      [['--pids-limit', '5000000'], 'ns: --pids-limit "5000000": Too big: expected number to be <=4194304'],
      [['--cpus', '99999999999999999999'], 'ns: --cpus "99999999999999999999": Too big'],
      [['--cpu-shares', '99999999999999999999'], 'ns: --cpu-shares "99999999999999999999": Too big'],
      [['--blkio-weight', '99999999999999999999'], 'ns: --blkio-weight "99999999999999999999": Too big'],
      [['--timeout', '99999999'], 'ns: --timeout "99999999": Too big: expected number to be <=2147483647'],
    ]
    for (const [flags, message] of cases) {
      const r = ns('run', ...flags, '--', 'true')
      expect(r.code, flags.join(' ')).toBe(125)
      expect(r.stderr, flags.join(' ')).toContain(message)
      expect(r.stderr.split('\n').length, flags.join(' ')).toBe(2)
    }
  })

  it('an argument that is not UTF-8 is refused, named, rather than run changed', () => {
    // Through sh: a byte string that is not UTF-8 cannot be given to spawn by Node itself.
    const r = spawnSync(
      'sh',
      ['-c', 'exec "$0" "$1" run -- cat "$(printf "/etc/\\377passwd")"', process.execPath, cli],
      {
        encoding: 'utf8',
      },
    )
    expect(r.status).toBe(125)
    expect(r.stderr).toBe(
      'ns: argument 4 is not valid UTF-8: "/etc/\\xffpasswd" (refused rather than passed on changed)\n',
    )
    expect(r.stdout).toBe('')
  })
})

describe('ns loads only what the command typed uses', () => {
  const bundle = join(repoRoot, 'packages', 'cli', 'dist', 'ns.cjs')

  /** The packages a run of `ns ARGS` loads from node_modules, as Node's loader saw them. */
  function loaded(...args: string[]): { code: number | null; modules: string[] } {
    const dir = mkdtempSync(join(tmpdir(), 'ns-cli-loads-'))
    try {
      const spy = join(dir, 'spy.cjs')
      const log = join(dir, 'loaded')
      writeFileSync(
        spy,
        `const M = require('node:module'); const fs = require('node:fs'); const seen = new Set()
const load = M._load
M._load = function (request, ...rest) { seen.add(request); return load.call(this, request, ...rest) }
process.on('exit', () => fs.writeFileSync(${JSON.stringify(log)}, [...seen].join('\\n')))
`,
      )
      const r = spawnSync(process.execPath, ['--require', spy, cli, '--root', dir, ...args], {
        encoding: 'utf8',
        timeout: 20_000,
      })
      return { code: r.status, modules: readFileSync(log, 'utf8').split('\n') }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  it('the bundle that bin/ns.js runs holds no schema library and no server', () => {
    const text = readFileSync(bundle, 'utf8')
    expect(text).not.toContain('$ZodType')
    expect(text).not.toContain('OpenAPIHono')
    expect(text).not.toContain('hono')
  })

  it('ns --version loads neither the addon nor the server', () => {
    const r = loaded('--version')
    expect(r.code).toBe(0)
    expect(r.modules).not.toContain('@ns/native')
    expect(r.modules).not.toContain('@ns/server')
    expect(r.modules.filter((m) => m === 'zod' || m.startsWith('zod/'))).toEqual([])
  })

  it('ns ps loads the addon, not the server', () => {
    const r = loaded('ps', '-a')
    expect(r.code).toBe(0)
    expect(r.modules).toContain('@ns/native')
    expect(r.modules).not.toContain('@ns/server')
  })

  it('ns network ls loads neither the server nor a schema library', () => {
    const r = loaded('network', 'ls')
    expect(r.code).toBe(0)
    expect(r.modules).not.toContain('@ns/server')
    expect(r.modules.filter((m) => m === 'zod' || m.startsWith('zod/'))).toEqual([])
  })

  itNs('ns run loads the addon, not the server, nor the image code (its zlib and streams)', () => {
    const r = loaded('run', '--', 'true')
    expect(r.code).toBe(0)
    expect(r.modules).toContain('@ns/native')
    expect(r.modules).not.toContain('@ns/server')
    expect(r.modules.filter((m) => /^(node:)?(zlib|stream\/promises)$/.test(m))).toEqual([])
  })

  it('ns run IMAGE loads the image code (a store that lacks the image, with --pull never)', () => {
    const store = mkdtempSync(join(tmpdir(), 'ns-cli-store-'))
    try {
      const r = loaded('--store', store, 'run', '--pull', 'never', 'localhost/ns/absent:1')
      expect(r.code).toBe(125)
      expect(r.modules).toContain('node:zlib')
    } finally {
      rmSync(store, { recursive: true, force: true })
    }
  })
})
