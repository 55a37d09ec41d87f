// Every command of `ns`, by name, in the order `ns --help` lists them. A command is a file of its
// own in this folder; adding one is adding its file and its line here. Only the command typed is
// loaded (with what it imports).
import type { CommandSpec } from '../command.js'

export interface CommandEntry {
  name: string
  aliases?: readonly string[]
  load(): Promise<{ default: CommandSpec }>
}

export const commands: readonly CommandEntry[] = [
  { name: 'run', load: () => import('./run.js') },
  { name: 'create', load: () => import('./create.js') },
  { name: 'exec', load: () => import('./exec.js') },
  { name: 'start', load: () => import('./start.js') },
  { name: 'ps', aliases: ['ls'], load: () => import('./ps.js') },
  { name: 'logs', load: () => import('./logs.js') },
  { name: 'stop', load: () => import('./stop.js') },
  { name: 'kill', load: () => import('./kill.js') },
  { name: 'pause', load: () => import('./pause.js') },
  { name: 'unpause', load: () => import('./unpause.js') },
  { name: 'update', load: () => import('./update.js') },
  { name: 'rm', load: () => import('./rm.js') },
  { name: 'attach', load: () => import('./attach.js') },
  { name: 'wait', load: () => import('./wait.js') },
  { name: 'inspect', load: () => import('./inspect.js') },
  { name: 'serve', load: () => import('./serve.js') },
  { name: 'info', load: () => import('./info.js') },
  { name: 'pull', load: () => import('./pull.js') },
  { name: 'images', load: () => import('./images.js') },
  { name: 'image', load: () => import('./image.js') },
  { name: 'rmi', load: () => import('./rmi.js') },
  { name: 'tag', load: () => import('./tag.js') },
  { name: 'load', load: () => import('./load.js') },
  { name: 'save', load: () => import('./save.js') },
]

/** The options of `ns` itself that take a value (they come before the command's name). */
const globalWithValue = new Set(['--root', '--store'])

/**
 * The name of the command in `args` (the arguments after `ns`): the first operand, past the
 * options of ns itself. Undefined when there is none (`ns --version`, `ns`).
 */
export function commandName(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--') return undefined
    if (globalWithValue.has(a)) i++
    else if (!a.startsWith('-') || a === '-') return a
  }
  return undefined
}

/** The commands to load for `args`: the one named, or all of them (for help, or an unknown name). */
export function commandsFor(args: readonly string[]): readonly CommandEntry[] {
  const name = commandName(args)
  if (name === undefined && (args.includes('-V') || args.includes('--version'))) return []
  const named = commands.filter((c) => c.name === name || c.aliases?.includes(name ?? ''))
  return named.length ? named : commands
}
