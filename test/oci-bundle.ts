// Bundles for ns-oci, as engines hand them over, and ns-oci driven as engines drive it: what
// the ns-oci test files share. Each file makes its own work folder (`ociWork`).
import { spawnSync } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { expect } from 'vitest'

import { fixtureRootfs, isRoot, repoRoot } from './helpers.js'

export const ociBin = join(repoRoot, 'packages', 'native', 'bin', 'ns-oci')

export interface Oci {
  /** The folder the file's state root, bundles and outputs live in. */
  work: string
  /** The state root (`--root`). */
  root: string
  /** Run ns-oci with the state root; its output through files (a created container keeps them). */
  run(
    args: string[],
    opts?: { input?: string; timeout?: number },
  ): { code: number | null; stdout: string; stderr: string }
  /** A bundle made with `ns-oci spec` (rootless when we are not root) whose root is the fixture. */
  bundle(args: string[], edit?: (c: any) => void): string
  state(id: string): any
  ids(): string[]
  /** Delete every container left and remove the work folder. */
  cleanUp(): void
}

export function ociWork(prefix: string): Oci {
  const work = mkdtempSync(join(tmpdir(), `ns-${prefix}-`))
  const root = join(work, 'state')
  let n = 0
  const o: Oci = {
    work,
    root,
    run(args, opts = {}) {
      const out = join(work, `out-${++n}`)
      const err = join(work, `err-${n}`)
      const fo = openSync(out, 'w')
      const fe = openSync(err, 'w')
      const r = spawnSync(ociBin, ['--root', root, ...args], {
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', fo, fe],
        input: opts.input,
        timeout: opts.timeout ?? 20_000,
      })
      closeSync(fo)
      closeSync(fe)
      const result = { code: r.status, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') }
      rmSync(out, { force: true })
      rmSync(err, { force: true })
      return result
    },
    bundle(args, edit = () => {}) {
      const dir = join(work, `bundle-${++n}`)
      mkdirSync(dir, { recursive: true })
      const r = spawnSync(ociBin, ['spec', '--bundle', dir, ...(isRoot ? [] : ['--rootless'])], { encoding: 'utf8' })
      expect(r.status, r.stderr).toBe(0)
      const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))
      c.root = { path: fixtureRootfs, readonly: true }
      c.process.args = args
      edit(c)
      writeFileSync(join(dir, 'config.json'), JSON.stringify(c))
      return dir
    },
    state(id) {
      const r = o.run(['state', id])
      return r.code === 0 ? JSON.parse(r.stdout) : { error: r.stderr }
    },
    ids() {
      const r = o.run(['list', '--format', 'json'])
      return r.code === 0 ? (JSON.parse(r.stdout) as Array<{ id: string }>).map((c) => c.id) : []
    },
    cleanUp() {
      for (const id of o.ids()) o.run(['delete', '--force', id])
      rmSync(work, { recursive: true, force: true })
    },
  }
  return o
}

/** Wait until `cond` holds (polling every 20 ms, at most `ms`). */
export async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await new Promise((r) => setTimeout(r, 20))
  }
  return cond()
}
