// The zygote: from the second container of a process on, its helpers are forked by a
// long-lived `ns-oci zygote` instead of spawned. Each forked helper must be what a spawned one
// is: the caller's working directory and umask of the moment (and environment, which only its
// getenv sees), descriptors 0-3 only, a process group of its own; a zygote that dies or no longer matches the caller's
// credentials is replaced, and NS_ZYGOTE=0 turns it off.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect } from 'vitest'

import { run, spawn } from '@ns/core'

import { childPids, fixtureRootfs, itNs, itRoot, ppidOf, repoRoot, zygotePids } from './helpers.js'

const tmp = mkdtempSync(join(tmpdir(), 'ns-zygote-'))
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true })
  expect(childPids()).toEqual([])
})

function statusField(pid: number, field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`))
  return line?.split(':')[1]?.trim() ?? ''
}

/** The helper of a running container: the parent of its first process. */
async function helperOf(p: ReturnType<typeof spawn>): Promise<number> {
  return ppidOf(await p.started)
}

/** Run a module in a Node of its own (from test/, where @ns/core resolves); its stdout. */
function node(source: string, env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', source], {
    cwd: join(repoRoot, 'test'),
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  })
  if (r.status !== 0) throw new Error(`node exited ${r.status}: ${r.stderr}`)
  return r.stdout
}

describe('the zygote', () => {
  itNs("forks the helpers from the second container on, with the caller's cwd and umask of the moment", async () => {
    await run({ command: ['true'], rootfs: fixtureRootfs })
    await run({ command: ['true'], rootfs: fixtureRootfs })
    const zygotes = zygotePids()
    expect(zygotes).toHaveLength(1)
    const cwd = process.cwd()
    const umask = process.umask(0o027)
    process.chdir(tmp)
    try {
      const p = spawn({ command: ['sleep', '30'], rootfs: fixtureRootfs })
      const helper = await helperOf(p)
      expect(ppidOf(helper)).toBe(zygotes[0])
      expect(readFileSync(`/proc/${helper}/cmdline`, 'utf8').split('\0').slice(0, 2)).toEqual(['ns-oci', 'init'])
      expect(readlinkSync(`/proc/${helper}/cwd`)).toBe(tmp)
      expect(statusField(helper, 'Umask')).toBe('0027')
      // A process group of its own, as a spawned helper has (the terminal's signals reach the
      // container once, through the caller).
      const pgrp = Number(readFileSync(`/proc/${helper}/stat`, 'utf8').split(') ')[1]!.split(' ')[2])
      expect(pgrp).toBe(helper)
      await p.kill('SIGKILL')
      expect((await p.exited).signal).toBe('SIGKILL')
    } finally {
      process.chdir(cwd)
      process.umask(umask)
    }
  })

  itNs('gives the container nothing of its own: the container sees descriptors 0, 1 and 2 only', async () => {
    await run({ command: ['true'], rootfs: fixtureRootfs })
    expect(zygotePids()).toHaveLength(1)
    // ls opens the directory it lists: one more descriptor, its own.
    const r = await run({ command: ['sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "'], rootfs: fixtureRootfs })
    expect(r.stderr).toBe('')
    expect(r.stdout.trim().split(' ')).toEqual(['0', '1', '2', '3'])
  })

  itNs('is replaced when it dies, and the helpers it forked are all reaped', async () => {
    await run({ command: ['true'], rootfs: fixtureRootfs })
    const [before] = zygotePids()
    expect(before).toBeDefined()
    process.kill(before!, 'SIGKILL')
    // The next container starts (a new zygote, or a spawn while the old one is being reaped).
    for (let i = 0; i < 3; i++) {
      const r = await run({ command: ['echo', `after ${i}`], rootfs: fixtureRootfs })
      expect(r.exitCode).toBe(0)
      expect(r.stdout).toBe(`after ${i}\n`)
    }
    const after = zygotePids()
    expect(after).toHaveLength(1)
    expect(after[0]).not.toBe(before)
    // The dead zygote and the helpers are reaped off the event loop: give that a moment.
    for (let i = 0; i < 100 && childPids().length > 0; i++) await new Promise((r) => setTimeout(r, 20))
    expect(childPids()).toEqual([])
  })

  itNs('is not used with NS_ZYGOTE=0: every helper is a child of the caller', () => {
    const out = node(
      `import { run } from '@ns/core'
       import { readFileSync, readdirSync } from 'node:fs'
       for (let i = 0; i < 3; i++) await run({ command: ['true'], rootfs: ${JSON.stringify(fixtureRootfs)} })
       const kids = readdirSync('/proc').filter((d) => /^\\d+$/.test(d)).filter((d) => {
         try { return readFileSync('/proc/' + d + '/stat', 'utf8').split(') ')[1].split(' ')[1] === String(process.pid) } catch { return false }
       }).map((d) => readFileSync('/proc/' + d + '/cmdline', 'utf8').split('\\0').join(' ').trim())
       console.log(JSON.stringify(kids))`,
      { NS_ZYGOTE: '0' },
    )
    expect(JSON.parse(out)).toEqual([])
  })

  itRoot(
    'is retired when the caller is no longer what it was (its groups changed), and ends once its helpers are gone',
    () => {
      const out = node(`import { run } from '@ns/core'
       import { readFileSync, readdirSync } from 'node:fs'
       const zygotes = () => readdirSync('/proc').filter((d) => /^\\d+$/.test(d)).filter((d) => {
         try {
           return readFileSync('/proc/' + d + '/stat', 'utf8').split(') ')[1].split(' ')[1] === String(process.pid)
             && readFileSync('/proc/' + d + '/cmdline', 'utf8').startsWith('ns-oci\\0zygote')
         } catch { return false }
       })
       const opts = { command: ['sh', '-c', 'exit 3'], rootfs: ${JSON.stringify(fixtureRootfs)} }
       await run(opts); const r1 = await run(opts)
       const first = zygotes()
       process.setgroups([4242])
       const r2 = await run(opts)
       await new Promise((r) => setTimeout(r, 300))
       console.log(JSON.stringify({ first, second: zygotes(), codes: [r1.exitCode, r2.exitCode] }))`)
      const { first, second, codes } = JSON.parse(out) as { first: string[]; second: string[]; codes: number[] }
      expect(codes).toEqual([3, 3])
      expect(first).toHaveLength(1)
      expect(second).toHaveLength(1)
      expect(second[0]).not.toBe(first[0])
      expect(readdirSync('/proc')).not.toContain(first[0])
    },
  )
})
