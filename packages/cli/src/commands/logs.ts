import { get, NsError } from '@ns/core'

import { defineCommand } from '../command.js'
import { bool, value } from '../flags.js'

export default defineCommand({
  description: "print a container's output",
  args: [['<id>']],
  flags: {
    follow: bool('-f, --follow', 'keep printing what it writes until it ends'),
    tail: value('--tail <n>', 'only the last N lines'),
    since: value('--since <time>', 'only lines written since this time (ISO 8601, or seconds ago like 10s, 5m)'),
    timestamps: bool('-t, --timestamps', 'prefix each line with its time'),
  },
  async action([id], o, ctx) {
    const c = get(id as string, ctx.root())
    const opts: { tail?: number; since?: Date } = {}
    if (o.tail !== undefined) {
      const n = Number(o.tail)
      if (!/^\d+$/.test(o.tail) || !Number.isSafeInteger(n)) throw NsError.invalid('--tail', 'must be a whole number')
      opts.tail = n
    }
    if (o.since !== undefined) {
      const rel = /^(\d+)([smh])$/.exec(o.since)
      const t = rel
        ? new Date(Date.now() - Number(rel[1]) * { s: 1e3, m: 6e4, h: 3.6e6 }[rel[2] as 's' | 'm' | 'h'])
        : new Date(o.since)
      if (Number.isNaN(t.getTime()))
        throw NsError.invalid('--since', 'must be a time (ISO 8601) or a duration like 10s')
      opts.since = t
    }
    const print = (e: { time: string; stream: string; log: string }) =>
      (e.stream === 'stderr' ? process.stderr : process.stdout).write(o.timestamps ? `${e.time} ${e.log}` : e.log)
    if (o.follow) for await (const e of c.follow(opts)) print(e)
    else for (const e of c.logs(opts)) print(e)
  },
})
