// The flags of `ns run` and `ns create`, each declared once with where its value goes in the
// @ns/core options; `runOptionsFromFlags` is the whole mapping, pure (the environment and the
// terminal are given to it), unit-tested beside it.
import { NsError, namespaceNames, type NamespaceName, type RunOptions } from '@ns/core'

import { envFromFlags } from '../env.js'
import { applyFlags, bool, list, value, type FlagTable, type FlagValues } from '../flags.js'

/** What the mapping reads besides the flags: the caller's environment and whether stdout is a terminal. */
export interface RunContext {
  env: Readonly<Record<string, string | undefined>>
  stdoutIsTTY: boolean
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** The options being built, and what `run`/`create` need besides them. */
export interface RunDraft {
  options: Mutable<Omit<RunOptions, 'command'>>
  name?: string
  remove?: boolean
  detach?: boolean
  timeoutSeconds?: string
  ctx: RunContext
}

/** What the flags of a run ask for. */
export interface RunRequest {
  options: RunOptions
  /** The container's id (`--name`), for a detached one. */
  name?: string
  /** `--rm`: remove a detached container once it has ended. */
  remove?: boolean
  detach: boolean
}

/** A decimal number (`0.5`, `100`), or an error naming the flag. */
export function decimal(flag: string, v: string): number {
  if (!/^-?(\d+(\.\d*)?|\.\d+)$/.test(v.trim())) throw NsError.invalid(flag, `${JSON.stringify(v)} is not a number`)
  return Number(v)
}

function idMaps(flag: string, values: string[]): NonNullable<RunOptions['uidMappings']> {
  return values.map((v) => {
    const m = /^(\d+):(\d+):(\d+)$/.exec(v)
    if (!m) throw NsError.invalid(flag, `${JSON.stringify(v)} must be CONTAINER:HOST:SIZE`)
    return { containerID: Number(m[1]), hostID: Number(m[2]), size: Number(m[3]) }
  })
}

const flag = { bool: bool<RunDraft>, value: value<RunDraft>, list: list<RunDraft> }

/** The flags `ns run` and `ns create` share. */
export const containerFlags = {
  tty: flag.bool('-t, --tty', 'give the command a terminal (yours is relayed to it, in raw mode)', {
    field: 'tty',
    apply: (v, d) => {
      if (v) d.options.tty = true
    },
  }),
  interactive: flag.bool('-i, --interactive', 'keep stdin open (it always is in the foreground)'),
  name: flag.value('--name <name>', "the container's id, for -d (default: 12 random hex digits)", {
    field: 'name',
    apply: (v, d) => {
      d.name = v
    },
  }),
  rm: flag.bool('--rm', 'remove the container once it has ended (a foreground one always is)', {
    apply: (v, d) => {
      if (v) d.remove = true
    },
  }),
  rootfs: flag.value(
    '--rootfs <dir>',
    "root filesystem directory (default: a read-only sandbox of the host's own files)",
    {
      field: 'rootfs',
      apply: (v, d) => {
        d.options.rootfs = v
      },
    },
  ),
  pull: flag.value('--pull <policy>', 'with an image: missing (pull it when the store lacks it), always, never', {
    field: 'pull',
    choices: ['missing', 'always', 'never'],
    apply: (v, d) => {
      d.options.pull = v as 'missing'
    },
  }),
  platform: flag.value('--platform <os/arch[/variant]>', "with an image: the image's platform (default: this host's)", {
    field: 'platform',
    apply: (v, d) => {
      d.options.platform = v
    },
  }),
  entrypoint: flag.value(
    '--entrypoint <program>',
    "with an image: in place of its Entrypoint ('' for none; its Cmd goes too)",
    {
      field: 'entrypoint',
      apply: (v, d) => {
        d.options.entrypoint = v === '' ? [] : [v]
      },
    },
  ),
  hostname: flag.value('--hostname <name>', 'hostname inside (default: the container id)', {
    field: 'hostname',
    apply: (v, d) => {
      d.options.hostname = v
    },
  }),
  volume: flag.list(
    '-v, --volume <src:dst[:opts]>',
    'bind mount a host path; opts: ro, idmap (owners seen through the id maps)',
    {
      field: 'volumes',
      apply: (v, d) => {
        d.options.volumes = v
      },
    },
  ),
  tmpfs: flag.list('--tmpfs <dst>', 'mount a tmpfs', {
    field: 'mounts',
    apply: (v, d) => {
      d.options.mounts = v.map((target) => ({ type: 'tmpfs' as const, target }))
    },
  }),
  env: flag.list('-e, --env <key[=value]>', 'set an environment variable; KEY alone passes on yours, if set', {
    field: 'env',
    apply: (v, d) => {
      d.options.env = envFromFlags(v, d.ctx.env)
    },
  }),
  workdir: flag.value('-w, --workdir <dir>', 'working directory inside', {
    field: 'cwd',
    apply: (v, d) => {
      d.options.cwd = v
    },
  }),
  user: flag.value('-u, --user <uid[:gid]>', 'user and group inside', {
    field: ['user', 'process.user'],
    apply: (v, d) => {
      d.options.user = v
    },
  }),
  readOnly: flag.bool('--read-only', 'make the root filesystem read-only', {
    negate: 'make the sandbox root writable (a tmpfs)',
    apply: (v, d) => {
      d.options.readOnly = v
    },
  }),
  init: flag.bool('--no-init', 'run the command itself as PID 1 (no init to forward signals and reap)', {
    apply: (v, d) => {
      d.options.init = v
    },
  }),
  net: flag.value('--net <mode>', 'network: none (a new namespace with only lo), host, or a namespace path', {
    default: 'none',
    field: 'namespaces.network',
    apply: (v, d) => {
      if (v === 'none') return
      d.options.namespaces = { ...d.options.namespaces, network: v === 'host' ? false : v }
    },
  }),
  share: flag.list(
    '--share <namespace>',
    `share a namespace with the host instead of a new one: ${namespaceNames.join(', ')}`,
    {
      field: 'namespaces',
      apply: (v, d) => {
        const namespaces = { ...d.options.namespaces }
        for (const s of v) {
          if (!(namespaceNames as readonly string[]).includes(s)) {
            throw NsError.invalid(
              '--share',
              `unknown namespace ${JSON.stringify(s)} (one of ${namespaceNames.join(', ')})`,
            )
          }
          namespaces[s as NamespaceName] = false
        }
        d.options.namespaces = namespaces
      },
    },
  ),
  memory: flag.value('-m, --memory <size>', 'memory limit (64m, 1g)', {
    field: 'memory',
    apply: (v, d) => {
      d.options.memory = v
    },
  }),
  memorySwap: flag.value('--memory-swap <size>', 'memory plus swap limit (-1: unlimited swap)', {
    field: 'memorySwap',
    apply: (v, d) => {
      d.options.memorySwap = v === '-1' ? -1 : v
    },
  }),
  pidsLimit: flag.value('--pids-limit <n>', 'at most this many processes', {
    field: 'pidsLimit',
    apply: (v, d) => {
      d.options.pidsLimit = decimal('--pids-limit', v)
    },
  }),
  cpus: flag.value('--cpus <n>', 'CPU time as a number of CPUs (0.5)', {
    field: 'cpus',
    apply: (v, d) => {
      d.options.cpus = decimal('--cpus', v)
    },
  }),
  cpuShares: flag.value('--cpu-shares <n>', 'relative CPU weight', {
    field: 'cpuShares',
    apply: (v, d) => {
      d.options.cpuShares = decimal('--cpu-shares', v)
    },
  }),
  cpusetCpus: flag.value('--cpuset-cpus <list>', 'CPUs it may run on (0-1,3)', {
    field: 'cpusetCpus',
    apply: (v, d) => {
      d.options.cpusetCpus = v
    },
  }),
  blkioWeight: flag.value('--blkio-weight <n>', 'relative block I/O weight, 10 to 1000', {
    field: 'blkioWeight',
    apply: (v, d) => {
      d.options.blkioWeight = decimal('--blkio-weight', v)
    },
  }),
  bestEffortLimits: flag.bool(
    '--best-effort-limits',
    'run without the limits that cannot be applied here (with a warning) instead of failing',
    {
      apply: (v, d) => {
        if (v) d.options.bestEffortLimits = true
      },
    },
  ),
  capAdd: flag.list('--cap-add <cap>', 'add a capability to the default set (CAP_SYS_ADMIN, SYS_ADMIN or ALL)', {
    field: 'capAdd',
    apply: (v, d) => {
      d.options.capAdd = v
    },
  }),
  capDrop: flag.list('--cap-drop <cap>', 'drop a capability from the default set (or ALL)', {
    field: 'capDrop',
    apply: (v, d) => {
      d.options.capDrop = v
    },
  }),
  userns: flag.value(
    '--userns <mode>',
    "auto (root's default: a range of host ids of its own, root inside is nobody outside) or host (no user namespace)",
    {
      field: 'userns',
      apply: (v, d) => {
        d.options.userns = v as RunOptions['userns']
      },
    },
  ),
  uidmap: flag.list('--uidmap <c:h:n>', 'uid range of the user namespace', {
    field: 'uidMappings',
    apply: (v, d) => {
      d.options.uidMappings = idMaps('--uidmap', v)
    },
  }),
  gidmap: flag.list('--gidmap <c:h:n>', 'gid range of the user namespace', {
    field: 'gidMappings',
    apply: (v, d) => {
      d.options.gidMappings = idMaps('--gidmap', v)
    },
  }),
  timeOffset: flag.list(
    '--time-offset <clock=secs>',
    'a new time namespace with this clock offset: monotonic= or boottime=',
    {
      field: 'timeOffsets',
      apply: (v, d) => {
        const offsets: Record<string, number> = {}
        for (const t of v) {
          const m = /^(monotonic|boottime)=(-?\d+)$/.exec(t)
          if (!m)
            throw NsError.invalid('--time-offset', `${JSON.stringify(t)} must be monotonic=SECONDS or boottime=SECONDS`)
          offsets[m[1]!] = Number(m[2])
        }
        d.options.timeOffsets = offsets
      },
    },
  ),
} satisfies FlagTable<RunDraft>

/** The flags only `ns run` has. */
export const runOnlyFlags = {
  detach: flag.bool('-d, --detach', 'run in the background; print the container id', {
    apply: (v, d) => {
      if (v) d.detach = true
    },
  }),
  timeout: flag.value('--timeout <seconds>', 'kill the container after this many seconds (foreground only)', {
    field: 'timeout',
    apply: (v, d) => {
      const s = decimal('--timeout', v)
      if (!(s > 0)) throw NsError.invalid('--timeout', 'must be a positive number of seconds')
      d.options.timeout = Math.max(1, Math.round(s * 1000))
      d.timeoutSeconds = v
    },
  }),
} satisfies FlagTable<RunDraft>

export const runFlags = { ...containerFlags, ...runOnlyFlags }
export type RunFlags = FlagValues<typeof runFlags>

/**
 * The image and the command of `ns run`'s operands: `IMAGE [CMD...]` (a `--` after the image is
 * dropped), or after a `--` with nothing but options before it, a command of the default sandbox.
 */
export function imageAndCommand(operands: readonly string[], dashDash: boolean): { image?: string; command: string[] } {
  if (dashDash || operands.length === 0) return { command: [...operands] }
  const [image, ...rest] = operands
  return { image: image!, command: rest[0] === '--' ? rest.slice(1) : rest }
}

/** The caller's environment and terminal, as `runOptionsFromFlags` reads them. */
export function processContext(): RunContext {
  return { env: process.env, stdoutIsTTY: process.stdout.isTTY === true }
}

/**
 * Turn `ns run` flags (`ns create`'s with `detach: true`) into @ns/core options. Bad values are NsErrors naming the
 * flag; what @ns/core itself refuses is named after the flag by `asFlagError`.
 */
export function runOptionsFromFlags(
  command: string[],
  flags: RunFlags,
  ctx: RunContext = processContext(),
  image?: string,
): RunRequest {
  const d = applyFlags<RunDraft>(runFlags, flags, { options: {}, ctx })
  // A terminal of ours: the container is told what kind it is.
  if (ctx.env.TERM && ctx.stdoutIsTTY)
    d.options.env = [`TERM=${ctx.env.TERM}`, ...((d.options.env as string[] | undefined) ?? [])]
  if (d.detach && d.options.timeout !== undefined) throw NsError.invalid('--timeout', 'applies to foreground runs only')
  if (!d.detach && d.name !== undefined) throw NsError.invalid('--name', 'names containers that run detached (-d)')
  if (image === undefined) {
    for (const [f, v] of [
      ['--pull', d.options.pull],
      ['--platform', d.options.platform],
      ['--entrypoint', d.options.entrypoint],
    ] as const)
      if (v !== undefined) throw NsError.invalid(f, 'applies to a run of an image (ns run IMAGE)')
  }
  if (image !== undefined && d.options.rootfs !== undefined)
    throw NsError.invalid('--rootfs', 'is the root in place of an image: give one or the other')
  return {
    options: {
      ...(image !== undefined ? { image } : {}),
      // With an image the command may be left out: the image's Entrypoint and Cmd are run.
      ...(image === undefined || command.length > 0 ? { command } : {}),
      ...d.options,
    },
    ...(d.name !== undefined ? { name: d.name } : {}),
    ...(d.remove ? { remove: true } : {}),
    detach: d.detach ?? false,
  }
}
