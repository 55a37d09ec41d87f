import { get, NsError } from '@ns/core'

import { defineCommand } from '../command.js'
import { bool, value, type FlagValues } from '../flags.js'

export const logsFlags = {
  follow: bool('-f, --follow', 'keep printing what it writes until it ends'),
  tail: value('--tail <n>', 'only the last N lines'),
  since: value('--since <time>', 'only lines written since this time (ISO 8601, or seconds ago like 10s, 5m)'),
  timestamps: bool('-t, --timestamps', 'prefix each line with its time'),
}

const unit = { s: 1e3, m: 6e4, h: 3.6e6 } as const

/** `ns logs` flags -> the options of `Container.logs`/`follow`: pure (the time now is given). */
export function logOptionsFromFlags(o: FlagValues<typeof logsFlags>, now: number): { tail?: number; since?: Date } {
  const opts: { tail?: number; since?: Date } = {}
  if (o.tail !== undefined) {
    const n = Number(o.tail)
    if (!/^\d+$/.test(o.tail) || !Number.isSafeInteger(n)) throw NsError.invalid('--tail', 'must be a whole number')
    opts.tail = n
  }
  if (o.since !== undefined) {
    const rel = /^(\d+)([smh])$/.exec(o.since)
    const t = rel ? new Date(now - Number(rel[1]) * unit[rel[2] as keyof typeof unit]) : new Date(o.since)
    if (Number.isNaN(t.getTime())) throw NsError.invalid('--since', 'must be a time (ISO 8601) or a duration like 10s')
    opts.since = t
  }
  return opts
}

export default defineCommand({
  description: "print a container's output",
  args: [['<id>']],
  flags: logsFlags,
  async action([id], o, ctx) {
    const c = get(id as string, ctx.root())
    const opts = logOptionsFromFlags(o, Date.now())
    const print = (e: { time: string; stream: string; log: string }) =>
      (e.stream === 'stderr' ? process.stderr : process.stdout).write(o.timestamps ? `${e.time} ${e.log}` : e.log)
    if (o.follow) for await (const e of c.follow(opts)) print(e)
    else for (const e of c.logs(opts)) print(e)
  },
})
