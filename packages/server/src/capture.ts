// Output of a process run to completion over HTTP, kept up to a limit: whatever the process
// writes, the server's memory stays bounded (the rest is read and dropped, so it never blocks).
import { finished, type Readable } from 'node:stream'

import type { Container } from '@ns/core'

export interface Captured {
  exitCode: number
  signal: string | null
  timedOut: boolean
  stdout: string
  stderr: string
  truncated: boolean
  durationMs: number
  warnings?: string[]
}

interface Drained {
  text: string
  truncated: boolean
}

const nothing: Drained = { text: '', truncated: false }

/** Read `s` to its end, keeping its first `max` bytes. */
function drain(s: Readable | null, max: number): Promise<Drained> {
  if (!s) return Promise.resolve(nothing)
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let truncated = false
    s.on('data', (b: Buffer) => {
      const room = max - size
      if (b.length > room) {
        truncated = true
        if (room <= 0) return
        b = b.subarray(0, room)
      }
      chunks.push(b)
      size += b.length
    })
    finished(s, { writable: false }, (err) =>
      err ? reject(err) : resolve({ text: Buffer.concat(chunks, size).toString('utf8'), truncated }),
    )
  })
}

/** Feed `input`, collect both streams, wait for the end. */
export async function capture(
  c: Container,
  input: string | undefined,
  maxBytes: number,
  t0: number,
): Promise<Captured> {
  if (c.stdin) c.stdin.end(input ?? '')
  const [out, err, exit] = await Promise.all([drain(c.stdout, maxBytes), drain(c.stderr, maxBytes), c.exited])
  return {
    exitCode: exit.exitCode,
    signal: exit.signal,
    timedOut: exit.timedOut,
    stdout: out.text,
    stderr: err.text,
    truncated: out.truncated || err.truncated,
    durationMs: Math.round((performance.now() - t0) * 10) / 10,
    ...(c.warnings.length ? { warnings: c.warnings } : {}),
  }
}

/** The stdio and stop conditions of a process the server runs to completion. */
export interface CapturedRunOptions {
  stdin: 'pipe' | 'ignore'
  stdout: 'pipe'
  stderr: 'pipe'
  timeout: number
  signal: AbortSignal
}

/**
 * Start a process (in a slot of the concurrency bound) with pipes, a timeout and a signal that
 * fires when the client leaves or the server stops, and capture it.
 */
export async function runCaptured(
  slots: { with<T>(f: () => Promise<T>): Promise<T> },
  start: (o: CapturedRunOptions) => Container,
  input: string | undefined,
  timeout: number,
  signal: AbortSignal,
  maxOutputBytes: number,
): Promise<Captured> {
  return slots.with(async () => {
    const t0 = performance.now()
    const p = start({ stdin: input !== undefined ? 'pipe' : 'ignore', stdout: 'pipe', stderr: 'pipe', timeout, signal })
    return capture(p, input, maxOutputBytes, t0)
  })
}
