// Locks between processes that share a store, which outlive no holder: Node has no flock(2),
// so a lock is a file made with link(2) — atomic, and whole from its first instant — that
// names its holder by pid, the pid's start time (pids are reused), pid namespace and boot.
// link(2) rather than open(O_EXCL): an O_EXCL file exists, empty, before its holder has
// written who it is, and a waiter reading it then cannot tell a lock being made from one left
// by a dead process; a linked file is never seen without its content.
// A waiter that finds the holder gone breaks the lock: it renames the file to a name of its
// own and deletes it only if it is still the dead holder's (else it puts it back), so two
// waiters breaking the same stale lock do not both win. What is left is a window of
// microseconds, just after a holder died, in which a third taker could slip in beside the one
// whose lock was put back. For a blob lock that costs at most a blob fetched twice (blobs are
// verified and renamed into place whole); for the store lock, a name or record written in that
// same instant could be lost (each is a whole-file rename, so never half-written).
import { randomBytes } from 'node:crypto'
import { readFileSync, readlinkSync } from 'node:fs'
import { link, mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'

import { abortError } from './errors.js'

export interface Owner {
  pid: number
  start: string
  pidns: string
  boot: string
}

function procStart(pid: number | 'self'): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined
    return fields[19]
  } catch {
    return undefined
  }
}

function readOr(path: string, fallback: string, link = false): string {
  try {
    return link ? readlinkSync(path) : readFileSync(path, 'utf8').trim()
  } catch {
    return fallback
  }
}

let me: Owner | undefined
/** This process as a lock or lease holder. */
export function self(): Owner {
  me ??= {
    pid: process.pid,
    start: procStart('self') ?? '0',
    pidns: readOr('/proc/self/ns/pid', '?', true),
    boot: readOr('/proc/sys/kernel/random/boot_id', '?'),
  }
  return me
}

/**
 * Is the holder alive? A holder of another boot is gone; one in another pid namespace cannot be
 * checked from here and counts as alive.
 */
export function ownerAlive(o: Owner): boolean {
  const s = self()
  if (o.boot !== s.boot) return false
  if (o.pidns !== s.pidns) return true
  return procStart(o.pid) === o.start
}

export function parseOwner(text: string): Owner | undefined {
  try {
    const j = JSON.parse(text) as Owner & { nonce?: string }
    if (typeof j.pid === 'number' && typeof j.start === 'string') return j
  } catch {
    // not ours
  }
  return undefined
}

export interface LockOptions {
  signal?: AbortSignal | undefined
  /** Named in the error if the wait is aborted. */
  what?: string
}

export interface Lock {
  release(): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Takes the lock file at `path`, waiting (polling, with back-off) while a live holder has it. */
export async function acquireLock(path: string, opts: LockOptions = {}): Promise<Lock> {
  const nonce = randomBytes(8).toString('hex')
  const content = JSON.stringify({ ...self(), nonce })
  const tmp = `${path}.${nonce}.tmp`
  await mkdir(dirname(path), { recursive: true })
  await writeFile(tmp, content, { mode: 0o644 })
  let delay = 5
  try {
    for (;;) {
      if (opts.signal?.aborted) throw abortError(opts.what ?? path, opts.signal)
      try {
        await link(tmp, path)
        break
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      }
      let held: string
      try {
        held = await readFile(path, 'utf8')
      } catch {
        continue // released meanwhile
      }
      const owner = parseOwner(held)
      if (owner && ownerAlive(owner)) {
        await sleep(delay)
        delay = Math.min(delay * 2, 200)
        continue
      }
      await breakStale(path, held, nonce)
    }
  } finally {
    await unlink(tmp).catch(() => {})
  }
  let released = false
  return {
    async release() {
      if (released) return
      released = true
      try {
        if ((await readFile(path, 'utf8')) === content) await unlink(path)
      } catch {
        // already gone
      }
    },
  }
}

async function breakStale(path: string, stale: string, nonce: string): Promise<void> {
  const aside = `${path}.${nonce}.stale`
  try {
    await rename(path, aside)
  } catch {
    return // someone else broke or released it
  }
  let moved = ''
  try {
    moved = await readFile(aside, 'utf8')
  } catch {
    return
  }
  if (moved !== stale) {
    // A live holder took it between our read and our rename: give it back.
    await link(aside, path).catch(() => {})
  }
  await unlink(aside).catch(() => {})
}

/**
 * Removes what dead holders left in a lock directory: their locks (broken as a waiter would
 * break them) and the files they were about to link. Returns how many went.
 */
export async function clearStaleLocks(dir: string, names: (name: string) => boolean = () => true): Promise<number> {
  let n = 0
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    if (!names(f)) continue
    const path = join(dir, f)
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch {
      continue
    }
    const owner = parseOwner(text)
    if (owner && ownerAlive(owner)) continue
    if (f.endsWith('.lock')) await breakStale(path, text, randomBytes(8).toString('hex'))
    else await unlink(path).catch(() => {})
    n++
  }
  return n
}

/** Runs `fn` holding the lock. */
export async function withLock<T>(path: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(path, opts)
  try {
    return await fn()
  } finally {
    await lock.release()
  }
}
