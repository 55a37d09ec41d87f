import { networks } from '@ns/core'

import { defineCommand } from '../command.js'
import { report } from '../output.js'

export default defineCommand({
  description: 'remove networks (refused while containers are attached to one)',
  args: [['<name...>']],
  flags: {},
  action([names]) {
    const nets = networks()
    let code = 0
    for (const n of names as string[]) {
      try {
        nets.remove(n)
        process.stdout.write(`${n}\n`)
      } catch (e) {
        code = report(e)
      }
    }
    return code
  },
})
