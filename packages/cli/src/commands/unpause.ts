import { defineCommand } from '../command.js'
import { eachId } from '../containers.js'

export default defineCommand({
  description: 'thaw paused containers',
  args: [['<id...>']],
  flags: {},
  action: ([ids], _o, ctx) => eachId(ids as string[], ctx, (c) => c.resume()),
})
