import { NsError } from '@ns/core'

import { defineCommand } from '../command.js'
import { eachId } from '../containers.js'
import { value } from '../flags.js'

export default defineCommand({
  description: 'stop containers: SIGTERM, then SIGKILL after a grace period',
  args: [['<id...>']],
  flags: { time: value('-t, --time <seconds>', 'seconds to wait before SIGKILL', { default: '10' }) },
  action([ids], o, ctx) {
    const t = Number(o.time ?? '10')
    if (!/^\d+(\.\d*)?$/.test(o.time ?? '10') || !Number.isFinite(t))
      throw NsError.invalid('--time', 'must be a number of seconds')
    return eachId(ids as string[], ctx, async (c) => {
      await c.stop(t * 1000)
      process.stdout.write(`${c.id}\n`)
    })
  },
})
