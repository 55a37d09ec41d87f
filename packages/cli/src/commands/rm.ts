import { defineCommand } from '../command.js'
import { eachId } from '../containers.js'
import { bool } from '../flags.js'

export default defineCommand({
  description: 'remove containers and everything they took',
  args: [['<id...>']],
  flags: { force: bool('-f, --force', 'kill running ones first') },
  action: ([ids], o, ctx) =>
    eachId(ids as string[], ctx, async (c) => {
      await c.delete({ force: o.force ?? false })
      process.stdout.write(`${c.id}\n`)
    }),
})
