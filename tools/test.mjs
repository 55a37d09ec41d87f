// `npm test`: the Rust tests (cargo) and the vitest suite, then one closing line with the
// totals: `tests: N passed, M failed, K skipped`. Exits non-zero if anything failed.
import { spawnSync } from 'node:child_process'
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
let passed = 0
let failed = 0
let skipped = 0
let broken = false

function cargoUsable() {
  const r = spawnSync('cargo', ['--version'], { encoding: 'utf8' })
  return r.status === 0
}

// 1. Rust: unit tests of ns-runtime, the real-process tests of ns-oci, the tests of ns-dns and the
// layer tests of ns-image (real overlay mounts in a child's namespaces). (ns-native is a cdylib
// that only links inside Node, so it is exercised by the vitest suite.)
if (cargoUsable()) {
  const env = { ...process.env }
  try {
    accessSync(join(root, 'target'), constants.W_OK)
  } catch {
    // An unprivileged run over a tree root built: compile into a directory of our own.
    env.CARGO_TARGET_DIR = join(tmpdir(), `ns-target-${process.getuid?.()}`)
  }
  const r = spawnSync('cargo', ['test', '-p', 'ns-runtime', '-p', 'ns-oci', '-p', 'ns-dns', '-p', 'ns-image'], {
    cwd: root,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  process.stdout.write(r.stdout)
  for (const m of r.stdout.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/g)) {
    passed += Number(m[1])
    failed += Number(m[2])
    skipped += Number(m[3])
  }
  if (r.status !== 0 && failed === 0) broken = true
} else {
  console.log('SKIP cargo tests: cargo is not available to this user')
}

// 2. vitest: real namespaces, the CLI, the API.
const out = mkdtempSync(join(tmpdir(), 'ns-test-'))
const report = join(out, 'vitest.json')
const v = spawnSync(
  process.execPath,
  [
    join(root, 'node_modules', 'vitest', 'vitest.mjs'),
    'run',
    '--configLoader',
    'native',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
  ],
  { cwd: root, stdio: 'inherit' },
)
try {
  const j = JSON.parse(readFileSync(report, 'utf8'))
  passed += j.numPassedTests
  failed += j.numFailedTests
  skipped += j.numPendingTests + j.numTodoTests
  if (v.status !== 0 && j.numFailedTests === 0) broken = true
} catch {
  broken = true
}
rmSync(out, { recursive: true, force: true })

if (broken) console.log('a test runner failed to complete')
console.log(`tests: ${passed} passed, ${failed + (broken ? 1 : 0)} failed, ${skipped} skipped`)
process.exit(failed > 0 || broken ? 1 : 0)
