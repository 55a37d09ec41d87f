// Unit tests of how the image commands show images and a pull's progress (pure: no store).
import { describe, expect, it, vi } from 'vitest'

import type { PullEvent } from '@ns/core'

import { bar, humanSize, imageRows, pullProgress, splitName } from './image-output.js'

const digest = `sha256:${'ab'.repeat(32)}`
const layer = (
  status: Extract<PullEvent, { type: 'layer' }>['status'],
  bytes: number,
  elapsedMs = 1000,
): PullEvent => ({
  type: 'layer',
  status,
  reference: 'r',
  digest,
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  bytes,
  total: 4_000_000,
  elapsedMs,
})

function sink(isTTY: boolean) {
  const chunks: string[] = []
  return { out: { isTTY, write: (s: string) => chunks.push(s) } as unknown as NodeJS.WriteStream, chunks }
}

describe('ns images and ns pull output', () => {
  it('sizes as docker prints them, names as repository and tag', () => {
    expect([humanSize(999), humanSize(1000), humanSize(4_200_000), humanSize(123_456_789)]).toEqual([
      '999B',
      '1.00kB',
      '4.20MB',
      '123MB',
    ])
    expect(splitName('127.0.0.1:5000/ns/app:1')).toEqual(['127.0.0.1:5000/ns/app', '1'])
    expect(splitName('localhost/x@sha256:00')).toEqual(['localhost/x', '<none>'])
    expect(bar(1, 4, 8)).toBe('[##......]')
  })

  it('an image without a name is listed once as <none>', () => {
    const rows = imageRows([{ id: digest, names: [], size: 1000, created: '2026-01-02T03:04:05Z' } as never])
    expect(rows[1]).toEqual(['<none>', '<none>', 'abababababab', '2026-01-02 03:04:05Z', '1.00kB'])
  })

  it('not on a terminal: one line per layer event, the bytes as they come left out', () => {
    const { out, chunks } = sink(false)
    const p = pullProgress(out)
    for (const e of [
      layer('resolved', 0),
      layer('downloading', 1_000_000),
      layer('verified', 4_000_000),
      layer('complete', 4_000_000, 2000),
    ])
      p(e)
    expect(chunks.join('')).toBe(
      'abababababab: waiting 4.00MB\nabababababab: verified 4.00MB\nabababababab: pulled 4.00MB in 2.0s\n',
    )
  })

  it("on a terminal: the layer's line is redrawn in place with a bar, bytes, speed and time left", () => {
    const { out, chunks } = sink(true)
    const p = pullProgress(out)
    vi.useFakeTimers({ now: 0 })
    try {
      p(layer('resolved', 0))
      // Bytes within 100 ms of the last drawing wait for the next one.
      vi.setSystemTime(50)
      p(layer('downloading', 500_000, 500))
      vi.setSystemTime(200)
      p(layer('downloading', 1_000_000, 1000))
    } finally {
      vi.useRealTimers()
    }
    expect(chunks).toHaveLength(2)
    expect(chunks[1]).toBe('\x1b[1A\r\x1b[Kabababababab: [#####...............] 1.00MB/4.00MB 1.00MB/s 3s left\n')
  })
})
