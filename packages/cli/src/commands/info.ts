import { hostInfo } from '@ns/core'

import { defineCommand } from '../command.js'

export default defineCommand({
  description: 'what this host allows: user namespaces, cgroup layout',
  flags: {},
  action() {
    process.stdout.write(`${JSON.stringify(hostInfo(), null, 2)}\n`)
  },
})
