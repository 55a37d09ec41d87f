#!/usr/bin/env node
'use strict'
// `ns`: the bundle of the command line (dist/ns.cjs), compiled with its V8 code cache when
// there is one that fits this Node; the plain build (dist/index.js) when there is no bundle.
// A CommonJS script (see package.json here): Node starts it without its ES module loader.
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const vm = require('node:vm')

const dist = join(__dirname, '..', 'dist')
const bundle = join(dist, 'ns.cjs')

function load() {
  let source
  try {
    source = readFileSync(bundle, 'utf8')
  } catch {
    return null
  }
  let cachedData
  try {
    cachedData = readFileSync(`${bundle}.cache`)
  } catch {
    // no cache: compiled from source
  }
  // The wrapper is build.mjs's, character for character.
  const wrapped = `(function (exports, require, module, __filename, __dirname, __nsImport) {${source}\n})`
  const script = new vm.Script(wrapped, { filename: bundle, cachedData })
  const mod = { exports: {} }
  // import() of the bundle's own cannot run in a script compiled with a cache: ours is given.
  // Its require resolves as from dist/ (the same node_modules above).
  script.runInThisContext()(mod.exports, require, mod, bundle, dist, (s) => import(s))
  return mod.exports
}

const ns = load()
;(ns ? Promise.resolve(ns) : import('../dist/index.js'))
  .then(({ main }) => main(process.argv))
  .then((code) => {
    process.exitCode = code
  })
