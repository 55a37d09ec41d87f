// What turns failures into NsErrors and reports them: loaded when something has failed (or by a
// command, which has @ns/core loaded anyway), so that `ns --version` loads none of @ns/core.
import { NsError } from '@ns/core'

import { flagName, type FlagTable } from './flags.js'

export { NsError }

/**
 * An error of @ns/core about a field one of the table's flags set, told as being about that
 * flag and the value given (`--volume "x:/../y": ...` rather than `volumes[0]: ...`). Any other
 * error is returned as it is.
 */
export function asFlagError(table: FlagTable<any>, values: Record<string, unknown>, error: unknown): unknown {
  // The server is loaded apart from the bundle (`ns serve`): its NsErrors are of another copy of the class.
  const ours = error instanceof NsError || (error instanceof Error && error.name === 'NsError')
  const e = error as NsError
  if (!ours || !e.field) return error
  const field = e.field
  for (const [key, f] of Object.entries(table)) {
    const given = values[key]
    if (!f.field || given === undefined) continue
    const rest = (typeof f.field === 'string' ? [f.field] : f.field)
      .map((name) => (field.startsWith(name) ? field.slice(name.length) : undefined))
      .find((r) => r !== undefined && (r === '' || r[0] === '[' || r[0] === '.'))
    if (rest === undefined) continue
    const index = /^\[(\d+)\]/.exec(rest)
    const v = Array.isArray(given) ? (index ? given[Number(index[1])] : undefined) : given
    const name = flagName(f)
    const reason = e.message.startsWith(`${field}: `) ? e.message.slice(field.length + 2) : e.message
    return new NsError({
      code: e.code,
      message: `${name}${typeof v === 'string' ? ` ${JSON.stringify(v)}` : ''}: ${reason}`,
      field: name,
      step: e.step,
      path: e.path,
      errno: e.errno,
      hint: e.hint,
      exitCode: e.exitCode,
    })
  }
  return error
}

/** The error for an argument that is not valid UTF-8 (see argv.ts). */
export function argumentError(index: number, shown: string): NsError {
  return new NsError({
    code: 'EILSEQ',
    field: `argument ${index}`,
    step: 'read arguments',
    message: `argument ${index} is not valid UTF-8: "${shown}" (refused rather than passed on changed)`,
  })
}
