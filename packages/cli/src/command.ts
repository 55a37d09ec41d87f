// What a command of `ns` is: its arguments, its table of flags and its action. Each lives in a
// file of its own under commands/, loaded only when it is the command typed.
import type { Command } from 'commander'

import type { FlagTable, FlagValues } from './flags.js'

export interface CommandContext {
  /** The commander command, for its help. */
  cmd: Command
  /** The state root of detached containers: `ns --root DIR`, or @ns/core's default. */
  root(): string
  /** The image store: `ns --store DIR`, or @ns/core's default (undefined). */
  store(): string | undefined
  /** The operands came after a `--` (nothing but ns's options before it): `ns run -- CMD`. */
  dashDash: boolean
}

export interface CommandSpec<F extends FlagTable<any> = FlagTable<any>> {
  description: string
  /** commander's forms of the operands with their help: `['<id...>', 'container ids']`. */
  args?: ReadonlyArray<readonly [string, string?]>
  flags: F
  /**
   * The operands end with a program and its arguments: ns's options stop at its first operand
   * (and at `--`), and help is a flag of the table, so that an `-h` of the program is its own.
   */
  passThrough?: boolean
  /** With `passThrough`: the first operand may be an image (`ns run IMAGE CMD…`), unless after `--`. */
  image?: boolean
  /** Returns the exit status (0 when nothing is returned). */
  action(args: unknown[], flags: FlagValues<F>, ctx: CommandContext): Promise<number | void> | number | void
}

/** Declare a command (the identity, for the types of its flags). */
export function defineCommand<F extends FlagTable<any>>(spec: CommandSpec<F>): CommandSpec<F> {
  return spec
}
