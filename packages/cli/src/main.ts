// Entry point of `ns`.
import { badProcessArgument } from './argv.js'
import { CommanderError, program, USAGE_ERROR } from './program.js'

/** Run `ns` with `argv` (as `process.argv`); returns the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  let code = 0
  try {
    const bad = argv === process.argv ? badProcessArgument(argv.slice(2)) : undefined
    if (bad) throw (await import('./errors.js')).argumentError(bad.index, bad.shown)
    const cli = await program(argv, (c) => (code = c))
    await cli.parseAsync([...argv])
    return code
  } catch (e) {
    // Usage errors (an unknown option, a missing argument) were printed by commander.
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : USAGE_ERROR
    return (await import('./output.js')).report(e)
  }
}
