// The facts @ns/core takes from the runtime (packages/core/src/generated/facts.ts, generated
// from ns-runtime's tables) held against what the runtime says and does: the names ns-oci
// reports, the files a real container's folder holds at each point of its life.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { capabilityNames, create, get, list, namespaceNames, parseRunOptions } from '@ns/core'

import * as facts from '../packages/core/src/generated/facts.js'
import { itNs, repoRoot } from './helpers.js'

const bin = join(repoRoot, 'packages', 'native', 'bin', 'ns-oci')
const root = mkdtempSync(join(tmpdir(), 'ns-facts-'))
afterAll(async () => {
  for (const s of list(root)) await get(s.id, root).delete({ force: true })
  rmSync(root, { recursive: true, force: true })
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('facts shared between the runtime and @ns/core', () => {
  it('ns-oci features lists exactly the capabilities and namespaces @ns/core knows', () => {
    const r = spawnSync(bin, ['features'], { encoding: 'utf8' })
    expect(r.status, r.stderr).toBe(0)
    const f = JSON.parse(r.stdout)
    expect(capabilityNames).toEqual(f.linux.capabilities)
    expect(namespaceNames).toEqual(f.linux.namespaces)
    // Each one the runtime names passes @ns/core's validation; one it does not name is refused.
    expect(() => parseRunOptions({ command: ['true'], capAdd: f.linux.capabilities })).not.toThrow()
    expect(() => parseRunOptions({ command: ['true'], capAdd: ['CAP_NOT_A_CAP'] })).toThrow(/capAdd/)
  })

  itNs("a container's folder holds the files stateFiles names, each while it should", async () => {
    const c = await create({ command: ['sh'], tty: true, root, name: 'files' })
    const at = (f: string) => existsSync(join(root, 'files', f))
    const { state, execFifo, config, attachSocket, exit, log } = facts.stateFiles
    expect([state, execFifo, config, attachSocket].filter((f) => !at(f))).toEqual([])
    expect(c.state().status satisfies facts.ContainerStatus).toBe('created')
    await c.start()
    expect(at(execFifo)).toBe(false)
    const a = await c.attach()
    a.write('exit 3\n')
    expect(await c.wait()).toMatchObject({ exitCode: 3 })
    for (let i = 0; i < 100 && at(attachSocket); i++) await sleep(20)
    expect([exit, log].filter((f) => !at(f))).toEqual([])
    expect(at(attachSocket)).toBe(false)
    await c.delete()
    expect(existsSync(join(root, 'files'))).toBe(false)
  })
})
