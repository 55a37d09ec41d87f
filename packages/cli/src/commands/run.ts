import { create, spawn } from '@ns/core'

import { defineCommand } from '../command.js'
import { runForwarding } from '../foreground.js'
import { warn } from '../output.js'
import { runFlags, runOptionsFromFlags } from './run-flags.js'

export default defineCommand({
  description: "run a command isolated in new namespaces (default: a read-only sandbox of the host's files)",
  args: [['[command...]', 'the program and its arguments (put them after --)']],
  flags: runFlags,
  passThrough: true,
  async action([command], flags, ctx) {
    const r = runOptionsFromFlags(command as string[], flags)
    if (r.detach) {
      const c = await create({
        ...r.options,
        root: ctx.root(),
        ...(r.name !== undefined ? { name: r.name } : {}),
        ...(r.remove ? { remove: true } : {}),
      })
      warn(c.warnings)
      await c.start()
      process.stdout.write(`${c.id}\n`)
      return 0
    }
    return runForwarding(
      () => spawn({ ...r.options, stdin: 'inherit', stdout: 'inherit', stderr: 'inherit' }),
      flags.timeout,
    )
  },
})
