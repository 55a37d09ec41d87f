// The entry of the bundle bin/ns.js loads (dist/ns.cjs, see build.mjs): `main`, and `warm`, run
// once at build time so that the code cache holds what the usual commands compile.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { main } from './main.js'

export { main }

/**
 * Go through the common paths without starting any container (their output dropped): help,
 * the version, `ps` of an empty state root, and `run` through the flags, the options and the
 * whole spec, up to the refusal of a uid no spec can hold.
 */
export async function warm(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'ns-warm-'))
  const out = process.stdout.write
  const err = process.stderr.write
  process.stdout.write = process.stderr.write = (() => true) as typeof process.stdout.write
  try {
    for (const args of [
      ['--version'],
      ['--help'],
      ['ps', '--root', root],
      ['run', '--help'],
      ['run', '-e', 'A=1', '-v', `${root}:/x`, '-m', '64m', '--userns', 'host', '-u', '4294967296', '--', 'true'],
      ['run', '--rootfs', join(root, 'none'), '--', 'true'],
      ['run', '--bogus'],
    ])
      await main(['node', 'ns', ...args])
  } finally {
    process.stdout.write = out
    process.stderr.write = err
    rmSync(root, { recursive: true, force: true })
  }
}
