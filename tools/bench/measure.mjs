// How tools/bench.mjs measures a list of contenders: a first run of each (one that cannot run
// is skipped), untimed warm-up runs, then timed rounds, each running every contender once in
// an order that rotates from one round to the next and is reshuffled after each full turn.

import { rotatingRounds } from '../bench-common.mjs'
import { reasonFrom } from './processes.mjs'

/** A contender: `key`, `label`, `family`, `net`, `skipped` (or null) and `once()`, which resolves { ms, ok, ... }. */
export function contender(c) {
  return { samples: [], failures: 0, lastError: '', skipped: null, ...c }
}

export const activeIn = (list) => list.filter((c) => !c.skipped)

function noteFailure(c, r) {
  c.failures++
  c.lastError = reasonFrom(r.stderr, `exit ${r.code ?? '?'}${r.signal ? ` (${r.signal})` : ''}`)
}

/** A first run of each contender: one that cannot run at all is skipped. */
export async function firstRuns(list) {
  for (const c of activeIn(list)) {
    const r = await c.once()
    if (!r.ok) {
      c.skipped = reasonFrom(r.stderr, `exit ${r.code ?? '?'}`)
      if (c.family === 'wrapper') {
        // Without a wrapper, crun's rows cannot be corrected either.
        for (const d of list) if (d.family === 'crun' && !d.skipped) d.skipped = `crun wrapper failed: ${c.skipped}`
      }
    }
  }
}

/**
 * Warm-up, then interleaved timed rounds over the contenders of `list` that
 * can run, until `stopped()`. Returns { rounds, elapsed, warmupFailures, stopped }.
 */
export async function measure(list, { iterations, warmup, tag, shuffle, stopped }) {
  const started = Date.now()
  for (let w = 0; w < warmup && !stopped(); w++) {
    for (const c of activeIn(list)) {
      if (stopped()) break
      const r = await c.once()
      if (!r.ok) noteFailure(c, r)
    }
  }
  const warmupFailures = new Map(list.map((c) => [c.key, c.failures]))
  for (const c of list) c.failures = 0

  const rounds = await rotatingRounds({
    iterations,
    active: () => activeIn(list),
    shuffle,
    stopped,
    async each(c) {
      const r = await c.once()
      if (r.ok) c.samples.push(r.ms)
      else noteFailure(c, r)
    },
    after(i) {
      if (process.stderr.isTTY && (i + 1) % 10 === 0) {
        process.stderr.write(`\r  ${tag}${i + 1}/${iterations} rounds, ${((Date.now() - started) / 1000).toFixed(0)} s`)
      }
    },
  })
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K')
  return { rounds, elapsed: (Date.now() - started) / 1000, warmupFailures, stopped: rounds < iterations }
}
