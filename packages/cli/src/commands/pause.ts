import { defineCommand } from '../command.js'
import { eachId } from '../containers.js'

export default defineCommand({
  description: 'freeze every process of containers (a container with limits has the cgroup for it)',
  args: [['<id...>']],
  flags: {},
  action: ([ids], _o, ctx) => eachId(ids as string[], ctx, (c) => c.pause()),
})
