// Every command of `ns`, by name, in the order `ns --help` lists them. A command is a file of its
// own in this folder; adding one is adding its file and its line here. Only the command typed is
// loaded (with what it imports).
import type { CommandSpec } from '../command.js'

export interface CommandEntry {
  name: string
  aliases?: readonly string[]
  /** A subcommand's command (`network` for `ns network create`). */
  parent?: string
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
  { name: 'create', parent: 'network', load: () => import('./network-create.js') },
  { name: 'ls', parent: 'network', aliases: ['list'], load: () => import('./network-ls.js') },
  { name: 'inspect', parent: 'network', load: () => import('./network-inspect.js') },
  { name: 'rm', parent: 'network', aliases: ['remove'], load: () => import('./network-rm.js') },
  { name: 'prune', parent: 'network', load: () => import('./network-prune.js') },
]

/** The commands that have subcommands, with their help. */
export const parents: Readonly<Record<string, string>> = {
  network: 'container networks: bridges with their addresses, names (DNS), NAT and published ports',
}

/** The options of `ns` itself that take a value (they come before the command's name). */
const globalWithValue = new Set(['--root', '--store'])

/** The operands in `args` (the arguments after `ns`), past the options of ns itself, up to `--`. */
function operands(args: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--') break
    if (out.length === 0 && globalWithValue.has(a)) i++
    else if (!a.startsWith('-') || a === '-') out.push(a)
  }
  return out
}

/**
 * The name of the command in `args` (the arguments after `ns`): the first operand, past the
 * options of ns itself. Undefined when there is none (`ns --version`, `ns`).
 */
export function commandName(args: readonly string[]): string | undefined {
  return operands(args)[0]
}

const named = (c: CommandEntry, name: string | undefined) =>
  c.name === name || (c.aliases?.includes(name ?? '') ?? false)

/** The commands to load for `args`: the one named, or all of them (for help, or an unknown name). */
export function commandsFor(args: readonly string[]): readonly CommandEntry[] {
  const [name, sub] = operands(args)
  if (name === undefined && (args.includes('-V') || args.includes('--version'))) return []
  if (name !== undefined && Object.hasOwn(parents, name)) {
    const children = commands.filter((c) => c.parent === name)
    const one = children.filter((c) => named(c, sub))
    return one.length ? one : children
  }
  const top = commands.filter((c) => c.parent === undefined && named(c, name))
  return top.length ? top : commands
}
