// The commander program of `ns`: ns's own options, and the commands, each from its file.
import { Command, CommanderError } from 'commander'

import type { CommandContext, CommandSpec } from './command.js'
import { commandsFor, type CommandEntry } from './commands/index.js'
import { addFlags, bool, operandsAfterDashDash } from './flags.js'
import { version } from './version.js'

/** The exit status of docker's own usage errors, and of ns's. */
export const USAGE_ERROR = 125

const help = { help: bool('-h, --help', 'display help for command') }

function define(
  cli: Command,
  entry: CommandEntry,
  spec: CommandSpec,
  done: (code: number) => void,
  argv: readonly string[],
): void {
  const c = cli.command(entry.name).description(spec.description)
  for (const a of entry.aliases ?? []) c.alias(a)
  for (const [a, d] of spec.args ?? []) c.argument(a, d)
  if (spec.passThrough) {
    // ns's options end at the program's name (or `--`); an -h after it is the program's. So
    // help is a flag of ours, looked at only when the parse has gone through.
    c.passThroughOptions().helpOption(false)
    addFlags(c, help)
  }
  addFlags(c, spec.flags)
  c.action(async (...params: unknown[]) => {
    const cmd = params.at(-1) as Command
    const flags = params.at(-2) as Record<string, unknown>
    const args = params.slice(0, -2)
    if (spec.passThrough && flags.help) {
      cmd.outputHelp()
      return done(0)
    }
    // After a first operand (exec's id) commander passes the rest on as it is: a `--` there
    // ends ns's options and is no part of the program.
    const last = args.at(-1)
    if (spec.passThrough && args.length === 2 && Array.isArray(last) && last[0] === '--') last.shift()
    // The operands are optional to commander (so that help can be asked for): checked here.
    if (spec.passThrough && args.length === 2 && args[0] === undefined) {
      cmd.error(`error: missing required argument 'id'`, { exitCode: USAGE_ERROR, code: 'ns.missingArgument' })
    }
    const dashDash = spec.passThrough === true && operandsAfterDashDash(argv.slice(2), entry, spec.flags)
    if (spec.passThrough && (args.at(-1) as string[]).length === 0) {
      // `ns run` takes an image or, after --, a command.
      const what =
        spec.image && !dashDash
          ? 'the command to run (put it after --), or an image'
          : 'the command to run (put it after --)'
      cmd.error(`error: missing ${what}`, {
        exitCode: USAGE_ERROR,
        code: 'ns.missingCommand',
      })
    }
    // @ns/core, from here on: the command runs.
    const { defaultRoot } = await import('./state.js')
    const ctx: CommandContext = {
      cmd,
      root: () => (cmd.optsWithGlobals() as { root?: string }).root ?? defaultRoot(),
      store: () => (cmd.optsWithGlobals() as { store?: string }).store,
      dashDash,
    }
    try {
      done((await spec.action(args, flags as never, ctx)) ?? 0)
    } catch (e) {
      throw (await import('./errors.js')).asFlagError(spec.flags, flags, e)
    }
  })
}

/**
 * The program for `argv` (as `process.argv`: node, script, arguments): with the command it names
 * loaded, or all of them when it names none. `done` is given the exit status of the action.
 */
export async function program(argv: readonly string[], done: (code: number) => void = () => {}): Promise<Command> {
  const cli = new Command('ns')
    .description('Run processes isolated by Linux namespaces.')
    .version(version, '-V, --version')
    .option('--root <dir>', 'state directory of containers (default: /run/ns as root, $XDG_RUNTIME_DIR/ns otherwise)')
    .option('--store <dir>', 'image store (default: /var/lib/ns as root, $XDG_DATA_HOME/ns otherwise)')
    .enablePositionalOptions()
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
  const entries = commandsFor(argv.slice(2))
  const specs = await Promise.all(entries.map((e) => e.load()))
  entries.forEach((e, i) => define(cli, e, specs[i]!.default, done, argv))
  return cli
}

export { CommanderError }
