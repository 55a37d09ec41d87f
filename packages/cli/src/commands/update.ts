import { limitResources, NsError, type LimitOptions } from '@ns/core'

import { defineCommand } from '../command.js'
import { eachId } from '../containers.js'
import { applyFlags, type FlagValues } from '../flags.js'
import { containerFlags, processContext, type RunDraft } from './run-flags.js'

/** The limits `run` takes that a living container's cgroup takes again: the same flags. */
export const updateFlags = {
  memory: containerFlags.memory,
  memorySwap: containerFlags.memorySwap,
  pidsLimit: containerFlags.pidsLimit,
  cpus: containerFlags.cpus,
  cpuShares: containerFlags.cpuShares,
  cpusetCpus: containerFlags.cpusetCpus,
  blkioWeight: containerFlags.blkioWeight,
}

/** `ns update` flags -> the limits `DetachedContainer.update` takes. */
export function limitsFromFlags(flags: FlagValues<typeof updateFlags>): LimitOptions {
  const d = applyFlags<RunDraft>(updateFlags, flags, { options: {}, ctx: processContext() })
  if (Object.keys(d.options).length === 0)
    throw NsError.invalid('flags', 'give at least one limit (-m, --memory-swap, --pids-limit, --cpus, ...)')
  const limits = d.options as LimitOptions
  // Checked before any container is touched, so that an error names the flag.
  limitResources(limits)
  return limits
}

export default defineCommand({
  description: 'change the limits of running containers (those of a container with limits)',
  args: [['<id...>']],
  flags: updateFlags,
  action([ids], o, ctx) {
    const limits = limitsFromFlags(o)
    return eachId(ids as string[], ctx, async (c) => {
      await c.update(limits)
      process.stdout.write(`${c.id}\n`)
    })
  },
})
