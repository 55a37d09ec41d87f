// `-e KEY=VALUE` and `-e KEY` as docker reads them, for every command that takes -e.

/**
 * The environment entries `-e` gives: `KEY=VALUE` as written; `KEY` alone passes on the caller's
 * value, and nothing at all when the caller has none (as docker: unset here, unset inside).
 */
export function envFromFlags(given: readonly string[], caller: Readonly<Record<string, string | undefined>>): string[] {
  const env: string[] = []
  for (const e of given) {
    if (e.includes('=')) env.push(e)
    else if (caller[e] !== undefined) env.push(`${e}=${caller[e]}`)
  }
  return env
}
