import { networks } from '@ns/core'

import { defineCommand } from '../command.js'
import { report } from '../output.js'

export default defineCommand({
  description: 'a network as JSON: its definition, bridge, containers and the sysctls ns set',
  args: [['<name...>']],
  flags: {},
  action([names]) {
    const nets = networks()
    const out: unknown[] = []
    let code = 0
    for (const n of names as string[]) {
      try {
        out.push(nets.inspect(n))
      } catch (e) {
        code = report(e)
      }
    }
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
    return code
  },
})
