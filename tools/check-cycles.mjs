#!/usr/bin/env node
// Module cycles in the Rust crates: `node tools/check-cycles.mjs [REPO]` reads every
// `crates/*/src/**/*.rs` of REPO (default: this repository), builds per crate the graph of which
// module refers to which, and exits 1 naming each cycle it finds (with the line of every edge),
// 0 when there is none. `npm run check` runs it.
//
// A node is a module of its own file (`src/spec.rs` is `spec`, `src/helper/mod.rs` is `helper`,
// `src/helper/prepare.rs` is `helper::prepare`); a module written inline (`mod tests { … }`) is
// part of its file. An edge is a path that names another module: `crate::a::b::Item` (in a `use`
// tree, braces expanded, or anywhere in code), `super::…`, `self::…`, and in a `use` a first
// segment that is a child module of the file's own (`use prepare::Prepared` in `helper/mod.rs`).
// A path goes to the deepest module file it names, so `crate::helper::prepare::Prepared` is an
// edge to `helper::prepare`, not to `helper`. Declaring a module (`mod x;`) is not an edge, and
// the crate root (lib.rs, main.rs) is left out: it declares every module and re-exports some,
// and its own items (`crate::VERSION`) are the crate's leaves. Comments, strings and character
// literals are blanked before anything is read, so a path in a doc comment is no edge.

import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/

// ------------------------------------------------------------------ reading the source

/** Replace comments, strings and char literals with spaces (newlines kept, for line numbers). */
export function blank(src) {
  const out = src.split('')
  const wipe = (from, to) => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' '
  }
  const identChar = (c) => c !== undefined && /[A-Za-z0-9_]/.test(c)
  let i = 0
  while (i < src.length) {
    const c = src[i]
    const next = src[i + 1]
    if (c === '/' && next === '/') {
      let j = src.indexOf('\n', i)
      if (j < 0) j = src.length
      wipe(i, j)
      i = j
    } else if (c === '/' && next === '*') {
      let depth = 1
      let j = i + 2
      while (j < src.length && depth > 0) {
        if (src[j] === '/' && src[j + 1] === '*') {
          depth++
          j += 2
        } else if (src[j] === '*' && src[j + 1] === '/') {
          depth--
          j += 2
        } else j++
      }
      wipe(i, j)
      i = j
    } else if ((c === 'r' || (c === 'b' && next === 'r')) && !identChar(src[i - 1])) {
      // A raw string: r"…", r#"…"#, br"…".
      const m = /^b?r(#*)"/.exec(src.slice(i, i + 260))
      if (!m) {
        i++
        continue
      }
      const close = '"' + m[1]
      let j = src.indexOf(close, i + m[0].length)
      j = j < 0 ? src.length : j + close.length
      wipe(i, j)
      i = j
    } else if (c === '"') {
      let j = i + 1
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1
      wipe(i, j + 1)
      i = j + 1
    } else if (c === "'") {
      // A char literal ('x', '\n', '\u{1F600}', '\''), else a lifetime or label ('a, 'outer).
      const m = /^'(?:\\u\{[0-9A-Fa-f]+\}|\\x[0-9A-Fa-f]{2}|\\.|[^\\'\n])'/.exec(src.slice(i, i + 12))
      if (m) {
        wipe(i, i + m[0].length)
        i += m[0].length
      } else i++
    } else i++
  }
  return out.join('')
}

/** The line of offset `at` in `text` (1-based). */
function lineOf(text, at) {
  let n = 1
  for (let k = 0; k < at; k++) if (text.charCodeAt(k) === 10) n++
  return n
}

/**
 * Expand a `use` tree (`crate::a::{b, c::{d, e as f}, self}`) into its full paths, each an array
 * of segments (`self` in a group names the group's own path).
 */
export function expandUse(tree) {
  const s = tree.replace(/\s+/g, ' ').trim()
  let pos = 0
  const peek = () => s[pos]
  const skipSpace = () => {
    while (s[pos] === ' ') pos++
  }
  function parseTree(prefix) {
    skipSpace()
    const segs = [...prefix]
    for (;;) {
      skipSpace()
      if (peek() === '{') {
        pos++
        const paths = []
        for (;;) {
          skipSpace()
          if (peek() === '}') {
            pos++
            break
          }
          const before = pos
          paths.push(...parseTree(segs))
          skipSpace()
          if (peek() === ',') pos++
          // Something this reader does not know (a macro's fragment): skip it, never loop.
          else if (pos === before || pos >= s.length) pos++
          if (pos >= s.length) break
        }
        return paths
      }
      const m = /^(\*|(?:r#)?[A-Za-z_][A-Za-z0-9_]*|::)/.exec(s.slice(pos))
      if (!m) return segs.length ? [segs] : []
      if (m[1] === '::') {
        pos += 2
        continue
      }
      pos += m[1].length
      const seg = m[1].replace(/^r#/, '')
      // `*` adds nothing; `self` first in a group (`{self, …}`) is the group's own path.
      const groupSelf = seg === 'self' && prefix.length > 0 && segs.length === prefix.length
      if (seg !== '*' && !groupSelf) segs.push(seg)
      skipSpace()
      const alias = /^as [A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(pos))
      if (alias) pos += alias[0].length
      skipSpace()
      if (peek() !== ':' && peek() !== '{') return [segs]
    }
  }
  return parseTree([])
}

// ------------------------------------------------------------------ one crate

/** The module path of a source file, relative to `src` (`helper/prepare.rs` -> `helper::prepare`). */
function modulePath(rel) {
  const parts = rel.replace(/\.rs$/, '').split(path.sep)
  const last = parts[parts.length - 1]
  if (parts.length === 1 && (last === 'lib' || last === 'main')) return ''
  if (last === 'mod') parts.pop()
  return parts.join('::')
}

function rustFiles(dir) {
  const out = []
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name)
    if (statSync(p).isDirectory()) out.push(...rustFiles(p))
    else if (name.endsWith('.rs')) out.push(p)
  }
  return out
}

/**
 * The graph of one crate: `{ modules: Set<string>, edges: Map<from, Map<to, where>> }`, where
 * `where` is the first place in the file (`{ file, at, text }`) that makes the edge.
 */
export function crateGraph(src) {
  const files = rustFiles(src)
    .map((f) => ({ file: f, module: modulePath(path.relative(src, f)) }))
    .filter((f) => !path.relative(src, f.file).startsWith('bin' + path.sep))
  const modules = new Set(files.map((f) => f.module))
  const edges = new Map()

  // The deepest module that `segs` (absolute, from the crate root) names.
  const resolve = (segs) => {
    let cur = ''
    for (const seg of segs) {
      const child = cur ? `${cur}::${seg}` : seg
      if (!modules.has(child)) break
      cur = child
    }
    return cur
  }
  const parentOf = (m) => (m.includes('::') ? m.slice(0, m.lastIndexOf('::')) : '')

  for (const { file, module } of files) {
    if (module === '') continue
    const text = blank(readFileSync(file, 'utf8'))
    const add = (target, at) => {
      if (target === '' || target === module) return
      if (!edges.has(module)) edges.set(module, new Map())
      const out = edges.get(module)
      const seen = out.get(target)
      if (!seen || at < seen.at) out.set(target, { file, at, text })
    }
    // Where inline modules begin and end, so that `super::` inside `mod tests { … }` is known to
    // mean this file's module itself.
    const inline = []
    {
      const stack = []
      let depth = 0
      const re = /\bmod\s+[A-Za-z_][A-Za-z0-9_]*\s*\{|[{}]/g
      let m
      while ((m = re.exec(text))) {
        if (m[0] === '}') {
          depth--
          if (stack.length && stack[stack.length - 1].depth === depth) {
            const open = stack.pop()
            inline.push([open.at, m.index])
          }
        } else {
          if (m[0] !== '{') stack.push({ at: m.index, depth })
          depth++
        }
      }
    }
    const inlineDepth = (at) => inline.filter(([a, b]) => a < at && at < b).length

    // An absolute module path for a path as written in this file (null: not a module path).
    const absolute = (segs, at, inUse) => {
      let base
      let rest = segs
      if (segs[0] === 'crate') {
        base = ''
        rest = segs.slice(1)
      } else if (segs[0] === 'self') {
        base = module
        rest = segs.slice(1)
      } else if (segs[0] === 'super') {
        // Inside an inline module, the first `super` climbs out of it only.
        let levels = 0
        while (rest[0] === 'super') {
          levels++
          rest = rest.slice(1)
        }
        base = module
        for (let k = Math.min(levels, inlineDepth(at)); k < levels; k++) base = parentOf(base)
      } else if (inUse && modules.has(module ? `${module}::${segs[0]}` : segs[0])) {
        base = module
      } else return null
      return [...(base ? base.split('::') : []), ...rest]
    }

    // `use` trees, braces and all.
    const uses = /\buse\s+([^;]*);/g
    let m
    const spans = []
    while ((m = uses.exec(text))) {
      spans.push([m.index, m.index + m[0].length])
      for (const segs of expandUse(m[1])) {
        if (!segs.length || !segs.every((x) => IDENT.test(x))) continue
        const abs = absolute(segs, m.index, true)
        if (abs) add(resolve(abs), m.index)
      }
    }
    // Paths in code: `crate::x::y`, `super::x`, `self::x` (not `$crate::`).
    const paths = /(?<![$\w])(crate|super|self)((?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)/g
    while ((m = paths.exec(text))) {
      const at = m.index
      if (spans.some(([a, b]) => a <= at && at < b)) continue
      const segs = [
        m[1],
        ...m[2]
          .split('::')
          .map((x) => x.trim())
          .filter(Boolean),
      ]
      const abs = absolute(segs, at, false)
      if (abs) add(resolve(abs), at)
    }
  }
  return { modules, edges }
}

// ------------------------------------------------------------------ cycles

/** Strongly connected components of more than one module (Tarjan), each as a sorted list. */
export function cycles(graph) {
  const { modules, edges } = graph
  let index = 0
  const idx = new Map()
  const low = new Map()
  const onStack = new Set()
  const stack = []
  const found = []
  const visit = (v) => {
    idx.set(v, index)
    low.set(v, index)
    index++
    stack.push(v)
    onStack.add(v)
    for (const w of (edges.get(v) ?? new Map()).keys()) {
      if (!idx.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v), low.get(w)))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)))
    }
    if (low.get(v) === idx.get(v)) {
      const scc = []
      let w
      do {
        w = stack.pop()
        onStack.delete(w)
        scc.push(w)
      } while (w !== v)
      if (scc.length > 1) found.push(scc.sort())
    }
  }
  for (const v of [...modules].sort()) if (!idx.has(v)) visit(v)
  return found
}

/** One shortest loop through the component, from its first module back to it. */
function loopIn(graph, scc) {
  const inside = new Set(scc)
  const start = scc[0]
  const prev = new Map([[start, null]])
  const queue = [start]
  while (queue.length) {
    const v = queue.shift()
    for (const w of (graph.edges.get(v) ?? new Map()).keys()) {
      if (!inside.has(w)) continue
      if (w === start) {
        const loop = [v]
        for (let p = prev.get(v); p !== null; p = prev.get(p)) loop.unshift(p)
        return [...loop, start]
      }
      if (!prev.has(w)) {
        prev.set(w, v)
        queue.push(w)
      }
    }
  }
  return [start]
}

// ------------------------------------------------------------------ main

function main() {
  const repo = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'))
  const crates = path.join(repo, 'crates')
  let bad = 0
  let checked = 0
  for (const name of readdirSync(crates).sort()) {
    const src = path.join(crates, name, 'src')
    try {
      if (!statSync(src).isDirectory()) continue
    } catch {
      continue
    }
    checked++
    const graph = crateGraph(src)
    for (const scc of cycles(graph)) {
      bad++
      const loop = loopIn(graph, scc)
      console.error(`${name}: module cycle: ${loop.join(' -> ')}`)
      for (let k = 0; k + 1 < loop.length; k++) {
        const { file, at, text } = graph.edges.get(loop[k]).get(loop[k + 1])
        console.error(`  ${loop[k]} -> ${loop[k + 1]}  (${path.relative(process.cwd(), file)}:${lineOf(text, at)})`)
      }
      console.error(`  all ${scc.length} modules of this cycle: ${scc.join(', ')}`)
    }
  }
  if (checked === 0) {
    console.error(`check-cycles: no crates/*/src under ${repo}`)
    process.exit(2)
  }
  if (bad > 0) process.exit(1)
  console.log(`check-cycles: no module cycle in ${checked} crates`)
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main()
