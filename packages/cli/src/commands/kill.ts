import { defineCommand } from '../command.js'
import { eachId } from '../containers.js'
import { bool, value } from '../flags.js'

export default defineCommand({
  description: 'send a signal to containers',
  args: [['<id...>']],
  flags: {
    signal: value('-s, --signal <signal>', 'signal name or number', { default: 'SIGKILL' }),
    all: bool('-a, --all', 'to every process in the container, not only the first'),
  },
  action: ([ids], o, ctx) =>
    eachId(ids as string[], ctx, (c) => c.kill((o.signal ?? 'SIGKILL') as NodeJS.Signals, { all: o.all ?? false })),
})
