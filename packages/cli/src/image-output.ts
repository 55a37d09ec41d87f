// What the image commands share: the store `ns --store` names, and how an image is shown.
import type { ImageInfo, Images, PullEvent, RunOptions } from '@ns/core'
import { openImages } from '@ns/core/images'

import type { CommandContext } from './command.js'

/** The image store of `ns --store DIR`, or @ns/core's default. */
export function storeOf(ctx: CommandContext): Images {
  const store = ctx.store()
  return openImages(store !== undefined ? { store } : {})
}

/** `1.2MB`, as docker prints sizes (powers of 1000). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let v = bytes
  let u = 0
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000
    u++
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)}${units[u]}`
}

/** The 12 hex digits of an id docker shows. */
export const shortId = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12)

/** A name as `repository` and `tag` columns (`<none>` for a name by digest only). */
export function splitName(name: string): [string, string] {
  const at = name.indexOf('@')
  const base = at >= 0 ? name.slice(0, at) : name
  const colon = base.lastIndexOf(':')
  if (colon > base.lastIndexOf('/')) return [base.slice(0, colon), base.slice(colon + 1)]
  return [base, '<none>']
}

/** The rows of `ns images`: one per name, and one for an image without any. */
export function imageRows(all: readonly ImageInfo[]): string[][] {
  const rows = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']]
  for (const i of all) {
    const created = i.created ? i.created.replace('T', ' ').replace(/(\.\d+)?Z$/, 'Z') : '-'
    const names = i.names.length ? i.names : ['<none>:<none>']
    for (const n of names) rows.push([...splitName(n), shortId(i.id), created, humanSize(i.size)])
  }
  return rows
}

/** `[#####.....]`: a bar of `width` cells for `part` of `whole`. */
export function bar(part: number, whole: number, width = 20): string {
  const filled = whole > 0 ? Math.min(width, Math.floor((part / whole) * width)) : 0
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`
}

/** What a layer's line says for an event of it: bytes, speed and time left while it downloads. */
export function layerLine(e: Extract<PullEvent, { type: 'layer' }>): string {
  const id = shortId(e.digest)
  const secs = e.elapsedMs / 1000
  switch (e.status) {
    case 'resolved':
      return `${id}: waiting ${humanSize(e.total)}`
    case 'exists':
      return `${id}: already in the store`
    case 'downloading': {
      const speed = secs > 0 ? e.bytes / secs : 0
      const eta = speed > 0 ? Math.ceil((e.total - e.bytes) / speed) : undefined
      return `${id}: ${bar(e.bytes, e.total)} ${humanSize(e.bytes)}/${humanSize(e.total)} ${humanSize(speed)}/s${eta !== undefined ? ` ${eta}s left` : ''}`
    }
    case 'retrying':
      return `${id}: retrying (attempt ${e.attempt ?? '?'}): ${e.error ?? ''}`
    case 'verified':
      return `${id}: verified ${humanSize(e.total)}`
    case 'complete':
      return `${id}: pulled ${humanSize(e.total)} in ${secs.toFixed(1)}s`
  }
}

/**
 * A pull's progress on stderr. On a terminal, a line per layer, redrawn in place (at most every
 * 100 ms while bytes come): a bar with the bytes, the speed and the time left. Elsewhere one
 * line per event of a layer, its bytes as they come left out.
 */
export function pullProgress(out: NodeJS.WriteStream = process.stderr): (e: PullEvent) => void {
  const tty = out.isTTY === true
  const lines = new Map<string, string>()
  let drawn = 0
  let last = 0
  const draw = () => {
    last = Date.now()
    let s = drawn ? `\x1b[${drawn}A` : ''
    for (const l of lines.values()) s += `\r\x1b[K${l}\n`
    drawn = lines.size
    out.write(s)
  }
  return (e) => {
    if (e.type === 'resolved') {
      out.write(`${e.reference}: resolved ${e.digest} (${e.platform}, ${e.layers.length} layers)\n`)
      return
    }
    if (e.type === 'complete') {
      if (tty && drawn) draw()
      return
    }
    if (e.type !== 'layer') return
    const text = layerLine(e)
    if (!tty) {
      if (e.status !== 'downloading') out.write(`${text}\n`)
      return
    }
    lines.set(e.digest, text)
    if (e.status !== 'downloading' || Date.now() - last >= 100) draw()
  }
}

/** With an image, for `ns run`/`ns create`: the store of `ns --store`, and a pull's progress on stderr. */
export function imageOptions(ctx: CommandContext): Partial<RunOptions> {
  const store = ctx.store()
  return { ...(store !== undefined ? { images: openImages({ store }) } : {}), onPull: pullProgress() }
}
