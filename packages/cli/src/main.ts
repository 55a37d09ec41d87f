// Entry point of `ns`.
import { CommanderError, program, USAGE_ERROR } from './program.js'
import { checkProcessArguments } from './argv.js'
import { report } from './output.js'

/** Run `ns` with `argv` (as `process.argv`); returns the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  let code = 0
  try {
    if (argv === process.argv) checkProcessArguments(argv.slice(2))
    const cli = await program(argv, (c) => (code = c))
    await cli.parseAsync([...argv])
    return code
  } catch (e) {
    // Usage errors (an unknown option, a missing argument) were printed by commander.
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : USAGE_ERROR
    return report(e)
  }
}
