import { networks } from '@ns/core'

import { defineCommand } from '../command.js'
import { bool, value } from '../flags.js'
import { table } from '../output.js'

export default defineCommand({
  description: 'list networks',
  flags: {
    quiet: bool('-q, --quiet', 'only names'),
    format: value('--format <format>', 'table or json', { choices: ['table', 'json'], default: 'table' }),
  },
  action(_args, o) {
    const all = networks().list()
    if (o.quiet) process.stdout.write(all.map((n) => `${n.name}\n`).join(''))
    else if (o.format === 'json') process.stdout.write(`${JSON.stringify(all)}\n`)
    else {
      const rows = [['NAME', 'BRIDGE', 'SUBNETS', 'INTERNAL', 'DNS']]
      for (const n of all)
        rows.push([
          n.name,
          n.definition.bridge,
          n.definition.subnets.map((s) => s.subnet).join(','),
          String(n.internal),
          String(n.dns),
        ])
      process.stdout.write(table(rows))
    }
  },
})
