// Node decodes its arguments as UTF-8 and puts U+FFFD for bytes that are not: `ns run -- cat
// $'\xff'` would open another file than the one typed. The bytes are checked against the
// kernel's copy of the command line, and such an argument is refused, named.
import { readFileSync } from 'node:fs'

const strict = new TextDecoder('utf-8', { fatal: true })

/** An argument shown with its bytes that are not UTF-8 as `\xNN`. */
function shown(raw: Uint8Array): string {
  let out = ''
  let i = 0
  while (i < raw.length) {
    // The longest valid UTF-8 sequence from i (at most 4 bytes), else one byte escaped.
    let n = 0
    for (let len = Math.min(4, raw.length - i); len > 0 && n === 0; len--) {
      try {
        strict.decode(raw.subarray(i, i + len))
        n = len
      } catch {
        // not a whole character
      }
    }
    if (n === 0) out += `\\x${raw[i]!.toString(16).padStart(2, '0')}`
    else out += strict.decode(raw.subarray(i, i + n))
    i += n || 1
  }
  return out
}

/** An argument that is not valid UTF-8: its place (from 1) and its bytes shown. */
export interface BadArgument {
  index: number
  shown: string
}

/**
 * The first argument of `args` whose bytes, in `raw` (the same arguments as the kernel has
 * them, the last ones of its command line), are not valid UTF-8, if any.
 */
export function badArgument(args: readonly string[], raw: readonly Uint8Array[]): BadArgument | undefined {
  const from = raw.length - args.length
  if (from < 0) return undefined
  for (let i = 0; i < args.length; i++) {
    const bytes = raw[from + i]!
    try {
      strict.decode(bytes)
    } catch {
      return { index: i + 1, shown: shown(bytes) }
    }
  }
  return undefined
}

/** This process's command line as the kernel has it, argument by argument; undefined if unreadable. */
export function rawCommandLine(): Uint8Array[] | undefined {
  let buf: Buffer
  try {
    buf = readFileSync('/proc/self/cmdline')
  } catch {
    return undefined
  }
  const out: Uint8Array[] = []
  let start = 0
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === 0) {
      out.push(buf.subarray(start, i))
      start = i + 1
    }
  }
  if (start < buf.length) out.push(buf.subarray(start))
  return out
}

/** The check, for this process's own arguments (a U+FFFD among them is the only sign of a bad byte). */
export function badProcessArgument(args: readonly string[]): BadArgument | undefined {
  if (!args.some((a) => a.includes('\ufffd'))) return undefined
  const raw = rawCommandLine()
  return raw ? badArgument(args, raw) : undefined
}
