// Build of @ns/cli: tsc (dist/, the library and its types), then one bundle of the command line
// (dist/ns.cjs: commander, @ns/core and the commands in one script, @ns/native and @ns/server
// left to load at run time) and its V8 code cache (dist/ns.cjs.cache), which bin/ns.js loads.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import vm from 'node:vm'

import { build } from 'esbuild'

const here = path.dirname(fileURLToPath(import.meta.url))
const bundle = path.join(here, 'dist', 'ns.cjs')

execFileSync(process.execPath, [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-b'], {
  cwd: here,
  stdio: 'inherit',
})

/**
 * Modules the bundle loads on first use rather than at start-up: the addon (not needed by
 * `ns --version`), and built-ins only some commands use. Each import of one gets a stand-in
 * whose properties are the module's (their names known here), each read loading it.
 */
const onFirstUse = ['@ns/native', 'node:crypto', 'node:net', 'node:child_process']
const require = createRequire(import.meta.url)
const lazy = {
  name: 'load-on-first-use',
  setup(b) {
    const filter = new RegExp(`^(${onFirstUse.map((m) => m.replace(/[/]/g, '\\/')).join('|')})$`)
    b.onResolve({ filter }, (args) =>
      args.namespace === 'on-first-use'
        ? { path: args.path, external: true }
        : { path: args.path, namespace: 'on-first-use' },
    )
    b.onLoad({ filter: /.*/, namespace: 'on-first-use' }, (args) => {
      const keys = Object.keys(require(args.path))
      return {
        loader: 'js',
        resolveDir: here,
        contents: `let m
const load = () => (m ??= require(${JSON.stringify(args.path)}))
const keys = ${JSON.stringify(keys)}
module.exports = new Proxy({}, {
  get: (_, k) => load()[k],
  has: (_, k) => keys.includes(k),
  ownKeys: () => keys,
  getOwnPropertyDescriptor: (_, k) => (keys.includes(k) ? { enumerable: true, configurable: true, get: () => load()[k] } : undefined),
})
`,
      }
    })
  },
}

await build({
  entryPoints: [path.join(here, 'src', 'bundle.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // The addon is loaded by its own loader; the server (for `ns serve` only) by import().
  external: ['@ns/server'],
  plugins: [lazy],
  minify: true,
  keepNames: true,
  logLevel: 'warning',
  legalComments: 'none',
})

// The code cache: compiled the way bin/ns.js compiles it, after a warm-up of the usual paths,
// so that the functions they run are in it too.
const source = readFileSync(bundle, 'utf8')
const script = new vm.Script(wrap(source), {
  filename: bundle,
})
const mod = { exports: {} }
script.runInThisContext()(mod.exports, createRequire(bundle), mod, bundle, path.dirname(bundle), (s) => import(s))
await mod.exports.warm()
writeFileSync(`${bundle}.cache`, script.createCachedData())

/** The module wrapper bin/ns.js uses (the same text, or the cache does not fit). */
function wrap(src) {
  return `(function (exports, require, module, __filename, __dirname, __nsImport) {${src}\n})`
}
