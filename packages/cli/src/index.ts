// `ns`: the command line for people. Flags are parsed here and become @ns/core options.
import { Command, CommanderError, Option } from 'commander'

import {
  NsError,
  create,
  defaultRoot,
  get,
  hostInfo,
  list,
  namespaceNames,
  spawn,
  type Container,
  type ContainerState,
  type DetachedContainer,
  type RunOptions,
} from '@ns/core'
import { defaultSocketPath, generateToken, serve, type RequestLog } from '@ns/server'

const collect = (v: string, prev: string[] = []) => [...prev, v]

function idMap(flag: string) {
  return (v: string, prev: RunOptions['uidMappings'] = []) => {
    const m = /^(\d+):(\d+):(\d+)$/.exec(v)
    if (!m)
      throw new NsError({
        code: 'EINVAL',
        field: flag,
        message: `${flag}: ${JSON.stringify(v)} must be CONTAINER:HOST:SIZE`,
      })
    return [...(prev ?? []), { containerID: Number(m[1]), hostID: Number(m[2]), size: Number(m[3]) }]
  }
}

interface RunFlags {
  memory?: string
  memorySwap?: string
  pidsLimit?: string
  cpus?: string
  cpuShares?: string
  cpusetCpus?: string
  blkioWeight?: string
  bestEffortLimits?: boolean
  capAdd?: string[]
  capDrop?: string[]
  tty?: boolean
  interactive?: boolean
  detach?: boolean
  name?: string
  rm?: boolean
  rootfs?: string
  hostname?: string
  volume?: string[]
  tmpfs?: string[]
  env?: string[]
  workdir?: string
  user?: string
  readOnly?: boolean
  init: boolean
  net?: string
  share?: string[]
  userns?: string
  uidmap?: RunOptions['uidMappings']
  gidmap?: RunOptions['gidMappings']
  timeOffset?: string[]
  timeout?: string
}

function number(flag: string, v: string): number {
  const n = Number(v)
  if (!Number.isFinite(n)) throw NsError.invalid(flag, `${JSON.stringify(v)} is not a number`)
  return n
}

/** Turn `ns run` flags into @ns/core options. */
export function runOptionsFromFlags(command: string[], f: RunFlags): RunOptions {
  const namespaces: NonNullable<RunOptions['namespaces']> = {}
  for (const s of f.share ?? []) {
    if (!(namespaceNames as readonly string[]).includes(s)) {
      throw NsError.invalid('--share', `unknown namespace ${JSON.stringify(s)} (one of ${namespaceNames.join(', ')})`)
    }
    namespaces[s as (typeof namespaceNames)[number]] = false
  }
  if (f.net === 'host') namespaces.network = false
  else if (f.net && f.net !== 'none') namespaces.network = f.net
  const timeOffsets: Record<string, number> = {}
  for (const t of f.timeOffset ?? []) {
    const m = /^(monotonic|boottime)=(-?\d+)$/.exec(t)
    if (!m) throw NsError.invalid('--time-offset', `${JSON.stringify(t)} must be monotonic=SECONDS or boottime=SECONDS`)
    timeOffsets[m[1]!] = Number(m[2])
  }
  const env: string[] = []
  for (const e of f.env ?? []) env.push(e.includes('=') ? e : `${e}=${process.env[e] ?? ''}`)
  if (process.env.TERM && process.stdout.isTTY) env.unshift(`TERM=${process.env.TERM}`)
  let timeout: number | undefined
  if (f.timeout !== undefined) {
    timeout = Number(f.timeout) * 1000
    if (!Number.isFinite(timeout) || timeout <= 0)
      throw NsError.invalid('--timeout', 'must be a positive number of seconds')
  }
  return {
    command,
    ...(f.rootfs !== undefined ? { rootfs: f.rootfs } : {}),
    ...(f.hostname !== undefined ? { hostname: f.hostname } : {}),
    ...(f.volume ? { volumes: f.volume } : {}),
    ...(f.tmpfs ? { mounts: f.tmpfs.map((t) => ({ type: 'tmpfs' as const, target: t })) } : {}),
    ...(env.length ? { env } : {}),
    ...(f.workdir !== undefined ? { cwd: f.workdir } : {}),
    ...(f.user !== undefined ? { user: f.user } : {}),
    ...(f.readOnly !== undefined ? { readOnly: f.readOnly } : {}),
    init: f.init,
    ...(Object.keys(namespaces).length ? { namespaces } : {}),
    ...(f.userns !== undefined ? { userns: f.userns as RunOptions['userns'] } : {}),
    ...(f.uidmap ? { uidMappings: f.uidmap } : {}),
    ...(f.gidmap ? { gidMappings: f.gidmap } : {}),
    ...(Object.keys(timeOffsets).length ? { timeOffsets } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
    ...(f.tty ? { tty: true } : {}),
    ...(f.capAdd ? { capAdd: f.capAdd } : {}),
    ...(f.memory !== undefined ? { memory: f.memory } : {}),
    ...(f.memorySwap !== undefined ? { memorySwap: f.memorySwap === '-1' ? -1 : f.memorySwap } : {}),
    ...(f.pidsLimit !== undefined ? { pidsLimit: number('--pids-limit', f.pidsLimit) } : {}),
    ...(f.cpus !== undefined ? { cpus: number('--cpus', f.cpus) } : {}),
    ...(f.cpuShares !== undefined ? { cpuShares: number('--cpu-shares', f.cpuShares) } : {}),
    ...(f.cpusetCpus !== undefined ? { cpusetCpus: f.cpusetCpus } : {}),
    ...(f.blkioWeight !== undefined ? { blkioWeight: number('--blkio-weight', f.blkioWeight) } : {}),
    ...(f.bestEffortLimits ? { bestEffortLimits: true } : {}),
    ...(f.capDrop ? { capDrop: f.capDrop } : {}),
  }
}

/** What was asked for and not done (best-effort limits), on stderr. */
function warn(warnings: string[]): void {
  for (const w of warnings) process.stderr.write(`ns: warning: ${w}\n`)
}

function report(e: unknown): number {
  if (e instanceof NsError) {
    process.stderr.write(`ns: ${e.message}\n`)
    if (e.hint) process.stderr.write(`ns: hint: ${e.hint}\n`)
    return e.exitCode
  }
  process.stderr.write(`ns: ${(e as Error)?.message ?? String(e)}\n`)
  return 125
}

async function runCommand(command: string[], flags: RunFlags): Promise<number> {
  const options = runOptionsFromFlags(command, flags)
  return runForwarding(
    () => spawn({ ...options, stdin: 'inherit', stdout: 'inherit', stderr: 'inherit' }),
    flags.timeout,
  )
}

/**
 * Start a foreground process and wait for it; signals for us are for it: pass them on. The
 * handlers are in place before it starts, so a signal that comes at once is not lost (nor
 * kills us, and with us the container).
 */
async function runForwarding(start: () => Container, timeout?: string): Promise<number> {
  let c: Container | undefined
  const early: NodeJS.Signals[] = []
  const forward = (sig: NodeJS.Signals) => (c ? void c.kill(sig) : early.push(sig))
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH']
  for (const s of signals) process.on(s, forward)
  try {
    c = start()
    const started = c
    started.started.then(
      () => warn(started.warnings),
      () => {},
    )
    for (const sig of early) void c.kill(sig)
    const r = await c.exited
    if (r.timedOut) process.stderr.write(`ns: timed out after ${timeout}s; killed\n`)
    if (r.oomKilled) process.stderr.write('ns: killed by the OOM killer: the container reached its memory limit\n')
    return r.exitCode
  } finally {
    for (const s of signals) process.off(s, forward)
  }
}

function addRunFlags(c: Command): Command {
  return c
    .argument('<command...>', 'the program and its arguments (put them after --)')
    .passThroughOptions()
    .option('-t, --tty', 'give the command a terminal (yours is relayed to it, in raw mode)')
    .option('-i, --interactive', 'keep stdin open (it always is in the foreground)')
    .option('--name <id>', "the container's id (default: 12 random hex digits)")
    .option('--rootfs <dir>', "root filesystem directory (default: a read-only sandbox of the host's own files)")
    .option('--hostname <name>', 'hostname inside (default: the container id)')
    .option(
      '-v, --volume <src:dst[:opts]>',
      'bind mount a host path; opts: ro, idmap (owners seen through the id maps) (repeatable)',
      collect,
    )
    .option('--tmpfs <dst>', 'mount a tmpfs (repeatable)', collect)
    .option('-e, --env <key=value>', 'set an environment variable (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory inside')
    .option('-u, --user <uid[:gid]>', 'user and group inside')
    .option('--read-only', 'make the root filesystem read-only')
    .option('--no-read-only', 'make the sandbox root writable (a tmpfs)')
    .option('--no-init', 'run the command itself as PID 1 (no init to forward signals and reap)')
    .addOption(
      new Option('--net <mode>', 'network: none (a new namespace with only lo), host, or a namespace path').default(
        'none',
      ),
    )
    .option(
      '--share <namespace>',
      `share a namespace with the host instead of a new one: ${namespaceNames.join(', ')} (repeatable)`,
      collect,
    )
    .option('-m, --memory <size>', 'memory limit (64m, 1g)')
    .option('--memory-swap <size>', 'memory plus swap limit (-1: unlimited swap)')
    .option('--pids-limit <n>', 'at most this many processes')
    .option('--cpus <n>', 'CPU time as a number of CPUs (0.5)')
    .option('--cpu-shares <n>', 'relative CPU weight')
    .option('--cpuset-cpus <list>', 'CPUs it may run on (0-1,3)')
    .option('--blkio-weight <n>', 'relative block I/O weight, 10 to 1000')
    .option(
      '--best-effort-limits',
      'run without the limits that cannot be applied here (with a warning) instead of failing',
    )
    .option(
      '--cap-add <cap>',
      'add a capability to the default set (CAP_SYS_ADMIN, SYS_ADMIN or ALL; repeatable)',
      collect,
    )
    .option('--cap-drop <cap>', 'drop a capability from the default set (or ALL; repeatable)', collect)
    .option(
      '--userns <mode>',
      "auto (root's default: a range of host ids of its own, root inside is nobody outside) or host (no user namespace)",
    )
    .option('--uidmap <c:h:n>', 'uid range of the user namespace (repeatable)', idMap('--uidmap'))
    .option('--gidmap <c:h:n>', 'gid range of the user namespace (repeatable)', idMap('--gidmap'))
    .option(
      '--time-offset <clock=secs>',
      'a new time namespace with this clock offset: monotonic= or boottime= (repeatable)',
      collect,
    )
}

function root(cmd: Command): string {
  return (cmd.optsWithGlobals() as { root?: string }).root ?? defaultRoot()
}

function detachedOptions(command: string[], flags: RunFlags, cmd: Command) {
  const { timeout: _t, ...o } = runOptionsFromFlags(command, flags)
  if (flags.timeout !== undefined) throw NsError.invalid('--timeout', 'applies to foreground runs only')
  return { ...o, root: root(cmd), ...(flags.name ? { name: flags.name } : {}), ...(flags.rm ? { remove: true } : {}) }
}

const shortTime = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2)))
          .join('')
          .trimEnd(),
      )
      .join('\n') + '\n'
  )
}

function statusText(s: ContainerState): string {
  if (s.status !== 'stopped' || !s.exit) return s.status
  return s.exit.signal ? `exited (signal ${s.exit.signal})` : `exited (${s.exit.exitCode})`
}

async function eachId(ids: string[], cmd: Command, f: (c: DetachedContainer) => Promise<void> | void): Promise<number> {
  let code = 0
  for (const id of ids) {
    try {
      await f(get(id, root(cmd)))
    } catch (e) {
      code = report(e)
    }
  }
  return code
}

/** The keys that detach (ctrl-p ctrl-q), as docker's are. */
const DETACH_KEYS = Buffer.from([0x10, 0x11])

/** `ns attach`: your terminal in raw mode to the container's; its exit code when it ends. */
async function attachCommand(c: DetachedContainer): Promise<number> {
  const a = await c.attach()
  const stdin = process.stdin
  const raw = stdin.isTTY === true
  const size = () => {
    if (process.stdout.isTTY && process.stdout.columns && process.stdout.rows)
      a.resize(process.stdout.columns, process.stdout.rows)
  }
  let detached = false
  let last = -1
  const onKeys = (chunk: Buffer) => {
    // ctrl-p then ctrl-q detaches; a lone ctrl-p is sent on with what follows.
    for (let i = 0; i < chunk.length; i++) {
      if (last === DETACH_KEYS[0] && chunk[i] === DETACH_KEYS[1]) {
        detached = true
        a.close()
        return
      }
      last = chunk[i]!
    }
    a.write(chunk)
  }
  if (raw) stdin.setRawMode(true)
  stdin.on('data', onKeys)
  process.on('SIGWINCH', size)
  size()
  a.output.pipe(process.stdout, { end: false })
  try {
    await a.closed
  } finally {
    process.off('SIGWINCH', size)
    stdin.off('data', onKeys)
    if (raw) stdin.setRawMode(false)
    stdin.pause()
  }
  if (detached) {
    process.stderr.write(`\r\nns: detached from ${c.id}; it goes on\r\n`)
    return 0
  }
  const e = await c.wait()
  return e.exitCode ?? 128 + (e.signal ?? 0)
}

export function program(): Command {
  const cli = new Command('ns')
    .description('Run processes isolated by Linux namespaces.')
    .version(hostInfo().version, '-V, --version')
    .option('--root <dir>', 'state directory of containers (default: /run/ns as root, $XDG_RUNTIME_DIR/ns otherwise)')
    .enablePositionalOptions()
    .exitOverride()

  addRunFlags(cli.command('run'))
    .description("run a command isolated in new namespaces (default: a read-only sandbox of the host's files)")
    .option('-d, --detach', 'run in the background; print the container id')
    .option('--rm', 'with -d: remove the container once it has ended')
    .option('--timeout <seconds>', 'kill the container after this many seconds (foreground only)')
    .action(async (command: string[], flags: RunFlags, cmd: Command) => {
      const argv = command[0] === '--' ? command.slice(1) : command
      if (flags.detach) {
        const c = await create(detachedOptions(argv, flags, cmd))
        warn(c.warnings)
        await c.start()
        process.stdout.write(`${c.id}\n`)
        return
      }
      if (flags.name) throw NsError.invalid('--name', 'names containers that run detached (-d)')
      process.exitCode = await runCommand(argv, flags)
    })

  addRunFlags(cli.command('create'))
    .description('create a container that waits for `ns start`')
    .option('--rm', 'remove the container once it has ended')
    .action(async (command: string[], flags: RunFlags, cmd: Command) => {
      const c = await create(detachedOptions(command[0] === '--' ? command.slice(1) : command, flags, cmd))
      warn(c.warnings)
      process.stdout.write(`${c.id}\n`)
    })

  cli
    .command('exec')
    .description("run a command in a running container (it joins all the container's namespaces)")
    .argument('<id>')
    .argument('<command...>', 'the program and its arguments (put them after --)')
    .passThroughOptions()
    .option('-e, --env <key=value>', 'set an environment variable (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory inside')
    .option('-u, --user <uid[:gid]>', 'user and group inside')
    .option('-t, --tty', 'give the command a terminal')
    .option('-i, --interactive', 'keep stdin open (it always is)')
    .action(
      async (
        id: string,
        command: string[],
        o: { env?: string[]; workdir?: string; user?: string; tty?: boolean },
        cmd: Command,
      ) => {
        const container = get(id, root(cmd))
        process.exitCode = await runForwarding(() =>
          container.exec({
            command: command[0] === '--' ? command.slice(1) : command,
            ...(o.env ? { env: o.env.map((e) => (e.includes('=') ? e : `${e}=${process.env[e] ?? ''}`)) } : {}),
            ...(o.workdir ? { cwd: o.workdir } : {}),
            ...(o.user ? { user: o.user } : {}),
            ...(o.tty ? { tty: true } : {}),
            stdin: 'inherit',
            stdout: 'inherit',
            stderr: 'inherit',
          }),
        )
      },
    )

  cli
    .command('start')
    .description('start created containers')
    .argument('<id...>')
    .action(async (ids: string[], _o: unknown, cmd: Command) => {
      process.exitCode = await eachId(ids, cmd, (c) => c.start())
    })

  cli
    .command('ps')
    .alias('ls')
    .description('list containers (running ones; -a for all)')
    .option('-a, --all', 'show stopped and created containers too')
    .option('-q, --quiet', 'only ids')
    .addOption(new Option('--format <format>', 'table or json').choices(['table', 'json']).default('table'))
    .action((o: { all?: boolean; quiet?: boolean; format: string }, cmd: Command) => {
      const all = list(root(cmd)).filter((s) => o.all || s.status === 'running')
      if (o.quiet) process.stdout.write(all.map((s) => `${s.id}\n`).join(''))
      else if (o.format === 'json') process.stdout.write(`${JSON.stringify(all)}\n`)
      else {
        const rows = [['ID', 'STATUS', 'PID', 'CREATED', 'COMMAND']]
        for (const s of all) {
          let command = ''
          try {
            command = (get(s.id, root(cmd)).inspect().config?.process.args ?? []).join(' ')
          } catch {
            command = ''
          }
          rows.push([s.id, statusText(s), String(s.pid ?? '-'), shortTime(s.created), command])
        }
        process.stdout.write(table(rows))
      }
    })

  cli
    .command('logs')
    .description("print a container's output")
    .argument('<id>')
    .option('-f, --follow', 'keep printing what it writes until it ends')
    .option('--tail <n>', 'only the last N lines')
    .option('--since <time>', 'only lines written since this time (ISO 8601, or seconds ago like 10s, 5m)')
    .option('-t, --timestamps', 'prefix each line with its time')
    .action(
      async (
        id: string,
        o: { follow?: boolean; tail?: string; since?: string; timestamps?: boolean },
        cmd: Command,
      ) => {
        const c = get(id, root(cmd))
        const opts: { tail?: number; since?: Date } = {}
        if (o.tail !== undefined) {
          const n = Number(o.tail)
          if (!Number.isInteger(n) || n < 0) throw NsError.invalid('--tail', 'must be a whole number')
          opts.tail = n
        }
        if (o.since !== undefined) {
          const rel = /^(\d+)([smh])$/.exec(o.since)
          const t = rel
            ? new Date(Date.now() - Number(rel[1]) * { s: 1e3, m: 6e4, h: 3.6e6 }[rel[2] as 's' | 'm' | 'h'])
            : new Date(o.since)
          if (Number.isNaN(t.getTime()))
            throw NsError.invalid('--since', 'must be a time (ISO 8601) or a duration like 10s')
          opts.since = t
        }
        const print = (e: { time: string; stream: string; log: string }) =>
          (e.stream === 'stderr' ? process.stderr : process.stdout).write(o.timestamps ? `${e.time} ${e.log}` : e.log)
        if (o.follow) for await (const e of c.follow(opts)) print(e)
        else for (const e of c.logs(opts)) print(e)
      },
    )

  cli
    .command('stop')
    .description('stop containers: SIGTERM, then SIGKILL after a grace period')
    .argument('<id...>')
    .option('-t, --time <seconds>', 'seconds to wait before SIGKILL', '10')
    .action(async (ids: string[], o: { time: string }, cmd: Command) => {
      const t = Number(o.time)
      if (!Number.isFinite(t) || t < 0) throw NsError.invalid('--time', 'must be a number of seconds')
      process.exitCode = await eachId(ids, cmd, async (c) => {
        await c.stop(t * 1000)
        process.stdout.write(`${c.id}\n`)
      })
    })

  cli
    .command('kill')
    .description('send a signal to containers')
    .argument('<id...>')
    .option('-s, --signal <signal>', 'signal name or number', 'SIGKILL')
    .option('-a, --all', 'to every process in the container, not only the first')
    .action(async (ids: string[], o: { signal: string; all?: boolean }, cmd: Command) => {
      process.exitCode = await eachId(ids, cmd, (c) => c.kill(o.signal as NodeJS.Signals, { all: o.all ?? false }))
    })

  cli
    .command('rm')
    .description('remove containers and everything they took')
    .argument('<id...>')
    .option('-f, --force', 'kill running ones first')
    .action(async (ids: string[], o: { force?: boolean }, cmd: Command) => {
      process.exitCode = await eachId(ids, cmd, async (c) => {
        await c.delete({ force: o.force ?? false })
        process.stdout.write(`${c.id}\n`)
      })
    })

  cli
    .command('attach')
    .description('attach your terminal to a container made with -t; ctrl-p ctrl-q detaches and leaves it running')
    .argument('<id>')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      process.exitCode = await attachCommand(get(id, root(cmd)))
    })

  cli
    .command('wait')
    .description('wait for containers to end; print their exit codes')
    .argument('<id...>')
    .action(async (ids: string[], _o: unknown, cmd: Command) => {
      process.exitCode = await eachId(ids, cmd, async (c) => {
        const e = await c.wait()
        process.stdout.write(`${e.exitCode ?? 128 + (e.signal ?? 0)}\n`)
      })
    })

  cli
    .command('inspect')
    .description("config, state, namespaces (inode ids against the host's), processes and mounts, as JSON")
    .argument('<id...>')
    .action(async (ids: string[], _o: unknown, cmd: Command) => {
      const out: unknown[] = []
      process.exitCode = await eachId(ids, cmd, (c) => void out.push(c.inspect()))
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
    })

  cli
    .command('serve')
    .description('serve the HTTP API: on a unix socket (mode 0660), or on TCP with --listen behind a bearer token')
    .option('--socket <path>', `unix socket to listen on (default: ${defaultSocketPath()})`)
    .option(
      '--listen <host:port>',
      'listen on TCP instead; needs a bearer token: --token, $NS_TOKEN, or one is generated and printed',
    )
    .option('--token <token>', 'bearer token clients must send (Authorization: Bearer <token>)')
    .option(
      '--allow-bind <dir>',
      'allow bind mounts and root filesystems under this directory, symlinks resolved (repeatable)',
      collect,
    )
    .option(
      '--allow-privileged',
      "allow host namespaces, maps of the host's root, / as root, specs without a user namespace, hooks",
    )
    .option('--root <dir>', 'state directory of containers (as ns --root)')
    .action((o: ServeFlags, cmd: Command) => serveCommand(o, cmd))

  cli
    .command('info')
    .description('what this host allows: user namespaces, cgroup layout')
    .action(() => {
      const h = hostInfo()
      process.stdout.write(`${JSON.stringify(h, null, 2)}\n`)
    })
  return cli
}

interface ServeFlags {
  socket?: string
  listen?: string
  token?: string
  allowBind?: string[]
  allowPrivileged?: boolean
}

/** One line per request: plain text for a person at a terminal, JSON lines for anything else. */
function requestLogger(): (e: RequestLog) => void {
  if (process.stdout.isTTY)
    return (e) => process.stdout.write(`${e.time} ${e.method} ${e.path} ${e.status} ${e.ms}ms\n`)
  return (e) => process.stdout.write(`${JSON.stringify(e)}\n`)
}

/** `ns serve`: the HTTP API until SIGTERM or SIGINT; then the server closes and its socket goes. */
async function serveCommand(o: ServeFlags, cmd: Command): Promise<void> {
  // Over TCP a token is a must: the one given, $NS_TOKEN (kept out of `ps`), or a fresh one shown once.
  let token = o.token ?? (o.listen !== undefined ? process.env.NS_TOKEN : undefined)
  let generated = false
  if (o.listen !== undefined && !token) {
    token = generateToken()
    generated = true
  }
  const server = await serve({
    root: root(cmd),
    ...(o.socket !== undefined ? { socket: o.socket } : {}),
    ...(o.listen !== undefined ? { listen: o.listen } : {}),
    ...(token !== undefined ? { token } : {}),
    allowBind: o.allowBind ?? [],
    allowPrivileged: o.allowPrivileged ?? false,
    onRequest: requestLogger(),
  })
  process.stderr.write(`ns serve: listening on ${server.url} (state root ${root(cmd)})\n`)
  if (generated) process.stderr.write(`ns serve: bearer token: ${token}\n`)
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      resolve()
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
  await server.close()
  process.stderr.write('ns serve: closed\n')
}

/** Entry point; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  process.exitCode = 0
  try {
    await program().parseAsync(argv)
    return Number(process.exitCode ?? 0)
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 125
    return report(e)
  }
}
