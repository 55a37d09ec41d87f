import { create } from '@ns/core'

import { defineCommand } from '../command.js'
import { warn } from '../output.js'
import { containerFlags, runOptionsFromFlags } from './run-flags.js'

export default defineCommand({
  description: 'create a container that waits for `ns start`; print its id',
  args: [['[command...]', 'the program and its arguments (put them after --)']],
  flags: containerFlags,
  passThrough: true,
  async action([command], flags, ctx) {
    const r = runOptionsFromFlags(command as string[], { ...flags, detach: true })
    const c = await create({
      ...r.options,
      root: ctx.root(),
      ...(r.name !== undefined ? { name: r.name } : {}),
      ...(r.remove ? { remove: true } : {}),
    })
    warn(c.warnings)
    process.stdout.write(`${c.id}\n`)
  },
})
