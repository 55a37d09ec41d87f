// `ns`: the command line for people. Flags are parsed here and become @ns/core options.
import { Command, CommanderError, Option } from 'commander'

import { NsError, hostInfo, namespaceNames, spawn, type RunOptions } from '@ns/core'

const collect = (v: string, prev: string[] = []) => [...prev, v]

function idMap(flag: string) {
  return (v: string, prev: RunOptions['uidMappings'] = []) => {
    const m = /^(\d+):(\d+):(\d+)$/.exec(v)
    if (!m) throw new NsError({ code: 'EINVAL', field: flag, message: `${flag}: ${JSON.stringify(v)} must be CONTAINER:HOST:SIZE` })
    return [...(prev ?? []), { containerID: Number(m[1]), hostID: Number(m[2]), size: Number(m[3]) }]
  }
}

interface RunFlags {
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
  uidmap?: RunOptions['uidMappings']
  gidmap?: RunOptions['gidMappings']
  timeOffset?: string[]
  timeout?: string
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
    if (!Number.isFinite(timeout) || timeout <= 0) throw NsError.invalid('--timeout', 'must be a positive number of seconds')
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
    ...(f.uidmap ? { uidMappings: f.uidmap } : {}),
    ...(f.gidmap ? { gidMappings: f.gidmap } : {}),
    ...(Object.keys(timeOffsets).length ? { timeOffsets } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
  }
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
  const c = spawn({ ...runOptionsFromFlags(command, flags), stdin: 'inherit', stdout: 'inherit', stderr: 'inherit' })
  // Signals for us are for the container: pass them on and wait for it to end.
  const forward = (sig: NodeJS.Signals) => void c.kill(sig)
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH']
  for (const s of signals) process.on(s, forward)
  try {
    const r = await c.exited
    if (r.timedOut) process.stderr.write(`ns: timed out after ${flags.timeout}s; killed\n`)
    return r.exitCode
  } finally {
    for (const s of signals) process.off(s, forward)
  }
}

export function program(): Command {
  const cli = new Command('ns')
    .description('Run processes isolated by Linux namespaces.')
    .version(hostInfo().version, '-V, --version')
    .enablePositionalOptions()
    .exitOverride()

  cli
    .command('run')
    .description('run a command isolated in new namespaces (default: a read-only sandbox of the host\'s files)')
    .argument('<command...>', 'the program and its arguments (put them after --)')
    .passThroughOptions()
    .option('--rootfs <dir>', 'root filesystem directory (default: a read-only sandbox of the host\'s own files)')
    .option('--hostname <name>', 'hostname inside (default: the container id)')
    .option('-v, --volume <src:dst[:ro]>', 'bind mount a host path (repeatable)', collect)
    .option('--tmpfs <dst>', 'mount a tmpfs (repeatable)', collect)
    .option('-e, --env <key=value>', 'set an environment variable (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory inside')
    .option('-u, --user <uid[:gid]>', 'user and group inside')
    .option('--read-only', 'make the root filesystem read-only')
    .option('--no-read-only', 'make the sandbox root writable (a tmpfs)')
    .option('--no-init', 'run the command itself as PID 1 (no init to forward signals and reap)')
    .addOption(new Option('--net <mode>', 'network: none (a new namespace with only lo), host, or a namespace path').default('none'))
    .option('--share <namespace>', `share a namespace with the host instead of a new one: ${namespaceNames.join(', ')} (repeatable)`, collect)
    .option('--uidmap <c:h:n>', 'uid range of the user namespace (repeatable)', idMap('--uidmap'))
    .option('--gidmap <c:h:n>', 'gid range of the user namespace (repeatable)', idMap('--gidmap'))
    .option('--time-offset <clock=secs>', 'a new time namespace with this clock offset: monotonic= or boottime= (repeatable)', collect)
    .option('--timeout <seconds>', 'kill the container after this many seconds')
    .action(async (command: string[], flags: RunFlags) => {
      process.exitCode = await runCommand(command[0] === '--' ? command.slice(1) : command, flags)
    })

  cli
    .command('info')
    .description('what this host allows: user namespaces, cgroup layout')
    .action(() => {
      const h = hostInfo()
      process.stdout.write(`${JSON.stringify(h, null, 2)}\n`)
    })
  return cli
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
