import { NsError } from '@ns/core'

import { defineCommand } from '../command.js'
import { eachId } from '../containers.js'
import { value } from '../flags.js'

export const stopFlags = {
  time: value('-t, --time <seconds>', 'seconds to wait before SIGKILL', { default: '10' }),
}

/** `ns stop --time` -> the grace period `Container.stop` takes, in milliseconds. */
export function stopGraceMs(time: string | undefined): number {
  const given = time ?? '10'
  const t = Number(given)
  if (!/^\d+(\.\d*)?$/.test(given) || !Number.isFinite(t))
    throw NsError.invalid('--time', 'must be a number of seconds')
  return t * 1000
}

export default defineCommand({
  description: 'stop containers: SIGTERM, then SIGKILL after a grace period',
  args: [['<id...>']],
  flags: stopFlags,
  action([ids], o, ctx) {
    const grace = stopGraceMs(o.time)
    return eachId(ids as string[], ctx, async (c) => {
      await c.stop(grace)
      process.stdout.write(`${c.id}\n`)
    })
  },
})
