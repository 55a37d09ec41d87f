// A process in the foreground (`ns run`, `ns exec`): signals for ns are for it.
import type { Container } from '@ns/core'

import { warn } from './output.js'

const forwarded: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH']

/**
 * Start a foreground process and wait for it; signals for us are for it: pass them on. The
 * handlers are in place before it starts, so a signal that comes at once is not lost (nor
 * kills us, and with us the container); one that comes while an image is made ready (a pull) is
 * passed on once the container is there. Returns its exit status.
 */
export async function runForwarding(
  start: () => Container | Promise<Container>,
  timeoutSeconds?: string,
): Promise<number> {
  let c: Container | undefined
  const early: NodeJS.Signals[] = []
  const forward = (sig: NodeJS.Signals) => (c ? void c.kill(sig) : early.push(sig))
  for (const s of forwarded) process.on(s, forward)
  try {
    c = await start()
    const started = c
    started.started.then(
      () => warn(started.warnings),
      () => {},
    )
    for (const sig of early) void c.kill(sig)
    const r = await c.exited
    if (r.timedOut) process.stderr.write(`ns: timed out after ${timeoutSeconds}s; killed\n`)
    if (r.oomKilled) process.stderr.write('ns: killed by the OOM killer: the container reached its memory limit\n')
    return r.exitCode
  } finally {
    for (const s of forwarded) process.off(s, forward)
  }
}
