import { networks } from '@ns/core'

import { defineCommand } from '../command.js'
import { bool } from '../flags.js'

export default defineCommand({
  description:
    'give back what containers that are gone left (addresses, ports, devices, names), then remove networks without containers',
  flags: { keepNetworks: bool('--keep-networks', 'only give back what dead containers left; remove no network') },
  action(_args, o) {
    const nets = networks()
    if (o.keepNetworks) {
      const r = nets.reconcile()
      for (const e of r.errors) process.stderr.write(`ns: ${e.message}\n`)
      return r.errors.length ? 1 : 0
    }
    const r = nets.prune()
    for (const e of r.reconciled.errors) process.stderr.write(`ns: ${e.message}\n`)
    process.stdout.write(r.removed.map((n) => `${n}\n`).join(''))
    return r.reconciled.errors.length ? 1 : 0
  },
})
