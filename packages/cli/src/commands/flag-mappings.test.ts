// Unit tests of the `ns exec`, `ns logs`, `ns stop` and `ns update` flags -> @ns/core options mappings (pure:
// no process is started).
import { Command } from 'commander'
import { describe, expect, it } from 'vitest'

import { NsError } from '@ns/core'

import { envFromFlags } from '../env.js'
import { addFlags, type FlagTable } from '../flags.js'
import { execFlags, execOptionsFromFlags } from './exec.js'
import { logOptionsFromFlags, logsFlags } from './logs.js'
import { stopFlags, stopGraceMs } from './stop.js'
import { limitsFromFlags, updateFlags } from './update.js'

/** Parse a command line with a table's commander options, as the command does. */
function parse<T>(table: FlagTable<any>, ...args: string[]): T {
  const cmd = addFlags(new Command('x').exitOverride().argument('[rest...]'), table)
  cmd.configureOutput({ writeErr: () => {} })
  cmd.parse(args, { from: 'user' })
  return cmd.opts() as T
}

function failure(f: () => unknown): NsError {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(NsError)
    return e as NsError
  }
  throw new Error('expected a failure')
}

describe('-e as docker reads it', () => {
  it('keeps KEY=VALUE as written, passes on a set KEY and drops an unset one', () => {
    expect(envFromFlags(['A=1', 'HOME', 'NOPE', 'B=', 'C=x=y'], { HOME: '/home/me' })).toEqual([
      'A=1',
      'HOME=/home/me',
      'B=',
      'C=x=y',
    ])
  })
})

describe('ns exec flags', () => {
  const callerEnv = { HOME: '/home/me', SECRET: 's' }

  it('map onto exec options with the terminal and stdio inherited', () => {
    const o = parse<Parameters<typeof execOptionsFromFlags>[1]>(
      execFlags,
      '-e',
      'A=1',
      '-e',
      'HOME',
      '-e',
      'UNSET',
      '-w',
      '/tmp',
      '-u',
      '1000:1000',
      '-t',
    )
    expect(execOptionsFromFlags(['ls', '-l'], o, callerEnv)).toEqual({
      command: ['ls', '-l'],
      env: ['A=1', 'HOME=/home/me'],
      cwd: '/tmp',
      user: '1000:1000',
      tty: true,
      stdin: 'inherit',
      stdout: 'inherit',
      stderr: 'inherit',
    })
  })

  it("without flags set nothing but the command and stdio: the caller's environment is not passed", () => {
    const opts = execOptionsFromFlags(['true'], parse(execFlags), callerEnv)
    expect(opts).toEqual({ command: ['true'], stdin: 'inherit', stdout: 'inherit', stderr: 'inherit' })
    expect(JSON.stringify(opts)).not.toContain('SECRET')
  })

  it('refuses an unknown flag and a missing value, naming them', () => {
    expect(() => parse(execFlags, '--no-such-flag')).toThrow(/unknown option '--no-such-flag'/)
    expect(() => parse(execFlags, '-w')).toThrow(/'-w, --workdir <dir>' argument missing/)
  })
})

describe('ns logs flags', () => {
  const now = Date.parse('2026-01-02T03:04:05.000Z')

  it('map --tail and --since (a time, or a duration before now)', () => {
    expect(logOptionsFromFlags(parse(logsFlags, '--tail', '5', '--since', '90s'), now)).toEqual({
      tail: 5,
      since: new Date(now - 90_000),
    })
    expect(logOptionsFromFlags(parse(logsFlags, '--since', '2m'), now).since).toEqual(new Date(now - 120_000))
    expect(logOptionsFromFlags(parse(logsFlags, '--since', '1h'), now).since).toEqual(new Date(now - 3_600_000))
    expect(logOptionsFromFlags(parse(logsFlags, '--since', '2026-01-01T00:00:00Z'), now).since).toEqual(
      new Date('2026-01-01T00:00:00Z'),
    )
    expect(logOptionsFromFlags(parse(logsFlags, '-f', '-t'), now)).toEqual({})
  })

  it('refuse a tail that is not a whole number and a since that is not a time, naming the flag', () => {
    for (const bad of ['-1', '1.5', 'ten', '99999999999999999999']) {
      const e = failure(() => logOptionsFromFlags(parse(logsFlags, '--tail', bad), now))
      expect(e.field).toBe('--tail')
    }
    for (const bad of ['yesterday', '10d', '']) {
      const e = failure(() => logOptionsFromFlags(parse(logsFlags, '--since', bad), now))
      expect(e.field).toBe('--since')
      expect(e.exitCode).toBe(125)
    }
  })
})

describe('ns stop flags', () => {
  it('--time is seconds (10 by default), given to stop in milliseconds', () => {
    expect(stopGraceMs(parse<{ time?: string }>(stopFlags).time)).toBe(10_000)
    expect(stopGraceMs(parse<{ time?: string }>(stopFlags, '-t', '0').time)).toBe(0)
    expect(stopGraceMs(parse<{ time?: string }>(stopFlags, '--time', '2.5').time)).toBe(2500)
  })

  it('refuses a time that is not a number of seconds, naming --time', () => {
    for (const bad of ['-1', 'soon', '1e3', '']) expect(failure(() => stopGraceMs(bad)).field).toBe('--time')
  })
})

describe('ns update: flags -> the limits DetachedContainer.update takes', () => {
  const limits = (...args: string[]) => limitsFromFlags(parse(updateFlags, ...args))

  it('takes the limit flags of run as run maps them, and only those given', () => {
    expect(limits('-m', '128m', '--cpus', '0.5', '--pids-limit', '50')).toEqual({
      memory: '128m',
      cpus: 0.5,
      pidsLimit: 50,
    })
    expect(limits('--memory-swap', '-1', '--cpuset-cpus', '0', '--blkio-weight', '300', '--cpu-shares', '512')).toEqual(
      { memorySwap: -1, cpusetCpus: '0', blkioWeight: 300, cpuShares: 512 },
    )
  })

  it('no limit, or one @ns/core refuses, is an error before any container is touched', () => {
    expect(failure(() => limits()).message).toMatch(/^flags: give at least one limit/)
    expect(failure(() => limits('--pids-limit', 'many')).field).toBe('--pids-limit')
    expect(failure(() => limits('-m', '1k')).field).toBe('memory')
    expect(failure(() => limits('--blkio-weight', '5')).field).toBe('blkioWeight')
  })
})
