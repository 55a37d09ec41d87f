// Commands that act on detached containers by id.
import { get, type DetachedContainer } from '@ns/core'

import type { CommandContext } from './command.js'
import { report } from './output.js'

/** Do `f` to each container in turn; an error is reported and the others still done. */
export async function eachId(
  ids: string[],
  ctx: CommandContext,
  f: (c: DetachedContainer) => Promise<void> | void,
): Promise<number> {
  let code = 0
  for (const id of ids) {
    try {
      await f(get(id, ctx.root()))
    } catch (e) {
      code = report(e)
    }
  }
  return code
}
