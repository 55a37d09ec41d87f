import { get, type ExecOptions } from '@ns/core'

import { defineCommand } from '../command.js'
import { envFromFlags } from '../env.js'
import { list, bool, value, type FlagValues } from '../flags.js'
import { runForwarding } from '../foreground.js'

export const execFlags = {
  env: list('-e, --env <key[=value]>', 'set an environment variable; KEY alone passes on yours, if set', {
    field: 'env',
  }),
  workdir: value('-w, --workdir <dir>', 'working directory inside', { field: 'cwd' }),
  user: value('-u, --user <uid[:gid]>', 'user and group inside', { field: 'user' }),
  tty: bool('-t, --tty', 'give the command a terminal'),
  interactive: bool('-i, --interactive', 'keep stdin open (it always is)'),
}

/** `ns exec` flags -> the options of `Container.exec`: pure (the caller's environment is given). */
export function execOptionsFromFlags(
  command: string[],
  o: FlagValues<typeof execFlags>,
  callerEnv: Readonly<Record<string, string | undefined>>,
): ExecOptions {
  return {
    command,
    ...(o.env ? { env: envFromFlags(o.env, callerEnv) } : {}),
    ...(o.workdir !== undefined ? { cwd: o.workdir } : {}),
    ...(o.user !== undefined ? { user: o.user } : {}),
    ...(o.tty ? { tty: true } : {}),
    stdin: 'inherit',
    stdout: 'inherit',
    stderr: 'inherit',
  }
}

export default defineCommand({
  description: "run a command in a running container (it joins all the container's namespaces)",
  args: [
    ['[id]', 'the container'],
    ['[command...]', 'the program and its arguments (put them after --)'],
  ],
  flags: execFlags,
  passThrough: true,
  async action([id, command], o, ctx) {
    const container = get(id as string, ctx.root())
    return runForwarding(() => container.exec(execOptionsFromFlags(command as string[], o, process.env)))
  },
})
