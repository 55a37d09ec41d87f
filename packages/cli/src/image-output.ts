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

/**
 * A line per layer of a pull, on stderr: when it is found, then its bytes as they come (on a
 * terminal the line is rewritten in place, at most every 100 ms; elsewhere only its end is
 * printed), then done.
 */
export function pullProgress(out: NodeJS.WriteStream = process.stderr): (e: PullEvent) => void {
  const tty = out.isTTY === true
  let shown = 0
  let live = false
  const line = (s: string, transient = false) => {
    if (live) out.write('\r\x1b[K')
    out.write(transient ? s : `${s}\n`)
    live = transient
  }
  return (e) => {
    if (e.type === 'resolved') line(`${e.reference}: resolved ${e.digest} (${e.platform}, ${e.layers.length} layers)`)
    else if (e.type === 'layer') {
      const id = shortId(e.digest)
      if (e.status === 'exists') line(`${id}: already in the store`)
      else if (e.status === 'downloading' && tty && Date.now() - shown >= 100) {
        shown = Date.now()
        line(`${id}: downloading ${humanSize(e.bytes)}/${humanSize(e.total)}`, true)
      } else if (e.status === 'retrying') line(`${id}: retrying (attempt ${e.attempt ?? '?'}): ${e.error ?? ''}`)
      else if (e.status === 'complete')
        line(`${id}: pulled ${humanSize(e.total)} in ${(e.elapsedMs / 1000).toFixed(1)}s`)
    } else if (e.type === 'complete' && live) line('')
  }
}

/** With an image, for `ns run`/`ns create`: the store of `ns --store`, and a pull's progress on stderr. */
export function imageOptions(ctx: CommandContext): Partial<RunOptions> {
  const store = ctx.store()
  return { ...(store !== undefined ? { images: openImages({ store }) } : {}), onPull: pullProgress() }
}
