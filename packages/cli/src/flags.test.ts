// Unit tests of the command table and the flag tables of every command.
import { readFileSync } from 'node:fs'

import { Option } from 'commander'
import { describe, expect, it } from 'vitest'

import { commandName, commands, commandsFor } from './commands/index.js'
import { runFlags } from './commands/run-flags.js'
import { operandsAfterDashDash } from './flags.js'
import { version } from './version.js'

describe('the commands', () => {
  it('each is a file of commands/ whose flags are keyed by their commander attribute names', async () => {
    for (const c of commands) {
      const spec = (await c.load()).default
      expect(spec.description, c.name).not.toBe('')
      for (const [key, f] of Object.entries(spec.flags)) expect(new Option(f.spec).attributeName(), c.name).toBe(key)
    }
  })

  it('the command typed is found past the options of ns itself', () => {
    expect(commandName(['run', '--', 'ls'])).toBe('run')
    expect(commandName(['--root', '/tmp/x', 'ps', '-a'])).toBe('ps')
    expect(commandName(['--root=/tmp/x', 'ls'])).toBe('ls')
    expect(commandName(['--version'])).toBeUndefined()
    expect(commandName(['--', 'run'])).toBeUndefined()
  })

  it('only the command typed is loaded; --version loads none; help or a typo all', () => {
    expect(commandsFor(['run', '--', 'true']).map((c) => c.name)).toEqual(['run'])
    expect(commandsFor(['ls']).map((c) => c.name)).toEqual(['ps'])
    expect(commandsFor(['--version'])).toEqual([])
    expect(commandsFor(['--help'])).toBe(commands)
    expect(commandsFor(['help', 'run'])).toBe(commands)
    expect(commandsFor(['bogus'])).toBe(commands)
  })

  it('ns --version is the version of the package', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    expect(version).toBe(pkg.version)
  })

  it("ns run's operands are a command of the sandbox only after a -- with nothing but options before it", () => {
    const run = { name: 'run' }
    const after = (...a: string[]) => operandsAfterDashDash(a, run, runFlags)
    expect(after('run', '--', 'sh')).toBe(true)
    expect(after('--root', '/r', 'run', '-m', '64m', '-e', 'A=1', '--', 'sh')).toBe(true)
    expect(after('--store', '/s', 'run', '-it', '--', 'sh')).toBe(true)
    // -w takes a value: `--` here is its value, not the end of ns's options.
    expect(after('run', '-w', '--', 'alpine')).toBe(false)
    expect(after('run', 'alpine', '--', 'sh')).toBe(false)
    expect(after('run', 'alpine', 'sh')).toBe(false)
    expect(after('run', '--rm', '-eA=1', 'alpine')).toBe(false)
    expect(after('run')).toBe(false)
  })
})
