// Lifecycle events (created, started, oom, exited, deleted), found by comparing snapshots of the state
// directory: after each change the server makes, and every `pollMs` while someone listens, which
// also catches containers that end on their own or are changed by another program (ns, ns-oci).
// Nothing is kept when nobody listens: the state directory stays the only truth.
import { constants as osConstants } from 'node:os'

import { labelsOf, list, type ContainerState, type ExitRecord } from '@ns/core'

export type EventType = 'created' | 'started' | 'oom' | 'exited' | 'deleted'

export interface ContainerEvent {
  type: EventType
  id: string
  time: string
  labels: Record<string, string>
  /** For `exited`: the exit code (128 + N for signal N), null when unknown (deleted while running). */
  exitCode?: number | null
  signal?: string | null
  /** For `exited`: the kernel's OOM killer ended it (an `oom` event comes first). */
  oomKilled?: boolean
}

const signalNames = new Map<number, string>(Object.entries(osConstants.signals).map(([name, n]) => [n, name]))

/** An exit record as the API shows it: an exit code always, the signal by name. */
export function exitStatus(e: ExitRecord): {
  exitCode: number
  signal: string | null
  finished: string
  oomKilled: boolean
} {
  return {
    exitCode: e.exitCode ?? (e.signal ? 128 + e.signal : 0),
    signal: e.signal ? (signalNames.get(e.signal) ?? String(e.signal)) : null,
    finished: e.finished,
    oomKilled: e.oomKilled ?? false,
  }
}

const rank = { creating: 0, created: 1, running: 2, paused: 2, stopped: 3 } as const

/** How long a stopped container may lack its exit record before it is reported without one. */
const exitGraceMs = 1000

export class EventHub {
  readonly #root: string
  readonly #pollMs: number
  readonly #listeners = new Set<(e: ContainerEvent) => void>()
  #known: Map<string, ContainerState> | undefined
  #stoppedSince = new Map<string, number>()
  /** Containers this server started, until an event has said so. */
  #startedHere = new Set<string>()
  #timer: NodeJS.Timeout | undefined

  constructor(root: string, pollMs: number) {
    this.#root = root
    this.#pollMs = pollMs
  }

  get listeners(): number {
    return this.#listeners.size
  }

  /** Listen; the returned function stops. The first listener takes a snapshot and starts polling. */
  subscribe(listener: (e: ContainerEvent) => void): () => void {
    if (this.#listeners.size === 0) {
      this.#known = this.#snapshot()
      this.#timer = setInterval(() => this.sync(), this.#pollMs)
      this.#timer.unref()
    }
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
      if (this.#listeners.size === 0) this.#stopPolling()
    }
  }

  /**
   * Compare the state directory with the last snapshot and tell listeners what changed.
   * `started` names a container the server itself started, which may have ended already: a
   * container seen only created, then stopped, is otherwise not said to have started (one killed
   * before its start never did).
   */
  sync(hint: { started?: string } = {}): void {
    if (this.#listeners.size === 0 || !this.#known) return
    if (hint.started) this.#startedHere.add(hint.started)
    const before = this.#known
    const now = this.#snapshot()
    const time = new Date().toISOString()
    const events: ContainerEvent[] = []
    const emit = (type: EventType, s: ContainerState, extra: Partial<ContainerEvent> = {}) =>
      events.push({ type, id: s.id, time, labels: labelsOf(s.annotations), ...extra })

    for (const [id, s] of now) {
      const prev = before.get(id)
      const status = s.status
      // The monitor records the exit status right after it reaps: wait a moment for it.
      if (status === 'stopped' && !s.exit) {
        const since = this.#stoppedSince.get(id) ?? Date.now()
        this.#stoppedSince.set(id, since)
        if (Date.now() - since < exitGraceMs) {
          // As if not looked at yet: the previous state stays, or it is new next time.
          if (prev) now.set(id, prev)
          else now.delete(id)
          continue
        }
      } else {
        this.#stoppedSince.delete(id)
      }
      const from = prev ? rank[prev.status] : 0
      const to = rank[status]
      if (!prev) emit('created', s)
      if (from < rank.running && (to === rank.running || (to === rank.stopped && this.#startedHere.has(id))))
        emit('started', s)
      if (to >= rank.running) this.#startedHere.delete(id)
      if (from < rank.stopped && to === rank.stopped) {
        if (s.exit?.oomKilled) emit('oom', s)
        emit('exited', s, s.exit ? exitStatus(s.exit) : { exitCode: null, signal: null })
      }
    }
    for (const [id, s] of before) {
      if (now.has(id)) continue
      if (s.status !== 'stopped') emit('exited', s, { exitCode: null, signal: null })
      emit('deleted', s)
      this.#stoppedSince.delete(id)
      this.#startedHere.delete(id)
    }
    this.#known = now
    for (const e of events) for (const l of this.#listeners) l(e)
  }

  close(): void {
    this.#listeners.clear()
    this.#stopPolling()
  }

  #stopPolling(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#known = undefined
    this.#stoppedSince.clear()
    this.#startedHere.clear()
  }

  /** Every container past `creating`, by id. */
  #snapshot(): Map<string, ContainerState> {
    let all: ContainerState[] = []
    try {
      all = list(this.#root)
    } catch {
      all = []
    }
    return new Map(all.filter((s) => s.status !== 'creating').map((s) => [s.id, s]))
  }
}
