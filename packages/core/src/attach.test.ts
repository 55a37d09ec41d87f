// The attach socket's frames as a client writes them, read back by a unix socket server in the
// monitor's place (no container involved).
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { attachTo } from './attach.js'
import { frameKinds, maxFramePayload, stateFiles } from './generated/facts.js'

const dir = mkdtempSync(join(tmpdir(), 'ns-attach-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The frames in what a client sent: [kind, payload]. */
function frames(received: Buffer): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = []
  for (let at = 0; at < received.length;) {
    const len = received.readUInt32BE(at + 1)
    out.push([received[at]!, received.subarray(at + 5, at + 5 + len)])
    at += 5 + len
  }
  return out
}

describe('attach frames', () => {
  it('keys go out in frames no larger than the monitor takes, and a resize is rows then columns', async () => {
    const keys = Buffer.alloc(2 * maxFramePayload + 7, 'k')
    const expected = 3 * 5 + keys.length + 5 + 4
    let resolveGot!: (b: Buffer) => void
    const got = new Promise<Buffer>((r) => (resolveGot = r))
    const server = createServer((s: Socket) => {
      const chunks: Buffer[] = []
      let n = 0
      s.on('data', (d: Buffer) => {
        chunks.push(d)
        n += d.length
        if (n >= expected) resolveGot(Buffer.concat(chunks))
      })
    })
    await new Promise<void>((r) => server.listen(join(dir, stateFiles.attachSocket), r))
    const a = await attachTo(dir, 'c')
    a.write(keys)
    a.resize(120, 33)
    const f = frames(await got)
    a.close()
    server.close()
    expect(f.map(([kind, p]) => [kind, p.length])).toEqual([
      [frameKinds.input, maxFramePayload],
      [frameKinds.input, maxFramePayload],
      [frameKinds.input, 7],
      [frameKinds.resize, 4],
    ])
    expect(Buffer.concat(f.slice(0, 3).map(([, p]) => p)).equals(keys)).toBe(true)
    expect([f[3]![1].readUInt16BE(0), f[3]![1].readUInt16BE(2)]).toEqual([33, 120])
  })
})
