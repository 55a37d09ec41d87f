import { create, launch, spawn, type RunOptions } from '@ns/core'

import { defineCommand, type CommandContext } from '../command.js'
import { runForwarding } from '../foreground.js'
import { warn } from '../output.js'
import { imageAndCommand, runFlags, runOptionsFromFlags } from './run-flags.js'

/** With an image: its store and a pull's progress (the image code is loaded only then). */
export async function imageOptions(options: RunOptions, ctx: CommandContext): Promise<Partial<RunOptions>> {
  if (options.image === undefined) return {}
  return (await import('../image-output.js')).imageOptions(ctx)
}

export default defineCommand({
  description:
    "run a command isolated in new namespaces: ns run IMAGE [CMD...] runs an image, ns run -- CMD... a read-only sandbox of the host's files",
  args: [['[image-or-command...]', 'an image and its command, or after -- the program and its arguments']],
  flags: runFlags,
  passThrough: true,
  image: true,
  async action([operands], flags, ctx) {
    const { image, command } = imageAndCommand(operands as string[], ctx.dashDash)
    const r = runOptionsFromFlags(command, flags, undefined, image)
    const more = await imageOptions(r.options, ctx)
    if (r.detach) {
      const c = await create({
        ...r.options,
        ...more,
        root: ctx.root(),
        ...(r.name !== undefined ? { name: r.name } : {}),
        ...(r.remove ? { remove: true } : {}),
      })
      warn(c.warnings)
      await c.start()
      process.stdout.write(`${c.id}\n`)
      return 0
    }
    return runForwarding(() => {
      const o = { ...r.options, ...more, stdin: 'inherit', stdout: 'inherit', stderr: 'inherit' } as const
      // Without an image it starts at once (no promise to wait for: the fast path).
      return o.image === undefined ? spawn(o) : launch(o)
    }, flags.timeout)
  },
})
