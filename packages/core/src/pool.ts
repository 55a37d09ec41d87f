// Warm sandboxes: containers set up ahead of time — namespaces made, id maps written, root
// filesystem mounted, paths masked, identity taken — whose first process waits before its
// command (the helper's warm mode). A run takes one, sends it its command, environment,
// working directory and stdio, and a fresh one replaces it in the background. A sandbox runs
// one command and is gone: none is ever used twice.
import native from '@ns/native'

import { envList, makeSpec, newContainerId, type BuiltSpec } from './build.js'
import { checkRunOptions } from './check.js'
import {
  collect,
  Container,
  launchHelper,
  pipeStream,
  spawn,
  stdioFd,
  type Helper,
  type RunResult,
} from './container.js'
import { NsError } from './errors.js'
import type { HelperEvent, SetupErrorJson } from './generated/facts.js'
import type { RunOptions } from './options.js'
import type { OciSpec } from './spec.js'

/** What each run chooses for itself; every other option is the pool's. */
export const poolRunKeys = ['env', 'cwd', 'input', 'timeout', 'signal', 'stdin', 'stdout', 'stderr'] as const

/** The options of one run of a pool: its environment (over the pool's), cwd, stdio, time limit. */
export type PoolRunOptions = Pick<RunOptions, (typeof poolRunKeys)[number]>

/**
 * A pool: how many sandboxes to keep warm, and the options of every one, as `run` takes them
 * (`env` and `cwd` are the defaults of its runs).
 */
export type PoolOptions = Omit<
  RunOptions,
  'command' | 'tty' | 'input' | 'timeout' | 'signal' | 'stdin' | 'stdout' | 'stderr'
> & {
  /** Sandboxes kept ready (1 to 64). */
  size: number
}

/**
 * A replacement starts when the run that took a sandbox ends, or this long after it began,
 * whichever comes first: a short run does not share the CPU with the set-up of the next one.
 */
const refillAfterMs = 10

/** The stdio a sandbox is made with, a run's by default; and the addon's word for keeping one. */
const madeStdio = ['ignore', 'pipe', 'pipe']
const keep = -3

/** The most sandboxes a pool keeps. */
export const MAX_POOL_SIZE = 64

/** Warm-ups that fail one after the other are retried after this long, doubling, at most `maxRetryMs`. */
const firstRetryMs = 100
const maxRetryMs = 10_000

interface Sandbox {
  id: string
  spec: OciSpec
  init: boolean
  helper: Helper
  /** Where its helper's events go: the pool's while it warms and waits, then its run's. */
  handler: (ev: HelperEvent) => void
  warnings: string[]
  error: SetupErrorJson | undefined
  state: 'warming' | 'ready' | 'taken'
}

/** Merge environment lists: later entries replace earlier ones with the same key. */
function mergeEnv(...lists: string[][]): string[] {
  const m = new Map<string, string>()
  for (const l of lists) for (const e of l) m.set(e.slice(0, e.indexOf('=')), e)
  return [...m.values()]
}

/**
 * A set of warm sandboxes. `run`/`spawn` take a ready one (or, when none is ready, start a cold
 * container of the same spec); `close` (or `await using`) ends the pool and every sandbox it
 * holds, once the runs in flight have ended. A warm run's `exited` resolves as soon as its
 * sandbox has reported the exit (after the container's processes are reaped and its cgroup is
 * gone); the sandbox's helper ends a moment later, and `close` waits for every one.
 */
export class Pool implements AsyncDisposable {
  readonly size: number
  /** Runs so far: started in a warm sandbox, or cold (none ready, or options of their own). */
  readonly stats = { warm: 0, cold: 0 }
  readonly #make: (id: string) => BuiltSpec
  readonly #options: Omit<RunOptions, 'command'> | undefined
  readonly #idle: Sandbox[] = []
  /** Every sandbox whose helper has not ended yet, taken or not. */
  readonly #live = new Set<Sandbox>()
  #warming = 0
  #closed = false
  #failures = 0
  #retry: NodeJS.Timeout | undefined
  #lastError: NsError | undefined
  #waiters = new Set<() => void>()

  /**
   * `make(id)` builds the spec of a sandbox (with `id` as its container id); its command is
   * not used. `options`, when the pool was made from friendly options: those a run that asks
   * for others is started with, cold.
   */
  constructor(size: number, make: (id: string) => BuiltSpec, options?: Omit<RunOptions, 'command'>) {
    if (!Number.isInteger(size) || size < 1 || size > MAX_POOL_SIZE)
      throw NsError.invalid('size', `must be a whole number from 1 to ${MAX_POOL_SIZE}`)
    this.size = size
    this.#make = make
    this.#options = options
    // Whatever the first sandbox cannot be made from is the caller's mistake: said now.
    make(newContainerId())
    this.#fill()
  }

  /** Sandboxes ready for a run now. */
  get ready(): number {
    return this.#idle.length
  }

  /** Why the last warm-up failed, if it did (the pool retries, less and less often). */
  get lastError(): NsError | undefined {
    return this.#lastError
  }

  /** Resolves once every sandbox is ready; rejects with the error of a warm-up that failed. */
  warm(): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.#closed) return done(() => reject(new NsError({ code: 'ECANCELED', message: 'the pool is closed' })))
        if (this.#idle.length >= this.size) return done(resolve)
        if (this.#lastError) return done(() => reject(this.#lastError))
      }
      const done = (f: () => void) => {
        this.#waiters.delete(check)
        f()
      }
      this.#waiters.add(check)
      check()
    })
  }

  /**
   * Start `command` in a ready sandbox: as `spawn({ ...poolOptions, command, ...opts })` would,
   * isolated as a cold start is. With options other than a run's own (`poolRunKeys`), or
   * when no sandbox is ready, it is that cold start.
   */
  spawn(command: string[], opts: PoolRunOptions & Omit<RunOptions, 'command'> = {}): Container {
    if (this.#closed) throw new NsError({ code: 'ECANCELED', message: 'the pool is closed' })
    const own = Object.keys(opts).every((k) => (poolRunKeys as readonly string[]).includes(k))
    // The same checks as a cold run's, and the same first error.
    const o = checkRunOptions({ ...(own ? {} : this.#options), ...opts, command })
    if (own) {
      for (let sb = this.#idle.shift(); sb; sb = this.#idle.shift()) {
        const c = this.#take(sb, command, o)
        if (c) {
          this.stats.warm++
          this.#refillAfter(c)
          return c
        }
      }
    }
    this.stats.cold++
    if (!own) {
      if (!this.#options)
        throw NsError.invalid(
          Object.keys(opts).find((k) => !(poolRunKeys as readonly string[]).includes(k)) ?? 'options',
          "is the pool's: a run of this pool sets only its own options",
        )
      // The run's environment over the pool's, as in a warm run.
      const env = mergeEnv(envList(checkRunOptions({ ...this.#options, command }).env), envList(o.env))
      return spawn({ ...this.#options, ...opts, env, command })
    }
    const id = newContainerId()
    const { spec, init } = this.#make(id)
    const env = mergeEnv(spec.process.env ?? [], envList(o.env))
    const run = { ...spec, process: { ...spec.process, args: [...command], env, cwd: o.cwd ?? spec.process.cwd } }
    return new Container(run, {
      id,
      init,
      stdin: o.stdin,
      stdout: o.stdout,
      stderr: o.stderr,
      timeout: o.timeout,
      signal: o.signal,
    })
  }

  /** Run `command` to completion and capture its output, as `run` does. */
  async run(command: string[], opts: PoolRunOptions & Omit<RunOptions, 'command'> = {}): Promise<RunResult> {
    const c = this.spawn(command, { ...opts, stdin: opts.stdin ?? (opts.input !== undefined ? 'pipe' : 'ignore') })
    if (c.stdin) c.stdin.end(opts.input ?? '')
    const [stdout, stderr, result] = await Promise.all([collect(c.stdout), collect(c.stderr), c.exited])
    return { ...result, stdout, stderr, warnings: c.warnings }
  }

  /**
   * Stop warming, end every sandbox that waits (killed, reaped, its cgroup and ids given back
   * by its helper), and resolve once they and the runs in flight have ended.
   */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retry)
    for (const sb of this.#idle.splice(0)) sb.helper.close()
    for (const sb of this.#live) if (sb.state === 'warming') sb.helper.close()
    this.#wake()
    await Promise.all([...this.#live].map((sb) => sb.helper.done.catch(() => {})))
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  /**
   * Replace the sandbox `c` took (see `refillAfterMs`): in a turn of the event loop of its own,
   * after whoever waits for the run has been told it ended.
   */
  #refillAfter(c: Container): void {
    let done = false
    const fill = () => {
      if (done) return
      done = true
      clearTimeout(timer)
      this.#fill()
    }
    const timer = setTimeout(fill, refillAfterMs)
    timer.unref()
    const later = () => void setImmediate(fill)
    c.exited.then(later, later)
  }

  /** A sandbox's command sent, as a Container; undefined when its helper is gone. */
  #take(sb: Sandbox, command: string[], o: ReturnType<typeof checkRunOptions>): Container | undefined {
    const env = mergeEnv(sb.spec.process.env ?? [], envList(o.env))
    const cwd = o.cwd ?? sb.spec.process.cwd
    // The stdio a run has by default is the sandbox's own (made with it: stdin /dev/null, and
    // pipes for stdout and stderr whose ends are ours already); any other is sent with it.
    const asMade = [o.stdin ?? 'ignore', o.stdout ?? 'pipe', o.stderr ?? 'pipe'].map((s, i) => s === madeStdio[i])
    const stdio: [number, number, number] = [
      asMade[0] ? keep : stdioFd(o.stdin, 'ignore', 0),
      asMade[1] ? keep : stdioFd(o.stdout, 'pipe', 1),
      asMade[2] ? keep : stdioFd(o.stderr, 'pipe', 2),
    ]
    const slots = [0, 1, 2].filter((i) => !asMade[i])
    let sent
    try {
      sent = native.sendRun(sb.helper.control, JSON.stringify({ args: command, env, cwd, stdio: slots }), stdio)
    } catch {
      // Ended meanwhile (its end of the socket is closed): the next one, or a cold start.
      sb.helper.close()
      return undefined
    }
    // Pipes made with the sandbox that this run does not use: nobody reads them.
    if (!asMade[1]) sb.helper.stdout?.destroy()
    if (!asMade[2]) sb.helper.stderr?.destroy()
    sb.state = 'taken'
    const spec = { ...sb.spec, process: { ...sb.spec.process, args: [...command], env, cwd } }
    // The events of the run go to the container from now on; none can have come yet (they
    // arrive on this thread, after this call).
    return new Container(spec, { id: sb.id, init: sb.init, timeout: o.timeout, signal: o.signal }, (onEvent) => {
      for (const message of sb.warnings) onEvent({ event: 'warning', message })
      sb.handler = onEvent
      return {
        ...sb.helper,
        stdin: pipeStream(sent.stdin, false),
        stdout: asMade[1] ? sb.helper.stdout : pipeStream(sent.stdout, true),
        stderr: asMade[2] ? sb.helper.stderr : pipeStream(sent.stderr, true),
      }
    })
  }

  /** Start warming sandboxes until `size` are ready or warming. */
  #fill(): void {
    while (!this.#closed && !this.#retry && this.#idle.length + this.#warming < this.size) this.#start()
  }

  #start(): void {
    const id = newContainerId()
    let built: BuiltSpec
    try {
      built = this.#make(id)
    } catch (e) {
      this.#failed(e instanceof NsError ? e : new NsError({ code: 'EINVAL', message: String(e) }))
      return
    }
    // Its command comes with each run: the spec says none.
    const spec: OciSpec = { ...built.spec, process: { ...built.spec.process, args: [] } }
    const sb: Sandbox = {
      id,
      spec,
      init: built.init,
      helper: undefined as unknown as Helper,
      handler: () => {},
      warnings: [],
      error: undefined,
      state: 'warming',
    }
    sb.handler = (ev) => {
      if (ev.event === 'ready' && sb.state === 'warming') {
        sb.state = 'ready'
        this.#warming--
        this.#failures = 0
        this.#lastError = undefined
        if (this.#closed) sb.helper.close()
        else this.#idle.push(sb)
        this.#wake()
      } else if (ev.event === 'warning' && ev.message && sb.warnings.length < 64) sb.warnings.push(ev.message)
      else if (ev.event === 'error') sb.error ??= ev.error
    }
    try {
      // Made with the stdio a run has by default (see `#take`).
      sb.helper = launchHelper(
        { config: spec, init: built.init, dieWithParent: true, warm: true },
        [-2, -1, -1],
        (ev) => sb.handler(ev),
      )
    } catch (e) {
      this.#failed(e instanceof NsError ? e : new NsError({ code: 'EIO', message: String(e) }))
      return
    }
    this.#warming++
    this.#live.add(sb)
    const ended = () => {
      this.#live.delete(sb)
      if (sb.state === 'warming') {
        this.#warming--
        if (!this.#closed)
          this.#failed(
            new NsError(
              sb.error ?? { code: 'EIO', step: 'warm a sandbox', message: 'its helper ended before it was ready' },
            ),
          )
      } else if (sb.state === 'ready') {
        const at = this.#idle.indexOf(sb)
        if (at >= 0) this.#idle.splice(at, 1)
      }
      this.#wake()
      this.#fill()
    }
    sb.helper.done.then(ended, ended)
  }

  /** A warm-up failed: the pool waits before the next, longer each time in a row. */
  #failed(e: NsError): void {
    this.#lastError = e
    this.#failures++
    const ms = Math.min(maxRetryMs, firstRetryMs * 2 ** (this.#failures - 1))
    clearTimeout(this.#retry)
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      this.#fill()
    }, ms)
    this.#retry.unref()
    this.#wake()
  }

  #wake(): void {
    for (const w of this.#waiters) w()
  }
}

/**
 * Keep `size` sandboxes of these options warm: `pool.run(command, opts)` then starts in one of
 * them (under a millisecond for `/bin/true` in a warm process), as isolated as a cold `run`.
 */
export function pool(options: PoolOptions): Pool {
  const { size, ...rest } = options
  for (const k of ['tty', 'input', 'timeout', 'signal', 'stdin', 'stdout', 'stderr'])
    if (k in rest)
      throw NsError.invalid(k, k === 'tty' ? 'a pooled sandbox has no terminal' : 'is an option of each run')
  // Validated as a run's (a command stands in for those to come: the spec's is not used).
  const o = checkRunOptions({ ...rest, command: ['true'] })
  return new Pool(size, (id) => makeSpec(o, id), rest)
}

/** A pool of sandboxes whose spec `make(id)` gives (a server's: specs it has judged). */
export function poolOfSpecs(size: number, make: (id: string) => BuiltSpec): Pool {
  return new Pool(size, make)
}
