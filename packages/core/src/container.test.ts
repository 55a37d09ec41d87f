// Unit tests of how a helper's events are read: split into bounded lines, then checked field by
// field (no helper is started; the end-to-end cases are in test/escape.test.ts).
import type { Socket } from 'node:net'
import { PassThrough } from 'node:stream'

import { describe, expect, it } from 'vitest'

import { parseEvent, readLines } from './container.js'

/** Feed `chunks` to readLines over a stream; what it called, in order. */
async function linesOf(chunks: Array<string | Buffer>, maxLine?: number): Promise<string[]> {
  const input = new PassThrough()
  const calls: string[] = []
  const ended = new Promise<void>((resolve) =>
    readLines(
      input as unknown as Socket,
      (l) => calls.push(`line ${l}`),
      () => {
        calls.push('end')
        resolve()
      },
      () => calls.push('too long'),
      maxLine,
    ),
  )
  for (const c of chunks) input.write(c)
  input.end()
  await ended
  return calls
}

describe("reading a helper's lines", () => {
  it('splits at newlines across chunks, the last line without one included', async () => {
    expect(await linesOf(['a\nb', 'c\n', '\nd'])).toEqual(['line a', 'line bc', 'line ', 'line d', 'end'])
  })

  it('decodes a character split between two chunks once the line is whole', async () => {
    const bytes = Buffer.from('é\n')
    expect(await linesOf([bytes.subarray(0, 1), bytes.subarray(1)])).toEqual(['line é', 'end'])
  })

  it('stops at a line longer than the limit, whether or not its newline ever comes, and reads no more', async () => {
    expect(await linesOf(['ok\n', 'x'.repeat(9), 'x\nafter\n'], 8)).toEqual(['line ok', 'too long', 'end'])
    expect(await linesOf(['ok\n', 'x'.repeat(6), 'x'.repeat(6)], 8)).toEqual(['line ok', 'too long', 'end'])
    // Exactly the limit is a line.
    expect(await linesOf(['x'.repeat(8) + '\n'], 8)).toEqual([`line ${'x'.repeat(8)}`, 'end'])
  })
})

describe("checking a helper's events", () => {
  it('takes the events of the protocol', () => {
    expect(parseEvent('{"event":"started","pid":42}')).toEqual({ event: 'started', pid: 42 })
    expect(parseEvent('{"event":"exited","exitCode":3,"signal":null,"oomKilled":false}')).toMatchObject({
      exitCode: 3,
    })
    expect(
      parseEvent('{"event":"error","error":{"code":"EPERM","message":"failed to mount /proc","errno":1}}'),
    ).toMatchObject({ error: { code: 'EPERM' } })
  })

  it('refuses what is not JSON, not an object, not one of its events, or a field of the wrong type', () => {
    for (const bad of [
      'not json',
      '[1,2]',
      'null',
      '"started"',
      '{"event":"hello"}',
      '{"pid":1}',
      '{"event":"started","pid":"1"}',
      '{"event":"started","pid":1.5}',
      '{"event":"exited","exitCode":"zero"}',
      '{"event":"exited","exitCode":1e300}',
      '{"event":"exited","oomKilled":"yes"}',
      '{"event":"warning","message":7}',
      '{"event":"error"}',
      '{"event":"error","error":{"code":"EPERM"}}',
      '{"event":"error","error":{"code":1,"message":"m"}}',
      '{"event":"error","error":{"code":"E","message":"m","errno":"1"}}',
      '{"event":"error","error":{"code":"E","message":"m","step":{}}}',
    ])
      expect(parseEvent(bad), bad).toBeUndefined()
  })
})
