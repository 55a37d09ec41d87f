// The processes tools/bench.mjs times: spawned, timed to their end, killed after a time-out,
// and tracked while they run so that the clean-up on the way out can kill what is left.

import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { lastLine } from '../bench-common.mjs'

export const RUN_TIMEOUT_MS = 15_000

const live = new Set()

/** SIGKILL every timed process still running (for the clean-up on the way out). */
export function killLive() {
  for (const child of live) {
    try {
      child.kill('SIGKILL')
    } catch {
      /* already gone */
    }
  }
}

/** Last meaningful line of a stderr, shortened, for "skipped: <reason>". */
export const reasonFrom = (stderr, fallback) => lastLine(stderr, fallback, 160)

/**
 * Spawn a command and time it from spawn() to 'close' (exit and stdio closed).
 * Resolves { ms, ok, code, signal, stderr }; never rejects.
 */
export function timedSpawn(argv) {
  return new Promise((resolve) => {
    let stderr = ''
    let done = false
    const t0 = process.hrtime.bigint()
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(child)
    const timer = setTimeout(() => {
      stderr += `\n(timed out after ${RUN_TIMEOUT_MS} ms)`
      child.kill('SIGKILL')
    }, RUN_TIMEOUT_MS)
    child.stdout.resume()
    child.stderr.on('data', (d) => {
      if (stderr.length < 8192) stderr += d
    })
    const finish = (code, signal, error) => {
      if (done) return
      done = true
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      clearTimeout(timer)
      live.delete(child)
      if (error) stderr += `\n${error.message}`
      resolve({ ms, ok: !error && code === 0, code, signal, stderr })
    }
    child.on('error', (err) => finish(null, null, err))
    child.on('close', (code, signal) => finish(code, signal))
  })
}

export function quietSync(argv) {
  return spawnSync(argv[0], argv.slice(1), { stdio: 'ignore', timeout: RUN_TIMEOUT_MS })
}

/**
 * Spawn a command with stdin and stdout on /dev/null and stderr on `errFd` (a
 * file), and time it from spawn() to its 'exit' event. Not 'close': an OCI
 * `create` leaves the container's process holding the stdio it inherited, so
 * no pipe may be handed out, and no pipe is waited for.
 * Resolves { ms, ok, code, signal, error }; never rejects.
 */
export function spawnToExit(argv, errFd) {
  return new Promise((resolve) => {
    let done = false
    let timer = null
    let child = null
    const t0 = process.hrtime.bigint()
    const finish = (code, signal, error) => {
      if (done) return
      done = true
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      clearTimeout(timer)
      if (child) live.delete(child)
      resolve({ ms, ok: !error && code === 0, code, signal, error: error ? error.message : null })
    }
    try {
      child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', errFd] })
    } catch (err) {
      finish(null, null, err)
      return
    }
    live.add(child)
    timer = setTimeout(() => {
      finish(null, 'SIGKILL', new Error(`timed out after ${RUN_TIMEOUT_MS} ms`))
      child.kill('SIGKILL')
    }, RUN_TIMEOUT_MS)
    child.on('error', (err) => finish(null, null, err))
    child.on('exit', (code, signal) => finish(code, signal))
  })
}

/** What a failed step left in its stderr file, as one line. */
export function errorFrom(errFile, r, what) {
  let text = ''
  try {
    text = readFileSync(errFile, 'utf8')
  } catch {
    /* none */
  }
  if (r.error) text += `\n${r.error}`
  const how = `exit ${r.code ?? '?'}${r.signal ? ` (${r.signal})` : ''}`
  return `${what}: ${reasonFrom(text, how)}`
}

let nextId = 0
/** A container name no other run of this process uses: `<prefix>-<pid>-<n>`. */
export const uniqueId = (prefix) => `${prefix}-${process.pid}-${nextId++}`
