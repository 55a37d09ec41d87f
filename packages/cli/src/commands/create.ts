import { create } from '@ns/core'

import { defineCommand } from '../command.js'
import { warn } from '../output.js'
import { imageOptions } from './run.js'
import { containerFlags, imageAndCommand, runOptionsFromFlags } from './run-flags.js'

export default defineCommand({
  description: 'create a container that waits for `ns start` (of an image, or after -- a command); print its id',
  args: [['[image-or-command...]', 'an image and its command, or after -- the program and its arguments']],
  flags: containerFlags,
  passThrough: true,
  image: true,
  async action([operands], flags, ctx) {
    const { image, command } = imageAndCommand(operands as string[], ctx.dashDash)
    const r = runOptionsFromFlags(command, { ...flags, detach: true }, undefined, image)
    const c = await create({
      ...r.options,
      ...(await imageOptions(r.options, ctx)),
      root: ctx.root(),
      ...(r.name !== undefined ? { name: r.name } : {}),
      ...(r.remove ? { remove: true } : {}),
    })
    warn(c.warnings)
    process.stdout.write(`${c.id}\n`)
  },
})
