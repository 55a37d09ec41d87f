import { get, list, type ContainerState } from '@ns/core'

import { defineCommand } from '../command.js'
import { bool, value } from '../flags.js'
import { table } from '../output.js'

const shortTime = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')

function statusText(s: ContainerState): string {
  if (s.status !== 'stopped' || !s.exit) return s.status
  return s.exit.signal ? `exited (signal ${s.exit.signal})` : `exited (${s.exit.exitCode})`
}

export default defineCommand({
  description: 'list containers (running and paused ones; -a for all)',
  flags: {
    all: bool('-a, --all', 'show stopped and created containers too'),
    quiet: bool('-q, --quiet', 'only ids'),
    format: value('--format <format>', 'table or json', { choices: ['table', 'json'], default: 'table' }),
  },
  action(_args, o, ctx) {
    const root = ctx.root()
    const all = list(root).filter((s) => o.all || s.status === 'running' || s.status === 'paused')
    if (o.quiet) process.stdout.write(all.map((s) => `${s.id}\n`).join(''))
    else if (o.format === 'json') process.stdout.write(`${JSON.stringify(all)}\n`)
    else {
      const rows = [['ID', 'STATUS', 'PID', 'CREATED', 'COMMAND']]
      for (const s of all) {
        let command = ''
        try {
          command = (get(s.id, root).inspect().config?.process.args ?? []).join(' ')
        } catch {
          command = ''
        }
        rows.push([s.id, statusText(s), String(s.pid ?? '-'), shortTime(s.created), command])
      }
      process.stdout.write(table(rows))
    }
  },
})
