import { defineCommand } from '../command.js'
import { eachId } from '../containers.js'

export default defineCommand({
  description: 'wait for containers to end; print their exit codes',
  args: [['<id...>']],
  flags: {},
  action: ([ids], _o, ctx) =>
    eachId(ids as string[], ctx, async (c) => {
      const e = await c.wait()
      process.stdout.write(`${e.exitCode ?? 128 + (e.signal ?? 0)}\n`)
    }),
})
