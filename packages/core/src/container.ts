// Starting an isolated process: the friendly options become a runtime spec, the native helper
// is started through the addon, and its events become promises and streams.
import { Socket } from 'node:net'
import { constants as osConstants } from 'node:os'
import type { Readable, Writable } from 'node:stream'

import native from '@ns/native'

import { makeSpec, newContainerId, optionError } from './build.js'
import { NsError } from './errors.js'
// Validated without zod (check.ts): the same rules as options.ts and spec.ts, loaded faster.
import { checkRunOptions as parseRunOptions, checkSpec as validateSpec } from './check.js'
import type { HelperEvent, SetupErrorJson } from './generated/facts.js'
import type { ParsedRunOptions, RunOptions } from './options.js'
import type { OciSpec } from './spec.js'

export interface ExitResult {
  /** The exit code, or 128 + the signal number when a signal ended it (docker's convention). */
  exitCode: number
  /** The signal that ended it (`SIGKILL`), if one did. */
  signal: NodeJS.Signals | null
  /** True when the `timeout` option killed it. */
  timedOut: boolean
  /** True when the kernel's OOM killer ended it (its memory limit was reached). */
  oomKilled: boolean
}

type Stdio = ParsedRunOptions['stdin']

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(osConstants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
)

export function stdioFd(s: Stdio, fallback: 'pipe' | 'ignore', inheritFd: number): number {
  const v = s ?? fallback
  if (v === 'pipe') return -1
  if (v === 'ignore') return -2
  if (v === 'inherit') return inheritFd
  return v
}

/** The native helper, starting: its pipes and its end. */
export interface Helper {
  /** Resolves once the helper runs (it is started off the event loop); rejects if it cannot start. */
  pid: Promise<number>
  stdin: Writable | null
  stdout: Readable | null
  stderr: Readable | null
  /** Resolves once the control socket closed and the helper was reaped. */
  done: Promise<{ exitCode?: number | null; signal?: number | null }>
  /** Send the helper a message after the request (a window size for a relayed terminal). */
  send(message: Record<string, unknown>): void
  /** Our end of its control socket, as a descriptor (a warm helper's command goes there). */
  control: number
  /** Close the control socket: a helper that waits for a command (a warm one) then ends. */
  close(): void
}

/** The longest event line a helper sends (real ones are a few hundred bytes). */
export const MAX_EVENT_LINE = 1 << 20
/** The most warnings kept for one container, and the longest kept of each. */
const MAX_WARNINGS = 64
const MAX_WARNING_LENGTH = 4096
/**
 * The most events one helper sends: created, started, exited or an error, and a warning per
 * limit or setting it could not apply. A helper that sends more is broken, as one whose line
 * is too long: what a helper sends is bounded in total, not only line by line.
 */
export const MAX_EVENTS = 1024

/**
 * Split what `input` reads into lines (at `\n`; the last one may lack it) and call `onLine` with
 * each; `onEnd` once it has ended, or failed. A line longer than `maxLine` bytes is not
 * gathered: `onTooLong` is called once and nothing more is read (the peer is broken).
 */
export function readLines(
  input: Socket,
  onLine: (line: string) => void,
  onEnd: () => void,
  onTooLong: () => void = () => {},
  maxLine = MAX_EVENT_LINE,
): void {
  // Bytes, not strings: a line is decoded only once whole (and a multi-byte character split
  // between chunks is decoded right).
  let partial: Buffer[] = []
  let partialLength = 0
  let stopped = false
  input.on('data', (chunk: Buffer) => {
    if (stopped) return
    let from = 0
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, from)) {
      if (partialLength + nl - from > maxLine) break
      partial.push(chunk.subarray(from, nl))
      const line = Buffer.concat(partial).toString('utf8')
      partial = []
      partialLength = 0
      from = nl + 1
      onLine(line)
      if (stopped) return
    }
    const rest = chunk.subarray(from)
    if (partialLength + rest.length > maxLine) {
      stopped = true
      partial = []
      partialLength = 0
      onTooLong()
      return
    }
    partial.push(rest)
    partialLength += rest.length
  })
  let ended = false
  const end = () => {
    if (ended) return
    ended = true
    if (partialLength > 0 && !stopped) onLine(Buffer.concat(partial).toString('utf8'))
    onEnd()
  }
  input.on('end', end)
  // A helper gone without reading its request resets the socket: an end too.
  input.on('error', end)
  input.on('close', end)
}

/**
 * Start `ns-oci init` through the addon, send it `request` on the control socket, and call
 * `onEvent` with each event it sends back (one JSON object a line).
 */
export function launchHelper(
  request: Record<string, unknown>,
  stdio: [number, number, number],
  onEvent: (ev: HelperEvent) => void,
): Helper {
  const config = request.config as OciSpec | undefined
  const usesUserns = config?.linux?.namespaces?.some((n) => n.type === 'user' && !n.path) ?? false
  const host = native.hostInfo()
  if (usesUserns && host.usernsBlock) {
    throw new NsError({
      code: 'EPERM',
      step: 'create user namespace',
      message: `cannot create a user namespace: ${host.usernsBlock.reason}`,
      hint: `run: ${host.usernsBlock.fix}`,
    })
  }
  const startError = (e: unknown) => {
    const msg = (e as Error)?.message ?? String(e)
    return new NsError({
      code: msg.split(':')[0] ?? 'EIO',
      step: 'start the helper',
      path: native.helperPath,
      message: msg,
    })
  }
  let h
  try {
    h = native.prepareHelper({ stdio })
  } catch (e) {
    throw startError(e)
  }
  // A helper relaying a terminal reads the caller's terminal: it must be in its foreground
  // process group. Otherwise it gets a group of its own, so the terminal's signals reach the
  // container once, through the caller.
  const tty =
    (request.config as OciSpec | undefined)?.process?.terminal === true ||
    (request.exec as { process?: { terminal?: boolean } } | undefined)?.process?.terminal === true
  // Started on a thread of the pool: the event loop goes on meanwhile. The pipes exist already,
  // and the request waits in the control socket until the helper reads it.
  const pid = native.startHelper(h.token, native.helperPath, !tty).catch((e: unknown) => {
    throw startError(e)
  })
  pid.catch(() => {})
  // allowHalfOpen: the end of a read pipe must not make Node shut down a write side it does
  // not have. Errors of a pipe (EPIPE once the container is gone) are the container's end,
  // reported by `exited`; they must never take the caller's process down.
  const pipe = pipeStream
  const stdin = pipe(h.stdin, false)
  const control = new Socket({ fd: h.control, readable: true, writable: true, allowHalfOpen: true })
  control.on('error', () => {})
  // The control socket stays open for messages after the request (window sizes); the helper
  // reads them only while it relays a terminal.
  control.write(`${JSON.stringify(request)}\n`)
  // A helper that sends what is not an event (too long, not JSON, not one of ours) is broken:
  // its container fails with an error saying so, the helper is killed (and its container with
  // it), and this process goes on.
  let broken = false
  const protocolError = (why: string) => {
    if (broken) return
    broken = true
    onEvent({
      event: 'error',
      error: {
        code: 'EPROTO',
        step: "read the helper's events",
        path: native.helperPath,
        message: `the helper sent ${why}; its container was stopped`,
      },
    })
    control.destroy()
    pid.then(
      (p) => {
        try {
          process.kill(p, 'SIGKILL')
        } catch {
          // gone already
        }
      },
      () => {},
    )
  }
  let events = 0
  const done = new Promise<{ exitCode?: number | null; signal?: number | null }>((resolve, reject) => {
    readLines(
      control,
      (line) => {
        if (broken) return
        if (++events > MAX_EVENTS) return protocolError(`more than ${MAX_EVENTS} events`)
        const ev = parseEvent(line)
        if (ev) onEvent(ev)
        else protocolError(`a line that is not an event (${JSON.stringify(line.slice(0, 80))})`)
      },
      // The control socket also ends when the helper could not start (its end is closed then).
      () => {
        control.destroy()
        pid.then((p) => native.reap(p)).then(resolve, reject)
      },
      () => protocolError(`a line longer than ${MAX_EVENT_LINE} bytes`),
    )
  })
  const send = (message: Record<string, unknown>) => {
    if (!control.destroyed && control.writable) control.write(`${JSON.stringify(message)}\n`)
  }
  return {
    pid,
    stdin: stdin as Writable | null,
    stdout: pipe(h.stdout, true),
    stderr: pipe(h.stderr, true),
    done,
    send,
    control: h.control,
    close: () => control.destroy(),
  }
}

/** A pipe's end from the addon as a stream (see `launchHelper`), or null. */
export function pipeStream(fd: number | undefined | null, readable: boolean): Socket | null {
  if (fd === undefined || fd === null) return null
  const s = new Socket({ fd, readable, writable: !readable, allowHalfOpen: true })
  s.on('error', () => {})
  return s
}

/** The helper's events, as ns-runtime defines them (generated). */
export type { HelperEvent }

const EVENT_NAMES = new Set(['created', 'started', 'ready', 'error', 'warning', 'exited'])
const isInt = (v: unknown) => v === undefined || v === null || Number.isSafeInteger(v)
const isText = (v: unknown) => v === undefined || typeof v === 'string'

/** One line from a helper as an event, checked field by field; undefined if it is not one. */
export function parseEvent(line: string): HelperEvent | undefined {
  let ev: unknown
  try {
    ev = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof ev !== 'object' || ev === null || Array.isArray(ev)) return undefined
  const e = ev as Record<string, unknown>
  if (typeof e.event !== 'string' || !EVENT_NAMES.has(e.event)) return undefined
  if (!isInt(e.pid) || !isInt(e.exitCode) || !isInt(e.signal) || !isText(e.message)) return undefined
  if (e.oomKilled !== undefined && typeof e.oomKilled !== 'boolean') return undefined
  if (e.event === 'error') {
    const err = e.error as Record<string, unknown> | null | undefined
    if (typeof err !== 'object' || err === null || typeof err.message !== 'string' || typeof err.code !== 'string')
      return undefined
    for (const k of ['step', 'path', 'hint']) if (!isText(err[k])) return undefined
    if (!isInt(err.errno)) return undefined
  }
  return e as unknown as HelperEvent
}

/**
 * Hand a helper that runs already (a warm one) to a Container: it gets the container's event
 * handler and stdio (`[stdin, stdout, stderr]` as for `prepareHelper`), and returns the helper
 * with those pipes.
 */
export type Connect = (onEvent: (ev: HelperEvent) => void, stdio: [number, number, number]) => Helper

export interface StartOptions {
  id?: string
  /** The helper request to send instead of running `spec` (exec into a running container). */
  request?: Record<string, unknown>
  init?: boolean
  stdin?: Stdio
  stdout?: Stdio
  stderr?: Stdio
  timeout?: number | undefined
  signal?: AbortSignal | undefined
}

/** A running isolated process. */
export class Container implements AsyncDisposable {
  readonly id: string
  readonly spec: OciSpec
  /** Pipes to the process, for stdio given as 'pipe'. */
  readonly stdin: Writable | null
  readonly stdout: Readable | null
  readonly stderr: Readable | null
  /** Resolves with the host PID of the container's first process once it runs. */
  readonly started: Promise<number>
  /** Resolves when it ends; rejects with an NsError if it could not start. */
  readonly exited: Promise<ExitResult>
  /** What was asked for and not done, as it is known (best-effort limits not applied). */
  readonly warnings: string[] = []
  #helperPid: Promise<number>
  #send: Helper['send']
  #done = false
  #timedOut = false

  /**
   * Start `spec`'s process (or `opts.request`'s). `connect`, for a warm container of a pool
   * (pool.ts): the helper that runs it already, given the events from now on and the stdio;
   * `exited` then resolves once the exit is reported, before the helper itself is reaped.
   */
  constructor(spec: OciSpec, opts: StartOptions = {}, connect?: Connect) {
    this.id = opts.id ?? newContainerId()
    this.spec = spec
    let resolveStarted!: (pid: number) => void
    let rejectStarted!: (e: unknown) => void
    this.started = new Promise((res, rej) => ((resolveStarted = res), (rejectStarted = rej)))
    this.started.catch(() => {})

    let error: SetupErrorJson | undefined
    let exit: { exitCode: number | null; signal: number | null; oomKilled: boolean } | undefined
    // How it ended, once known: from the helper's own end (reaped), or for a warm container
    // (`connect`) as soon as its exit event has come, the helper ending meanwhile. Then in the
    // next turn of the event loop, so that output the container wrote before it ended (ready
    // on its pipes before the event was) has been read first.
    let finish: (helper?: { exitCode?: number | null; signal?: number | null }) => void = () => {}
    const early = connect !== undefined
    const onEvent = (ev: HelperEvent) => {
      if (ev.event === 'started' && ev.pid) resolveStarted(ev.pid)
      else if (ev.event === 'error') error ??= ev.error
      else if (ev.event === 'warning' && ev.message && this.warnings.length < MAX_WARNINGS)
        this.warnings.push(ev.message.slice(0, MAX_WARNING_LENGTH))
      else if (ev.event === 'exited') {
        exit = { exitCode: ev.exitCode ?? null, signal: ev.signal ?? null, oomKilled: ev.oomKilled ?? false }
        if (early) setImmediate(() => finish())
      }
    }
    const stdio: [number, number, number] = [
      stdioFd(opts.stdin, 'ignore', 0),
      stdioFd(opts.stdout, 'pipe', 1),
      stdioFd(opts.stderr, 'pipe', 2),
    ]
    const h = connect
      ? connect(onEvent, stdio)
      : launchHelper(opts.request ?? { config: spec, init: opts.init ?? true, dieWithParent: true }, stdio, onEvent)
    this.#helperPid = h.pid
    this.#send = h.send
    this.stdin = h.stdin
    this.stdout = h.stdout
    this.stderr = h.stderr

    const timer = opts.timeout
      ? setTimeout(() => {
          this.#timedOut = true
          void this.kill('SIGKILL')
        }, opts.timeout)
      : undefined
    const onAbort = () => void this.kill('SIGKILL')
    opts.signal?.addEventListener('abort', onAbort, { once: true })

    this.exited = new Promise<ExitResult>((resolve, reject) => {
      finish = (helper = {}) => {
        if (this.#done) return
        this.#done = true
        if (timer) clearTimeout(timer)
        opts.signal?.removeEventListener('abort', onAbort)
        // Without an exit event the helper itself was killed, and the container with it.
        const code = exit?.exitCode ?? null
        const sig = exit ? exit.signal : (helper.signal ?? null)
        const exitCode = code ?? (sig ? 128 + sig : (helper.exitCode ?? 125))
        const signal = sig ? (signalNames.get(sig) ?? null) : null
        if (error) {
          const e = new NsError({ ...optionError(spec, error), exitCode: exitCode === 0 ? 125 : exitCode })
          rejectStarted(e)
          reject(e)
          return
        }
        resolveStarted(-1)
        resolve({ exitCode, signal, timedOut: this.#timedOut, oomKilled: exit?.oomKilled ?? false })
      }
      h.done.then(
        (helper) => finish(helper),
        (e: unknown) => {
          if (this.#done) return
          this.#done = true
          rejectStarted(e)
          reject(e)
        },
      )
    })
  }

  /** Send a signal to the container's first process (through the helper, which forwards it). */
  async kill(signal: NodeJS.Signals | number = 'SIGTERM'): Promise<void> {
    if (this.#done) return
    let pid: number
    try {
      pid = await this.#helperPid
    } catch {
      return // never started: nothing to signal
    }
    if (this.#done) return
    try {
      process.kill(pid, signal)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e
    }
  }

  /** A new window size for the process's terminal (with `tty: true`); ignored without one. */
  resize(cols: number, rows: number): void {
    checkSize(cols, rows)
    if (!this.#done) this.#send({ resize: { cols, rows } })
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill('SIGKILL')
    await this.exited.catch(() => {})
  }
}

/** A terminal size: whole numbers of columns and rows, 1 to 65535. */
export function checkSize(cols: number, rows: number): void {
  for (const [field, v] of [
    ['cols', cols],
    ['rows', rows],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 65535)
      throw NsError.invalid(field, 'must be a whole number from 1 to 65535')
  }
}

/** Start an isolated process; returns at once with its streams and promises. */
export function spawn(options: RunOptions): Container {
  const o = parseRunOptions(options)
  if (o.image !== undefined) {
    throw NsError.invalid('image', 'spawn() starts at once, and an image is made ready first: use launch() or run()')
  }
  const id = newContainerId()
  const { spec, init } = makeSpec(o, id)
  return new Container(spec, {
    id,
    init,
    stdin: o.stdin,
    stdout: o.stdout,
    stderr: o.stderr,
    timeout: o.timeout,
    signal: o.signal,
  })
}

/** Start a process from a full OCI runtime spec (config.json). */
export function spawnSpec(spec: unknown, opts: StartOptions = {}): Container {
  return new Container(validateSpec(spec), opts)
}

export interface RunResult extends ExitResult {
  stdout: string
  stderr: string
  /** What was asked for and not done (best-effort limits not applied). */
  warnings: string[]
}

export async function collect(s: Readable | null): Promise<string> {
  if (!s) return ''
  const chunks: Buffer[] = []
  for await (const c of s) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * `spawn`, for options with an `image` too: the image is found (or pulled, see `pull`), its
 * layers unpacked and the container's writable layer made, then the container starts. Resolves
 * with it once it is launched; its writable layer goes when it ends.
 */
export async function launch(options: RunOptions): Promise<Container> {
  const o = parseRunOptions(options)
  if (o.image === undefined) return spawn(options)
  const id = newContainerId()
  const { prepareImage } = await import('./images/run.js')
  const image = await prepareImage(o, { id, userns: o.userns !== 'host' && o.namespaces?.user !== false })
  let c: Container
  try {
    const { spec, init } = makeSpec(o, id, image)
    c = new Container(spec, {
      id,
      init,
      stdin: o.stdin,
      stdout: o.stdout,
      stderr: o.stderr,
      timeout: o.timeout,
      signal: o.signal,
    })
  } catch (e) {
    await image.release()
    throw e
  }
  // The helper removes it once the container has ended; this is for a helper that could not.
  const release = () => image.release().catch(() => {})
  c.exited.then(release, release)
  return c
}

/** Run an isolated process to completion and capture its output. */
export async function run(options: RunOptions): Promise<RunResult> {
  const o = parseRunOptions(options)
  const c = await launch({ ...options, stdin: o.stdin ?? (o.input !== undefined ? 'pipe' : 'ignore') })
  if (c.stdin) c.stdin.end(o.input ?? '')
  const [stdout, stderr, result] = await Promise.all([collect(c.stdout), collect(c.stderr), c.exited])
  return { ...result, stdout, stderr, warnings: c.warnings }
}
