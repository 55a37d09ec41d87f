// Bounds on what one client can take: container starts running at once, time, output, image
// pulls and archives.
import { ApiError } from './errors.js'

export interface Limits {
  /** Largest request body, in bytes (413 past it). Default 1 MiB. */
  maxBodyBytes: number
  /** Creates, runs and execs in progress at once; more get 429 at once (no queue). Default 16. */
  maxConcurrent: number
  /** Default time limit of POST /v1/run and exec, in milliseconds. Default 60 s. */
  runTimeoutMs: number
  /** Largest `timeout` a run or an exec may ask for, in milliseconds. Default 10 min. */
  maxRunTimeoutMs: number
  /** Default and largest wait of POST /wait, in seconds. Defaults 300 and 3600. */
  waitTimeoutSec: number
  maxWaitTimeoutSec: number
  /** Time limit of create, start, pause, resume, kill and delete, in milliseconds. Default 60 s. */
  opTimeoutMs: number
  /** Output kept of a run or an exec, per stream, in bytes. Default 4 MiB. */
  maxOutputBytes: number
  /** Terminal sessions (WebSockets) open at once; more get 429. Default 64. */
  maxTerminals: number
  /** How often GET /v1/events looks for changes nobody told it about, in ms. Default 200. */
  eventsPollMs: number
  /**
   * Largest archive POST /v1/images/load takes, in bytes (413 past it; the JSON routes keep
   * `maxBodyBytes`). It is written to a temp file as it arrives, never held in memory. Default 16 GiB.
   */
  maxArchiveBytes: number
  /** Pulls, loads and saves in progress at once; more get 429 at once. Default 4. */
  maxImageJobs: number
}

export const defaultLimits: Limits = {
  maxBodyBytes: 1024 * 1024,
  maxConcurrent: 16,
  runTimeoutMs: 60_000,
  maxRunTimeoutMs: 600_000,
  waitTimeoutSec: 300,
  maxWaitTimeoutSec: 3600,
  opTimeoutMs: 60_000,
  maxOutputBytes: 4 * 1024 * 1024,
  eventsPollMs: 200,
  maxTerminals: 64,
  maxArchiveBytes: 16 * 1024 ** 3,
  maxImageJobs: 4,
}

/**
 * A counter of slots. Over the limit a request is answered 429 with Retry-After at once, rather
 * than queued: a queue would hold connections open with no bound on how long, and a client that
 * is told "busy" can decide for itself.
 */
export class Slots {
  #free: number

  constructor(
    readonly size: number,
    /** What the slots are for, in the 429's message. */
    readonly what = 'containers starting or running',
  ) {
    this.#free = size
  }

  get inUse(): number {
    return this.size - this.#free
  }

  /** Take a slot, given back by the function returned (once, however often it is called); 429 if there is none. */
  take(): () => void {
    if (this.#free <= 0) {
      throw new ApiError(
        429,
        'EBUSY',
        `too many ${this.what} through this server at once (limit ${this.size}); retry later`,
        {
          headers: { 'Retry-After': '1' },
        },
      )
    }
    this.#free--
    let given = false
    return () => {
      if (!given) this.#free++
      given = true
    }
  }

  /** Take a slot for the time of `work`; 429 if there is none. */
  async with<T>(work: () => Promise<T>): Promise<T> {
    const give = this.take()
    try {
      return await work()
    } finally {
      give()
    }
  }
}

/** `work`, or a 408 once `ms` have passed. The work itself goes on (a slot it holds stays held). */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(ApiError.timedOut(`${what}: no answer within ${Math.round(ms / 1000)} s`)), ms)
  })
  try {
    return await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** Sleep `ms`, waking early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/**
 * `work`, given a signal that aborts when any of `signals` does, and linked to them only while
 * `work` runs. (`AbortSignal.any` would leave a reference to its signal in each of them for good:
 * in the server's shutdown signal, one more for every request.)
 */
export async function whileAny<T>(
  signals: readonly AbortSignal[],
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const any = new AbortController()
  const abort = (e: Event) => any.abort((e.target as AbortSignal).reason)
  for (const s of signals) {
    if (s.aborted) {
      any.abort(s.reason)
      break
    }
    s.addEventListener('abort', abort)
  }
  try {
    return await work(any.signal)
  } finally {
    for (const s of signals) s.removeEventListener('abort', abort)
  }
}
