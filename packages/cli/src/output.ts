// What every command prints the same way: errors, warnings, tables.
import { NsError } from '@ns/core'

/** What was asked for and not done (best-effort limits), on stderr. */
export function warn(warnings: readonly string[]): void {
  for (const w of warnings) process.stderr.write(`ns: warning: ${w}\n`)
}

/** Print an error as `ns: <message>` (and its hint); returns the exit status it stands for. */
export function report(e: unknown): number {
  if (e instanceof NsError) {
    process.stderr.write(`ns: ${e.message}\n`)
    if (e.hint) process.stderr.write(`ns: hint: ${e.hint}\n`)
    return e.exitCode
  }
  process.stderr.write(`ns: ${(e as Error)?.message ?? String(e)}\n`)
  return 125
}

/** Columns padded to their widest cell; the last one is not padded. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2)))
          .join('')
          .trimEnd(),
      )
      .join('\n') + '\n'
  )
}
