// Containers that live on their own: created and started here, watched by a native monitor
// that keeps their log and exit status, so both survive this process.
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs'
import { join } from 'node:path'

import native from '@ns/native'

import { attachTo, type Attachment } from './attach.js'
import { envList, makeSpec, newContainerId, optionError, parseUser, resourcesOf } from './build.js'
import { collect, Container, launchHelper, type RunResult } from './container.js'
import { NsError } from './errors.js'
import { attachmentsOf } from './networks/index.js'
import { stateFiles, type ContainerStatus, type SetupErrorJson } from './generated/facts.js'

// Validated without zod (check.ts): the same rules as options.ts and spec.ts, loaded faster.
import {
  checkExecOptions,
  checkRunOptions as parseRunOptions,
  checkSpec as validateSpec,
  type execOptionKeys,
} from './check.js'
import type { RunOptions } from './options.js'
import type { OciSpec } from './spec.js'

export interface ExitRecord {
  exitCode: number | null
  signal: number | null
  finished: string
  /** The kernel's OOM killer ended it. */
  oomKilled?: boolean
}

/** One-shot figures from the container's cgroup. */
export interface Stats {
  memoryBytes?: number
  memoryPeakBytes?: number
  memoryLimitBytes?: number
  cpuUsageNs?: number
  pids?: number
  pidsLimit?: number
  oomKilled: boolean
}

export interface ContainerState {
  ociVersion: string
  id: string
  status: ContainerStatus
  pid?: number
  bundle: string
  annotations: Record<string, string>
  created: string
  owner: string
  exit?: ExitRecord
  /** Stopped without an exit record that will ever come (its monitor was killed): why. */
  exitUnknown?: string
}

export interface LogEntry {
  time: string
  stream: 'stdout' | 'stderr'
  log: string
}

/** What `exec` takes: these of the run options (`command`, `env`, `cwd`, `user`, stdio, ...). */
export type ExecOptions = Pick<RunOptions, (typeof execOptionKeys)[number]> & { command: string[] }

export interface DetachedOptions extends Omit<
  RunOptions,
  'stdin' | 'stdout' | 'stderr' | 'input' | 'timeout' | 'signal'
> {
  /** The container's id (default: 12 random hex digits). */
  name?: string
  /** The state root (default: /run/ns for root, $XDG_RUNTIME_DIR/ns otherwise). */
  root?: string
  /** Remove the container once it has ended (`--rm`). */
  remove?: boolean
}

/** Call into the addon, turning its errors (a SetupError as JSON) into NsError. */
function call<T>(f: () => T): T {
  try {
    return f()
  } catch (e) {
    throw toNsError(e)
  }
}

function toNsError(e: unknown): NsError {
  const msg = (e as Error)?.message ?? String(e)
  try {
    const j = JSON.parse(msg) as {
      code: string
      message: string
      step?: string
      path?: string
      errno?: number
      hint?: string
    }
    return new NsError(j)
  } catch {
    return new NsError({ code: 'EIO', message: msg })
  }
}

export function defaultRoot(): string {
  return native.defaultStateRoot()
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A container in the state directory: a handle by id, valid in any process. */
/** The run options `update` changes in a living container. */
export const updatableLimits = [
  'memory',
  'memoryReservation',
  'memorySwap',
  'cpus',
  'cpuShares',
  'cpusetCpus',
  'pidsLimit',
  'blkioWeight',
] as const

/** New limits for `DetachedContainer.update`. */
export type LimitOptions = Pick<RunOptions, (typeof updatableLimits)[number]>

/**
 * The `linux.resources` that new limits stand for, checked as `run` checks them (errors name the
 * option); an option `update` cannot change, or none at all, is an error.
 */
export function limitResources(limits: LimitOptions) {
  for (const k of Object.keys(limits)) {
    if (!(updatableLimits as readonly string[]).includes(k))
      throw NsError.invalid(k, `cannot be updated (only ${updatableLimits.join(', ')})`)
  }
  const resources = resourcesOf(parseRunOptions({ command: ['true'], ...limits }))
  if (!resources) throw NsError.invalid('limits', `give at least one of ${updatableLimits.join(', ')}`)
  return resources
}

export class DetachedContainer {
  readonly id: string
  readonly root: string
  /** From its creation by this handle: what was asked for and not done (best-effort limits). */
  readonly warnings: string[] = []

  constructor(id: string, root = defaultRoot()) {
    this.id = id
    this.root = root
  }

  get dir(): string {
    return join(this.root, this.id)
  }

  state(): ContainerState {
    return JSON.parse(call(() => native.containerState(this.root, this.id))) as ContainerState
  }

  /** Memory, cpu and pids figures read straight from its cgroup (cheap enough to poll). */
  stats(): Stats {
    return JSON.parse(call(() => native.containerStats(this.root, this.id))) as Stats
  }

  /** Release a created container: its command runs. */
  async start(): Promise<void> {
    await native.containerStart(this.root, this.id).catch((e: unknown) => {
      throw toNsError(e)
    })
  }

  /**
   * Connect to its terminal (a container created with `tty: true`): its output as it comes,
   * and keys and window sizes to it. Any number may be attached at once; detaching leaves the
   * container running.
   */
  async attach(): Promise<Attachment> {
    const config = this.#config()
    const s = this.state()
    if (config?.process?.terminal !== true) {
      throw new NsError({
        code: 'ESTATE',
        step: 'attach',
        message: `container "${this.id}" has no terminal (create it with tty: true); read its logs instead`,
      })
    }
    if (s.status === 'stopped')
      throw new NsError({ code: 'ESTATE', step: 'attach', message: `container "${this.id}" has stopped` })
    return attachTo(this.dir, this.id)
  }

  /**
   * Freeze every process in it (its cgroup's freezer: a container with limits has one); its
   * status is `paused` until `resume`. Resolves once the kernel says it is frozen.
   */
  async pause(): Promise<void> {
    await native.containerPause(this.root, this.id).catch((e: unknown) => {
      throw toNsError(e)
    })
  }

  /** Thaw a paused container: its processes go on where they were. */
  async resume(): Promise<void> {
    await native.containerResume(this.root, this.id).catch((e: unknown) => {
      throw toNsError(e)
    })
  }

  /**
   * Change the limits of a living container (its cgroup: a container with limits has one). Only
   * the limits given are written; its config keeps them. Values are checked as `run` checks them.
   */
  async update(limits: LimitOptions): Promise<void> {
    const resources = limitResources(limits)
    await native.containerUpdate(this.root, this.id, JSON.stringify(resources)).catch((e: unknown) => {
      throw toNsError(e)
    })
  }

  /** Send a signal to its first process, or with `all` to every process in it. */
  kill(signal: NodeJS.Signals | number = 'SIGTERM', opts: { all?: boolean } = {}): void {
    call(() => native.containerKill(this.root, this.id, String(signal), opts.all ?? false))
  }

  /** Wait until it has ended, and return how (as the monitor recorded it). */
  async wait(opts: { pollMs?: number } = {}): Promise<ExitRecord> {
    const poll = opts.pollMs ?? 20
    for (;;) {
      const s = this.state()
      if (s.status === 'stopped') {
        if (s.exit) return s.exit
        // The monitor writes the exit record right after the process is reaped: a moment, or
        // longer on a loaded machine (up to 5 s, whatever the polling interval). A monitor that
        // is gone writes nothing: the status is unknown, and is not made up.
        let unknown = s.exitUnknown
        for (const deadline = Date.now() + 5000; !unknown && Date.now() < deadline;) {
          await sleep(poll)
          const again = this.#exit()
          if (again) return again
          unknown = this.state().exitUnknown
        }
        const last = this.#exit()
        if (last) return last
        throw new NsError({
          code: 'EUNKNOWN',
          step: 'wait',
          message: `container "${this.id}" has stopped, but ${unknown ?? 'no exit status was recorded within 5s'}`,
        })
      }
      await sleep(poll)
    }
  }

  #exit(): ExitRecord | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dir, stateFiles.exit), 'utf8')) as ExitRecord
    } catch {
      return undefined
    }
  }

  /** SIGTERM, then SIGKILL to every process after `timeoutMs` (default 10 s). */
  async stop(timeoutMs = 10_000): Promise<ExitRecord> {
    const s = this.state()
    if (s.status === 'stopped') return this.wait()
    this.kill('SIGTERM')
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (this.state().status === 'stopped') return this.wait()
      await sleep(20)
    }
    try {
      this.kill('SIGKILL', { all: true })
    } catch (e) {
      if ((e as NsError).code !== 'ESRCH') throw e
    }
    return this.wait()
  }

  /** Remove it and everything it took; `force` kills a running one first. */
  async delete(opts: { force?: boolean } = {}): Promise<void> {
    await native.containerDelete(this.root, this.id, opts.force ?? false).catch((e: unknown) => {
      throw toNsError(e)
    })
  }

  /** Its log: every line it wrote, with the time and the stream. */
  logs(opts: { tail?: number; since?: string | Date } = {}): LogEntry[] {
    let entries: LogEntry[] = []
    try {
      entries = parseLog(readFileSync(join(this.dir, stateFiles.log)))
    } catch {
      return []
    }
    if (opts.since !== undefined) {
      const t = new Date(opts.since).getTime()
      entries = entries.filter((e) => new Date(e.time).getTime() >= t)
    }
    if (opts.tail !== undefined) entries = opts.tail === 0 ? [] : entries.slice(-opts.tail)
    return entries
  }

  /** Its log, then what it writes next, until it ends. */
  async *follow(opts: { tail?: number; since?: string | Date; pollMs?: number } = {}): AsyncGenerator<LogEntry> {
    const file = join(this.dir, stateFiles.log)
    yield* this.logs(opts)
    let shown = this.logs().length
    for (;;) {
      const stopped = this.state().status === 'stopped'
      const all = existsSync(file) && statSync(file).size > 0 ? this.logs() : []
      for (const e of all.slice(shown)) yield e
      shown = all.length
      if (stopped) return
      await sleep(opts.pollMs ?? 50)
    }
  }

  /**
   * Start another process in the running container: it joins all its namespaces, with the
   * container's environment, working directory and user unless given here.
   */
  exec(opts: ExecOptions): Container {
    const o = checkExecOptions(opts)
    const config = this.#config()
    const base = config?.process
    const user = o.user === undefined ? (base?.user ?? { uid: 0, gid: 0 }) : parseUser(o.user)
    const env = new Map<string, string>()
    for (const e of [...(base?.env ?? []), ...envList(o.env)]) env.set(e.slice(0, e.indexOf('=')), e)
    const process = {
      terminal: o.tty ?? false,
      user,
      args: o.command,
      env: [...env.values()],
      cwd: o.cwd ?? base?.cwd ?? '/',
      noNewPrivileges: base?.noNewPrivileges ?? true,
      // Another user than root has the container's capabilities as a bound only, not in effect.
      ...(base?.capabilities
        ? {
            capabilities:
              user.uid === 0
                ? base.capabilities
                : { ...base.capabilities, effective: [], permitted: [], inheritable: [], ambient: [] },
          }
        : {}),
    }
    const spec = config ?? ({ ociVersion: '1.2.0', process } as unknown as OciSpec)
    return new Container(spec, {
      id: this.id,
      request: { exec: { id: this.id, root: this.root, process }, dieWithParent: true },
      stdin: o.stdin,
      stdout: o.stdout,
      stderr: o.stderr,
      timeout: o.timeout,
      signal: o.signal,
    })
  }

  /** Run a process in the container to completion and capture its output. */
  async execRun(opts: ExecOptions): Promise<RunResult> {
    const c = this.exec({ ...opts, stdin: opts.stdin ?? (opts.input !== undefined ? 'pipe' : 'ignore') })
    if (c.stdin) c.stdin.end(opts.input ?? '')
    const [stdout, stderr, result] = await Promise.all([collect(c.stdout), collect(c.stderr), c.exited])
    return { ...result, stdout, stderr, warnings: c.warnings }
  }

  #config(): OciSpec | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dir, stateFiles.config), 'utf8')) as OciSpec
    } catch {
      return undefined
    }
  }

  /** Config, state, and how its namespaces, processes and mounts look from the host. */
  inspect() {
    const state = this.state()
    const config = this.#config()
    const namespaces: Record<string, { container: string; host: string; shared: boolean }> = {}
    let mounts: string[] = []
    const pids: number[] = []
    if (state.pid && state.status !== 'stopped') {
      // An init's /proc files are readable only with CAP_SYS_PTRACE over the host (it is
      // undumpable, and was not executed inside): without it, its oldest child's.
      const anchor = namespaceAnchor(state.pid)
      for (const n of ['user', 'pid', 'mnt', 'net', 'uts', 'ipc', 'cgroup', 'time']) {
        try {
          const container = readlinkSync(`/proc/${anchor}/ns/${n}`)
          const host = readlinkSync(`/proc/self/ns/${n}`)
          namespaces[n] = { container, host, shared: container === host }
        } catch {
          // not readable by us
        }
      }
      try {
        mounts = readFileSync(`/proc/${state.pid}/mountinfo`, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(' ')[4]!)
      } catch {
        mounts = []
      }
      const pidNs = namespaces.pid?.container
      if (pidNs && !namespaces.pid?.shared) {
        pids.push(state.pid)
        for (const d of readdirNumbers('/proc')) {
          try {
            if (d !== state.pid && readlinkSync(`/proc/${d}/ns/pid`) === pidNs) pids.push(d)
          } catch {
            // gone meanwhile, or not ours to read
          }
        }
        pids.sort((a, b) => a - b)
      } else {
        pids.push(state.pid)
      }
    }
    return { ...state, config, namespaces, pids, mounts, networks: attachmentsOf(config?.annotations) }
  }
}

/**
 * The entries of a container's log (one JSON object a line, as the monitor writes them, each
 * at most 16 KiB of output): split as bytes, each line decoded and checked on its own, so a
 * damaged line is skipped and no string grows with the size of the file.
 */
function parseLog(data: Buffer): LogEntry[] {
  const out: LogEntry[] = []
  for (let from = 0; from < data.length;) {
    let nl = data.indexOf(10, from)
    if (nl === -1) nl = data.length
    // Far longer than the monitor writes: not one of its entries.
    if (nl - from <= 1 << 20) {
      try {
        const e = JSON.parse(data.toString('utf8', from, nl)) as Partial<LogEntry> | null
        if (
          e &&
          typeof e.log === 'string' &&
          typeof e.time === 'string' &&
          (e.stream === 'stdout' || e.stream === 'stderr')
        )
          out.push({ time: e.time, stream: e.stream, log: e.log })
      } catch {
        // a damaged or partly written line
      }
    }
    from = nl + 1
  }
  return out
}

/** Fields of /proc/PID/stat after the command's name (field 3 on), or undefined. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** `pid` when its namespaces can be read, else its oldest child (as the runtime's anchor). */
function namespaceAnchor(pid: number): number {
  try {
    readlinkSync(`/proc/${pid}/ns/pid`)
    return pid
  } catch {
    // an undumpable init: look at its children
  }
  let best: { pid: number; start: number } | undefined
  for (const d of readdirNumbers('/proc')) {
    const f = statFields(d)
    if (!f || Number(f[1]) !== pid) continue
    const start = Number(f[19])
    if (!best || start < best.start) best = { pid: d, start }
  }
  return best?.pid ?? pid
}

function readdirNumbers(dir: string): number[] {
  return readdirSync(dir)
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
}

/** Create a container that waits for `start`; a monitor keeps its log and exit status. */
export async function create(options: DetachedOptions): Promise<DetachedContainer> {
  const { name, root, remove, ...rest } = options
  const o = parseRunOptions(rest)
  const id = name ?? newContainerId()
  if (o.image === undefined) {
    const { spec, init } = makeSpec(o, id)
    return createFromSpec(spec, { id, init, ...(root ? { root } : {}), ...(remove ? { remove } : {}) })
  }
  // An image: made ready first (pulled if need be, its layers unpacked, the container's
  // writable layer made in the store), then the container; a container that is not created
  // leaves nothing in the store.
  const { prepareImage } = await import('./images/run.js')
  const stateRoot = root ?? defaultRoot()
  const image = await prepareImage(o, { id, stateRoot, userns: o.userns !== 'host' && o.namespaces?.user !== false })
  try {
    const { spec, init } = makeSpec(o, id, image)
    return await createFromSpec(spec, { id, init, root: stateRoot, ...(remove ? { remove } : {}) })
  } catch (e) {
    await image.release().catch(() => {})
    throw e
  }
}

export interface SpecCreateOptions {
  /** The container's id (default: 12 random hex digits). */
  id?: string
  root?: string
  remove?: boolean
  /** Run the minimal init as PID 1 (default true). */
  init?: boolean
  /** Directory that relative paths of the spec (root.path, mount sources) are taken from. */
  bundle?: string
}

/** Create a container from a full OCI runtime spec (config.json), validated first. */
export async function createSpec(spec: unknown, opts: SpecCreateOptions = {}): Promise<DetachedContainer> {
  return createFromSpec(validateSpec(spec), opts)
}

async function createFromSpec(spec: OciSpec, opts: SpecCreateOptions): Promise<DetachedContainer> {
  const id = opts.id ?? newContainerId()
  const root = opts.root ?? defaultRoot()
  const init = opts.init ?? true
  const remove = opts.remove
  let error: SetupErrorJson | undefined
  let created = false
  const warnings: string[] = []
  const h = launchHelper(
    {
      config: spec,
      init,
      dieWithParent: false,
      ...(opts.bundle ? { bundle: opts.bundle } : {}),
      create: { id, root, monitor: true, removeOnExit: remove ?? false },
    },
    [-2, -2, -2],
    (ev) => {
      if (ev.event === 'created') created = true
      else if (ev.event === 'error') error ??= ev.error
      else if (ev.event === 'warning' && ev.message && warnings.length < 64) warnings.push(ev.message)
    },
  )
  await h.done
  if (error) throw new NsError(optionError(spec, error))
  if (!created) throw new NsError({ code: 'EIO', step: 'create', message: `container ${id} was not created` })
  const c = new DetachedContainer(id, root)
  c.warnings.push(...warnings)
  return c
}

/** Create and start: the container runs on its own (`ns run -d`). */
export async function runDetached(options: DetachedOptions): Promise<DetachedContainer> {
  const c = await create(options)
  await c.start()
  return c
}

/** Every container under the state root. */
export function list(root = defaultRoot()): ContainerState[] {
  return JSON.parse(native.containerList(root)) as ContainerState[]
}

/** The container with this id; throws ENOENT if there is none. */
export function get(id: string, root = defaultRoot()): DetachedContainer {
  const c = new DetachedContainer(id, root)
  c.state()
  return c
}
