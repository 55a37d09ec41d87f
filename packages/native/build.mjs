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
  'napi',
  'build',
  '--platform',
  '--release',
  '--no-dts-cache',
  '--manifest-path',
  join(root, 'crates', 'ns-native', 'Cargo.toml'),
  '--package-json-path',
  join(here, 'package.json'),
  '--output-dir',
  here,
  '--js',
  'index.js',
  '--dts',
  'index.d.ts',
])
// ns-oci is linked statically where the toolchain can (glibc's static-pie): every container
// starts it, and a static binary skips the dynamic loader's relocations and page faults
// (about 10% of its start-up). It uses nothing of glibc that needs dynamic loading (no NSS).
// Elsewhere, or should that fail, the usual dynamic build.
let built = join(root, 'target', 'release', 'ns-oci')
const host = /^host: (\S+)$/m.exec(execFileSync('rustc', ['-vV'], { encoding: 'utf8' }))?.[1]
let linkedStatically = false
if (host && host.endsWith('-linux-gnu') && process.env.NS_DYNAMIC_HELPER === undefined) {
  const staticDir = join(root, 'target', 'static')
  try {
    execFileSync(
      'cargo',
      [
        'build',
        '--release',
        '-p',
        'ns-oci',
        '--target',
        host,
        '--target-dir',
        staticDir,
        '--manifest-path',
        join(root, 'Cargo.toml'),
      ],
      {
        cwd: here,
        stdio: 'inherit',
        env: { ...process.env, RUSTFLAGS: `${process.env.RUSTFLAGS ?? ''} -C target-feature=+crt-static`.trim() },
      },
    )
    built = join(staticDir, host, 'release', 'ns-oci')
    linkedStatically = true
  } catch {
    process.stderr.write('build: a static ns-oci could not be built; using the dynamic one\n')
  }
}
if (!linkedStatically) run('cargo', ['build', '--release', '-p', 'ns-oci', '--manifest-path', join(root, 'Cargo.toml')])
mkdirSync(join(here, 'bin'), { recursive: true })
// Replaced by a rename, never written in place: monitors of running containers execute it.
const dest = join(here, 'bin', 'ns-oci')
copyFileSync(built, `${dest}.new`)
chmodSync(`${dest}.new`, 0o755)
renameSync(`${dest}.new`, dest)
