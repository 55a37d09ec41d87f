// Builds the native side: the napi addon (index.js, index.d.ts, *.node) and the ns-oci helper
// binary (bin/ns-oci), both in release mode.
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, renameSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const run = (cmd, args) => execFileSync(cmd, args, { cwd: here, stdio: 'inherit' })

run('npx', [
  'napi', 'build', '--platform', '--release', '--no-dts-cache',
  '--manifest-path', join(root, 'crates', 'ns-native', 'Cargo.toml'),
  '--package-json-path', join(here, 'package.json'),
  '--output-dir', here, '--js', 'index.js', '--dts', 'index.d.ts',
])
run('cargo', ['build', '--release', '-p', 'ns-oci', '--manifest-path', join(root, 'Cargo.toml')])
mkdirSync(join(here, 'bin'), { recursive: true })
// Replaced by a rename, never written in place: monitors of running containers execute it.
const dest = join(here, 'bin', 'ns-oci')
copyFileSync(join(root, 'target', 'release', 'ns-oci'), `${dest}.new`)
chmodSync(`${dest}.new`, 0o755)
renameSync(`${dest}.new`, dest)
