import { get, type DetachedContainer } from '@ns/core'

import { defineCommand } from '../command.js'

/** The keys that detach (ctrl-p ctrl-q), as docker's are. */
const DETACH_KEYS = Buffer.from([0x10, 0x11])

/** Your terminal in raw mode to the container's; its exit code when it ends. */
async function attach(c: DetachedContainer): Promise<number> {
  const a = await c.attach()
  const stdin = process.stdin
  const raw = stdin.isTTY === true
  const size = () => {
    if (process.stdout.isTTY && process.stdout.columns && process.stdout.rows)
      a.resize(process.stdout.columns, process.stdout.rows)
  }
  let detached = false
  let last = -1
  const onKeys = (chunk: Buffer) => {
    // ctrl-p then ctrl-q detaches; a lone ctrl-p is sent on with what follows.
    for (let i = 0; i < chunk.length; i++) {
      if (last === DETACH_KEYS[0] && chunk[i] === DETACH_KEYS[1]) {
        detached = true
        a.close()
        return
      }
      last = chunk[i]!
    }
    a.write(chunk)
  }
  if (raw) stdin.setRawMode(true)
  stdin.on('data', onKeys)
  process.on('SIGWINCH', size)
  size()
  a.output.pipe(process.stdout, { end: false })
  try {
    await a.closed
  } finally {
    process.off('SIGWINCH', size)
    stdin.off('data', onKeys)
    if (raw) stdin.setRawMode(false)
    stdin.pause()
  }
  if (detached) {
    process.stderr.write(`\r\nns: detached from ${c.id}; it goes on\r\n`)
    return 0
  }
  const e = await c.wait()
  return e.exitCode ?? 128 + (e.signal ?? 0)
}

export default defineCommand({
  description: 'attach your terminal to a container made with -t; ctrl-p ctrl-q detaches and leaves it running',
  args: [['<id>']],
  flags: {},
  action: ([id], _o, ctx) => attach(get(id as string, ctx.root())),
})
