import { defineCommand } from '../command.js'
import { eachId } from '../containers.js'

export default defineCommand({
  description: "config, state, namespaces (inode ids against the host's), processes and mounts, as JSON",
  args: [['<id...>']],
  flags: {},
  async action([ids], _o, ctx) {
    const out: unknown[] = []
    const code = await eachId(ids as string[], ctx, (c) => void out.push(c.inspect()))
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
    return code
  },
})
