// Unit tests of the `ns run` flags -> @ns/core options mapping (pure: no process is started).
import { Command, Option } from 'commander'
import { describe, expect, it } from 'vitest'

import { NsError, parseRunOptions } from '@ns/core'

import { asFlagError } from '../errors.js'
import { addFlags } from '../flags.js'
import {
  containerFlags,
  imageAndCommand,
  runFlags,
  runOptionsFromFlags,
  type RunContext,
  type RunFlags,
} from './run-flags.js'

const ctx: RunContext = { env: { HOME: '/home/me', TERM: 'xterm' }, stdoutIsTTY: false }
const map = (flags: RunFlags, c: RunContext = ctx) => runOptionsFromFlags(['sh'], flags, c)

/** Parse a command line with the table's commander options, as `ns run` does. */
function parse(...args: string[]): RunFlags {
  const cmd = addFlags(new Command('run').exitOverride().argument('[command...]'), runFlags)
  cmd.parse(args, { from: 'user' })
  return cmd.opts() as RunFlags
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

describe('the table of run flags', () => {
  it('is keyed by the attribute names commander gives the flags', () => {
    for (const [key, f] of Object.entries(runFlags)) expect(new Option(f.spec).attributeName()).toBe(key)
  })

  it('declares each flag once: commander takes every one of them', () => {
    const longs = new Command('run').exitOverride()
    addFlags(longs, runFlags)
    const names = longs.options.map((o) => o.long)
    expect(new Set(names).size).toBe(names.length)
    expect(names).toContain('--no-read-only')
  })
})

describe('flags -> options', () => {
  it('a command line becomes the options of @ns/core, and they validate', () => {
    const r = map(
      parse(
        '--rootfs',
        '/r',
        '--hostname',
        'box',
        '-v',
        '/a:/a:ro',
        '-v',
        '/b:/b',
        '--tmpfs',
        '/scratch',
        '-e',
        'A=1',
        '-w',
        '/a',
        '-u',
        '1:2',
        '--no-init',
        '--share',
        'ipc',
        '-m',
        '64m',
        '--memory-swap',
        '-1',
        '--pids-limit',
        '10',
        '--cpus',
        '0.5',
        '--cap-drop',
        'ALL',
        '--uidmap',
        '0:1000:1',
        '--time-offset',
        'boottime=5',
        '--timeout',
        '1.1',
      ),
    )
    expect(r).toEqual({
      detach: false,
      options: {
        command: ['sh'],
        rootfs: '/r',
        hostname: 'box',
        volumes: ['/a:/a:ro', '/b:/b'],
        mounts: [{ type: 'tmpfs', target: '/scratch' }],
        env: ['A=1'],
        cwd: '/a',
        user: '1:2',
        init: false,
        namespaces: { ipc: false },
        memory: '64m',
        memorySwap: -1,
        pidsLimit: 10,
        cpus: 0.5,
        capDrop: ['ALL'],
        uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
        timeOffsets: { boottime: 5 },
        timeout: 1100,
      },
    })
    expect(() => parseRunOptions(r.options)).not.toThrow()
  })

  it('no flags: only the command (and init, as commander gives --no-init)', () => {
    expect(map(parse())).toEqual({ detach: false, options: { command: ['sh'], init: true } })
  })

  it('--net: host shares the network, a path joins one, none is the default', () => {
    expect(map(parse('--net', 'host')).options.namespaces).toEqual({ network: false })
    expect(map(parse('--net', '/proc/1/ns/net')).options.namespaces).toEqual({ network: '/proc/1/ns/net' })
    expect(map(parse('--net', 'none')).options.namespaces).toBeUndefined()
    expect(map(parse('--net', 'host', '--share', 'uts')).options.namespaces).toEqual({ network: false, uts: false })
  })

  it('-e KEY passes on the variable when it is set, and leaves it unset when it is not (as docker)', () => {
    expect(map(parse('-e', 'HOME', '-e', 'NOT_SET_HERE', '-e', 'B=')).options.env).toEqual(['HOME=/home/me', 'B='])
  })

  it('TERM is passed on when stdout is a terminal', () => {
    expect(map(parse(), { ...ctx, stdoutIsTTY: true }).options.env).toEqual(['TERM=xterm'])
    expect(map(parse('-e', 'A=1'), { ...ctx, stdoutIsTTY: true }).options.env).toEqual(['TERM=xterm', 'A=1'])
    expect(map(parse()).options.env).toBeUndefined()
  })

  it('-d with --name and --rm: a detached request', () => {
    expect(map(parse('-d', '--name', 'web', '--rm'))).toMatchObject({ detach: true, name: 'web', remove: true })
  })
})

describe('bad flag values are errors naming the flag', () => {
  const cases: Array<[string[], string]> = [
    [['--uidmap', 'nonsense'], '--uidmap: "nonsense" must be CONTAINER:HOST:SIZE'],
    [['--gidmap', '0:0'], '--gidmap: "0:0" must be CONTAINER:HOST:SIZE'],
    [
      ['--share', 'bogus'],
      '--share: unknown namespace "bogus" (one of user, mount, pid, network, uts, ipc, cgroup, time)',
    ],
    [['--time-offset', 'realtime=5'], '--time-offset: "realtime=5" must be monotonic=SECONDS or boottime=SECONDS'],
    [['--pids-limit', 'many'], '--pids-limit: "many" is not a number'],
    [['--cpus', '0x10'], '--cpus: "0x10" is not a number'],
    [['--cpu-shares', ''], '--cpu-shares: "" is not a number'],
    [['--blkio-weight', '1e3'], '--blkio-weight: "1e3" is not a number'],
    [['--timeout', '0'], '--timeout: must be a positive number of seconds'],
    [['--timeout', 'soon'], '--timeout: "soon" is not a number'],
    [['-d', '--timeout', '5'], '--timeout: applies to foreground runs only'],
    [['--name', 'web'], '--name: names containers that run detached (-d)'],
  ]
  for (const [args, message] of cases) {
    it(`${args.join(' ')}: ${message}`, () => {
      const e = failure(() => map(parse(...args)))
      expect(e.message).toBe(message)
      expect(e.field).toBe(message.slice(0, message.indexOf(':')))
      expect(e.exitCode).toBe(125)
    })
  }
})

describe('what @ns/core refuses is told as being about the flag given', () => {
  /** Map the flags, validate the options as @ns/core does, and name the flag as `ns run` does. */
  function refused(...args: string[]): NsError {
    const flags = parse(...args)
    return failure(() => {
      try {
        parseRunOptions(map(flags).options)
      } catch (e) {
        throw asFlagError(containerFlags, flags, e)
      }
    })
  }

  it('a volume: the -v given, by its value', () => {
    const e = refused('-v', '/a:/a', '-v', 'nocolon')
    expect(e.message).toBe('--volume "nocolon": must be SRC:DST[:OPTS] with an absolute DST, OPTS among ro, rw, idmap')
    expect(e.field).toBe('--volume')
  })

  it('a tmpfs: the --tmpfs given', () => {
    expect(refused('--tmpfs', 'rel').message).toBe('--tmpfs "rel": must be an absolute path')
  })

  it('a value: the flag and its value', () => {
    expect(refused('-w', 'data').message).toBe('--workdir "data": must be an absolute path')
    expect(refused('--cpus', '2000').message).toBe('--cpus "2000": Too big: expected number to be <=1024')
  })

  it('a field of the spec the flag becomes: the flag', () => {
    const e = new NsError({
      code: 'EINVAL',
      message: 'process.user.uid: Too big: expected number to be <=4294967295',
      field: 'process.user.uid',
    })
    const named = asFlagError(containerFlags, parse('-u', '4294967296'), e) as NsError
    expect(named.message).toBe('--user "4294967296": Too big: expected number to be <=4294967295')
  })

  it('an error about another field is left as it is', () => {
    const e = new NsError({ code: 'EINVAL', message: 'x: y', field: 'labels' })
    expect(asFlagError(containerFlags, parse('-v', '/a:/a'), e)).toBe(e)
  })
})

describe('ns run IMAGE', () => {
  it('the first operand is the image, unless the operands came after --; a -- after the image is dropped', () => {
    expect(imageAndCommand(['alpine', 'sh', '-c', 'x'], false)).toEqual({ image: 'alpine', command: ['sh', '-c', 'x'] })
    expect(imageAndCommand(['alpine', '--', 'ls', '--', '-l'], false)).toEqual({
      image: 'alpine',
      command: ['ls', '--', '-l'],
    })
    expect(imageAndCommand(['alpine'], false)).toEqual({ image: 'alpine', command: [] })
    expect(imageAndCommand(['sh', '-c', 'x'], true)).toEqual({ command: ['sh', '-c', 'x'] })
  })

  it("--pull, --platform and --entrypoint go to the image's options; an image without a command leaves it out", () => {
    const r = runOptionsFromFlags(
      [],
      parse('--pull', 'never', '--platform', 'linux/arm64', '--entrypoint', ''),
      ctx,
      'alpine',
    )
    expect(r.options).toEqual({ image: 'alpine', pull: 'never', platform: 'linux/arm64', entrypoint: [], init: true })
    expect(runOptionsFromFlags(['ls'], parse('--entrypoint', '/bin/sh'), ctx, 'a').options).toMatchObject({
      image: 'a',
      command: ['ls'],
      entrypoint: ['/bin/sh'],
    })
    expect(() => parseRunOptions(r.options)).not.toThrow()
  })

  it('the image flags without an image, and --rootfs with one, are errors naming the flag', () => {
    expect(failure(() => runOptionsFromFlags(['sh'], parse('--pull', 'always'), ctx)).field).toBe('--pull')
    expect(failure(() => runOptionsFromFlags(['sh'], parse('--entrypoint', 'x'), ctx)).field).toBe('--entrypoint')
    expect(failure(() => runOptionsFromFlags([], parse('--rootfs', '/r'), ctx, 'alpine')).field).toBe('--rootfs')
  })
})
