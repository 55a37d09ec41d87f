import { get } from '@ns/core'

import { defineCommand } from '../command.js'
import { list, bool, value } from '../flags.js'
import { runForwarding } from '../foreground.js'

export default defineCommand({
  description: "run a command in a running container (it joins all the container's namespaces)",
  args: [
    ['[id]', 'the container'],
    ['[command...]', 'the program and its arguments (put them after --)'],
  ],
  flags: {
    env: list('-e, --env <key[=value]>', 'set an environment variable; KEY alone passes on yours, if set', {
      field: 'env',
    }),
    workdir: value('-w, --workdir <dir>', 'working directory inside', { field: 'cwd' }),
    user: value('-u, --user <uid[:gid]>', 'user and group inside', { field: 'user' }),
    tty: bool('-t, --tty', 'give the command a terminal'),
    interactive: bool('-i, --interactive', 'keep stdin open (it always is)'),
  },
  passThrough: true,
  async action([id, command], o, ctx) {
    const container = get(id as string, ctx.root())
    const env = (o.env ?? []).flatMap((e) =>
      e.includes('=') ? [e] : process.env[e] !== undefined ? [`${e}=${process.env[e]}`] : [],
    )
    return runForwarding(() =>
      container.exec({
        command: command as string[],
        ...(o.env ? { env } : {}),
        ...(o.workdir !== undefined ? { cwd: o.workdir } : {}),
        ...(o.user !== undefined ? { user: o.user } : {}),
        ...(o.tty ? { tty: true } : {}),
        stdin: 'inherit',
        stdout: 'inherit',
        stderr: 'inherit',
      }),
    )
  },
})
