// Bad input gets an error naming the field and the reason; a failing step names the step and
// the errno; nothing crashes the Node process or stays behind.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { NsError, create, run, spawnSpec, buildSpec, parseRunOptions } from '@ns/core'

import { childPids, hostMountinfo, itNs } from './helpers.js'

async function failure(p: Promise<unknown>): Promise<NsError> {
  try {
    await p
  } catch (e) {
    expect(e).toBeInstanceOf(NsError)
    return e as NsError
  }
  throw new Error('expected a failure')
}

let mountsBefore = ''
beforeAll(() => {
  mountsBefore = hostMountinfo()
})
afterAll(() => {
  // Nothing this file did left a mount on the host or a process behind.
  expect(hostMountinfo()).toBe(mountsBefore)
  expect(childPids()).toEqual([])
})

describe('invalid options name the field and the reason', () => {
  const cases: Array<[string, unknown, string]> = [
    ['no command', { command: [] }, 'command: must name a program'],
    ['a relative cwd', { command: ['true'], cwd: 'data' }, 'cwd: must be an absolute path'],
    [
      'an empty id range',
      { command: ['true'], uidMappings: [{ containerID: 0, hostID: 0, size: 0 }] },
      'uidMappings[0].size: must be > 0',
    ],
    [
      'a bad volume',
      { command: ['true'], volumes: ['/tmp'] },
      'volumes[0]: must be SRC:DST[:OPTS] with an absolute DST, OPTS among ro, rw, idmap',
    ],
    [
      'a missing rootfs',
      { command: ['true'], rootfs: '/nonexistent/rootfs' },
      'rootfs: /nonexistent/rootfs does not exist',
    ],
    ['an unknown option', { command: ['true'], hostnme: 'x' }, 'Unrecognized key: "hostnme"'],
    [
      'a bad namespace value',
      { command: ['true'], namespaces: { network: 'relative/path' } },
      'namespaces.network: must be an absolute path',
    ],
    [
      'hostname without uts',
      { command: ['true'], hostname: 'x', namespaces: { uts: false } },
      'hostname: needs a new uts namespace',
    ],
    [
      'a volume over the root',
      { command: ['true'], volumes: ['/tmp:/'] },
      "volumes[0]: must not be / (a mount cannot replace the container's root; use rootfs)",
    ],
    ['a volume with ..', { command: ['true'], volumes: ['/tmp:/a/../../x'] }, "volumes[0]: must not contain '..'"],
    [
      'a tmpfs over the root',
      { command: ['true'], mounts: [{ type: 'tmpfs', target: '//' }] },
      "mounts[0].target: must not be / (a mount cannot replace the container's root; use rootfs)",
    ],
    [
      'a bind mount with ..',
      { command: ['true'], mounts: [{ type: 'bind', source: '/tmp', target: '/../etc' }] },
      "mounts[0].target: must not contain '..'",
    ],
    [
      'a memory limit past what can be passed on exactly',
      { command: ['true'], memory: '99999999999999999999' },
      'memory: must be at most 9007199254740991 bytes',
    ],
    [
      'a swap limit past it, in gigabytes',
      { command: ['true'], memorySwap: '9999999999g' },
      'memorySwap: must be at most 9007199254740991 bytes',
    ],
    ['a memory limit in bytes past it', { command: ['true'], memory: 1e20 }, 'memory: Too big'],
    ['more processes than the kernel counts', { command: ['true'], pidsLimit: 2 ** 23 }, 'pidsLimit: Too big'],
    ['a timeout no timer keeps', { command: ['true'], timeout: 2 ** 31 }, 'timeout: Too big'],
    [
      'an unmapped user',
      { command: ['true'], user: '5:5', uidMappings: [{ containerID: 0, hostID: 0, size: 1 }] },
      'user: uid 5 is not mapped in the user namespace',
    ],
  ]
  for (const [what, opts, message] of cases) {
    it(`${what}: ${message}`, async () => {
      const e = await failure(run(opts as never))
      expect(e.code).toBe('EINVAL')
      expect(e.message).toContain(message)
      expect(e.exitCode).toBe(125)
    })
  }

  it('a container name that is not one: the name field, before anything runs', async () => {
    const e = await failure(create({ command: ['true'], name: 'a/b', root: '/nonexistent/ns-root' }))
    expect(e.message).toBe('name: must be a letter or digit, then letters, digits, _ . or - (at most 255 characters)')
    expect(e.field).toBe('name')
    const long = await failure(create({ command: ['true'], name: 'x'.repeat(256), root: '/nonexistent/ns-root' }))
    expect(long.field).toBe('name')
  })

  it('a runtime spec is validated by the same schema, field by field', () => {
    const { spec } = buildSpec(parseRunOptions({ command: ['true'] }))
    const bad = structuredClone(spec) as Record<string, any>
    bad.linux.uidMappings = [{ containerID: 0, hostID: 0, size: 0 }]
    expect(() => spawnSpec(bad)).toThrow('linux.uidMappings[0].size: must be > 0')
    const noArgs = structuredClone(spec) as Record<string, any>
    noArgs.process.args = []
    expect(() => spawnSpec(noArgs)).toThrow('process.args: must not be empty')
  })
})

describe('failures inside report the step and the errno', () => {
  itNs('a command that does not exist: 127 and a message', async () => {
    const e = await failure(run({ command: ['no-such-command-here'] }))
    expect(e.exitCode).toBe(127)
    expect(e.code).toBe('ENOENT')
    expect(e.step).toBe('exec')
    expect(e.message).toBe('exec "no-such-command-here": executable file not found in $PATH')
  })

  itNs('a file that is not executable: 126', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ns-noexec-'))
    writeFileSync(join(dir, 'script'), '#!/bin/sh\necho hi\n')
    chmodSync(join(dir, 'script'), 0o644)
    try {
      const e = await failure(run({ command: ['/data/script'], volumes: [`${dir}:/data`] }))
      expect(e.exitCode).toBe(126)
      expect(e.code).toBe('EACCES')
    } finally {
      rmSync(dir, { recursive: true })
    }
  })

  itNs('the same without init (the command as PID 1)', async () => {
    const e = await failure(run({ command: ['no-such-command-here'], init: false }))
    expect(e.exitCode).toBe(127)
  })

  itNs('a mount the kernel refuses: the step, the path and EINVAL', async () => {
    const { spec } = buildSpec(parseRunOptions({ command: ['true'] }))
    spec.mounts!.push({ destination: '/bad', type: 'tmpfs', source: 'tmpfs', options: ['size=not-a-size'] })
    const c = spawnSpec(spec)
    const e = await failure(c.exited)
    expect(e.code).toBe('EINVAL')
    expect(e.step).toBe('mount tmpfs on')
    expect(e.path).toBe('/bad')
    expect(e.message).toBe('failed to mount tmpfs on /bad: EINVAL (invalid argument)')
    expect(e.exitCode).toBe(125)
  })

  itNs('a rootfs that is a file: pivot cannot happen, and the error says where', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ns-notdir-'))
    writeFileSync(join(dir, 'file'), '')
    try {
      const e = await failure(run({ command: ['true'], rootfs: join(dir, 'file') }))
      expect(e.code).toBe('ENOTDIR')
      expect(e.step).toBe('open rootfs')
    } finally {
      rmSync(dir, { recursive: true })
    }
  })

  itNs('a NUL byte in an argument is refused by the core, not a crash', async () => {
    const e = await failure(run({ command: ['echo', 'a\0b'] }))
    expect(e.message).toBe('process.args: must not contain NUL bytes')
  })

  itNs('the namespaces of a process that does not exist cannot be joined: ENOENT and the path', async () => {
    const e = await failure(run({ command: ['true'], namespaces: { network: '/proc/999999999/ns/net' } }))
    expect(e.code).toBe('ENOENT')
    expect(e.path).toBe('/proc/999999999/ns/net')
    expect(e.step).toBe('open network namespace')
  })

  itNs('many failing and succeeding runs in a row leave no process behind', async () => {
    for (let i = 0; i < 10; i++) {
      await run({ command: ['true'] })
      await failure(run({ command: ['no-such-command-here'] }))
    }
    expect(childPids()).toEqual([])
  })
})
