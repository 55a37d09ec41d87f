// Flags are declared once, in a table per command: the table gives commander its options, the
// TypeScript type of the values parsed, and (for `run` and `create`) the mapping onto @ns/core
// options, each flag's `apply` naming the flag in its errors.
import { Option, type Command } from 'commander'

/** What a flag takes: nothing (a switch), one value, or a value each time it is given. */
export type FlagKind = 'boolean' | 'value' | 'list'

type ValueOf<K extends FlagKind> = K extends 'boolean' ? boolean : K extends 'list' ? string[] : string

export interface Flag<K extends FlagKind = FlagKind, T = never> {
  kind: K
  /** commander's form: `-m, --memory <size>`, `--read-only`, `--no-init`. */
  spec: string
  help: string
  /** For a switch: the help of its `--no-` form, declared with it (`--read-only`, `--no-read-only`). */
  negate?: string
  default?: string
  choices?: readonly string[]
  /**
   * The option of @ns/core this flag sets (`memory`, `volumes`), and any field of the spec it
   * becomes: an error @ns/core gives about one of them is told as being about this flag.
   */
  field?: string | readonly string[]
  /** Put the flag's value into the options being built; throws an NsError naming the flag. */
  apply?(value: ValueOf<K>, into: T): void
}

export type FlagTable<T = never> = Record<string, Flag<FlagKind, T>>

/** The values commander parsed for a table (those not given are undefined). */
export type FlagValues<F> = {
  [N in keyof F]?: F[N] extends Flag<infer K, infer _T> ? ValueOf<K> : never
}

/** A switch. */
export function bool<T = never>(
  spec: string,
  help: string,
  more: Partial<Flag<'boolean', T>> = {},
): Flag<'boolean', T> {
  return { kind: 'boolean', spec, help, ...more }
}

/** A flag with one value (the last one given wins). */
export function value<T = never>(spec: string, help: string, more: Partial<Flag<'value', T>> = {}): Flag<'value', T> {
  return { kind: 'value', spec, help, ...more }
}

/** A flag that may be given many times: its values in order. */
export function list<T = never>(spec: string, help: string, more: Partial<Flag<'list', T>> = {}): Flag<'list', T> {
  return { kind: 'list', spec, help: `${help} (repeatable)`, ...more }
}

const collect = (v: string, prev: string[] = []) => [...prev, v]

/** The long name a flag is given by (`--memory`), for messages. */
export function flagName(f: Flag<FlagKind, any>): string {
  const o = new Option(f.spec)
  return o.long ?? o.short ?? f.spec
}

/** Declare every flag of `table` on `cmd`. */
export function addFlags(cmd: Command, table: FlagTable<any>): Command {
  for (const f of Object.values(table)) {
    const o = new Option(f.spec, f.help)
    if (f.kind === 'list') o.argParser(collect)
    if (f.default !== undefined) o.default(f.default)
    if (f.choices) o.choices(f.choices)
    cmd.addOption(o)
    if (f.negate) cmd.addOption(new Option(`--no-${o.long!.slice(2)}`, f.negate))
  }
  return cmd
}

/** Apply each flag given (in the table's order) to `into`. */
export function applyFlags<T>(table: FlagTable<T>, values: Record<string, unknown>, into: T): T {
  for (const [key, f] of Object.entries(table)) {
    const v = values[key]
    if (v !== undefined && f.apply) (f.apply as (v: unknown, into: T) => void)(v, into)
  }
  return into
}

/**
 * Whether the operands of a command in `args` (the arguments after `ns`) begin after a `--`,
 * with nothing but options before it: `ns run -m 64m -- sh` (true), `ns run alpine sh` (false).
 * The options of ns itself and the command's own are skipped with their values.
 */
export function operandsAfterDashDash(
  args: readonly string[],
  entry: { name: string; aliases?: readonly string[] | undefined },
  table: FlagTable<any>,
): boolean {
  const takesValue = new Set<string>(['--root', '--store'])
  for (const f of Object.values(table)) {
    if (f.kind === 'boolean') continue
    const o = new Option(f.spec)
    if (o.long) takesValue.add(o.long)
    if (o.short) takesValue.add(o.short)
  }
  let seenCommand = false
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--') return seenCommand
    if (!a.startsWith('-') || a === '-') {
      if (seenCommand) return false
      if (a === entry.name || entry.aliases?.includes(a)) seenCommand = true
      continue
    }
    if (a.startsWith('--')) {
      if (!a.includes('=') && takesValue.has(a)) i++
      continue
    }
    // Short flags, maybe grouped (`-it`): the last one takes the next argument when it takes a
    // value and nothing follows it in the group.
    for (let k = 1; k < a.length; k++) {
      if (takesValue.has(`-${a[k]}`)) {
        if (k === a.length - 1) i++
        break
      }
    }
  }
  return false
}
