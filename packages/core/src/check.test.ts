// check.ts is held to the zod schemas it is written after: for each of many inputs, good and
// bad, field by field, both give the same value or the same first error (field and message).
import { describe, expect, it } from 'vitest'

import { buildSpec } from './build.js'
import { checkExecOptions, checkRunOptions, checkSpec, execOptionKeys, runOptionKeys } from './check.js'
import { commandSchema, parseRunOptions, parseWith, runOptionsSchema } from './options.js'
import { ociSpecSchema, validateSpec } from './spec.js'

/** What a validator makes of a value: its output, or its error's field and message. */
function outcome(f: () => unknown): unknown {
  try {
    return { ok: f() }
  } catch (e) {
    const err = e as { field?: string; message: string }
    return { field: err.field, message: err.message }
  }
}

const signal = new AbortController().signal
/** Values of every kind: each is tried in every field. */
const pool: unknown[] = [
  undefined,
  null,
  true,
  false,
  0,
  1,
  -1,
  -2,
  2,
  10,
  1.5,
  1000,
  1025,
  262145,
  4194305,
  2 ** 31,
  2 ** 32,
  1e20,
  -1e20,
  NaN,
  Infinity,
  '',
  'x',
  'X Y',
  '/abs',
  '/',
  '/a/../b',
  'rel',
  '64m',
  '64M',
  '99999999999999999999',
  '9007199254740991',
  '1:2',
  '0-1,3',
  'auto',
  'host',
  'pipe',
  'inherit',
  'default',
  'unconfined',
  'SYS_ADMIN',
  'CAP_NOPE',
  'ALL',
  [],
  ['x'],
  [1],
  ['A=1'],
  ['/tmp:/data:ro'],
  ['/tmp:/'],
  ['/tmp:/x/../y'],
  ['nocolon'],
  ['SYS_ADMIN', 'NET_ADMIN'],
  [{ containerID: 0, hostID: 1000, size: 1 }],
  [{ containerID: 0, hostID: 1000, size: 0 }],
  [{ containerID: 0, hostID: 1000, size: 1, extra: true }],
  [{ type: 'tmpfs', target: '/t', size: '64m', mode: '1777' }],
  [{ type: 'tmpfs', target: '/' }],
  [{ type: 'tmpfs', target: 't', mode: '9' }],
  [{ type: 'bind', source: '/tmp', target: '/b', readOnly: true, idmap: 'no' }],
  [{ type: 'bind', source: '', target: '/b' }],
  [{ type: 'nfs', target: '/n' }],
  [{ target: '/n' }],
  [{ type: 'RLIMIT_NOFILE', soft: 1, hard: 2 }],
  [{ type: 'nofile', soft: -1, hard: 2 }],
  {},
  { a: '1' },
  { a: 1 },
  { 'a b': 'x' },
  { network: false, pid: '/proc/1/ns/pid' },
  { network: 'rel' },
  { net: false },
  { network: undefined },
  { monotonic: 5 },
  { realtime: 5 },
  { monotonic: 1.5, boottime: 2 },
  { uid: 1, gid: 2, additionalGids: [3] },
  { uid: -1, gid: 'x' },
  { uid: 1, extra: 2 },
  { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [] }] },
  { defaultAction: 1 },
  signal,
  new Uint8Array(2),
]

describe('check.ts and the zod schemas have the same fields', () => {
  it('the run options, key by key and in order', () => {
    expect(runOptionKeys).toEqual(Object.keys(runOptionsSchema.shape))
  })
  it("the runtime spec's top-level fields", () => {
    const spec = buildSpec(parseRunOptions({ command: ['true'] }), 'abc').spec
    expect(Object.keys(ociSpecSchema.shape)).toEqual(expect.arrayContaining(Object.keys(spec)))
  })
})

describe('the run options: the same value or the same first error as zod', () => {
  for (const key of runOptionKeys) {
    it(key, () => {
      for (const value of pool) {
        const input = key === 'command' ? { command: value } : { command: ['x'], [key]: value }
        expect(
          outcome(() => checkRunOptions(input)),
          `${key}: ${String(JSON.stringify(value))}`,
        ).toEqual(outcome(() => parseRunOptions(input)))
      }
    })
  }

  it('whole objects: not an object, unknown keys, many errors at once', () => {
    for (const input of [
      null,
      undefined,
      [],
      'x',
      {},
      { command: ['x'], hostnme: 'x' },
      { command: ['x'], a: 1, b: 2 },
      { command: ['x'], bogus: 1, cwd: 'rel' },
      { command: [], cwd: 'rel', memory: 'big' },
      {
        command: ['x'],
        mounts: [
          { type: 'bind', source: '', target: 'rel' },
          { type: 'tmpfs', target: '/' },
        ],
      },
      { command: ['x'], user: { uid: -1 }, env: { A: 1 } },
    ]) {
      expect(
        outcome(() => checkRunOptions(input)),
        JSON.stringify(input),
      ).toEqual(outcome(() => parseRunOptions(input)))
    }
  })
})

describe('the exec options: the same as zod', () => {
  // As detached.ts made it with zod before check.ts.
  const execSchema = runOptionsSchema
    .pick({
      command: true,
      env: true,
      cwd: true,
      user: true,
      tty: true,
      stdin: true,
      stdout: true,
      stderr: true,
      timeout: true,
      signal: true,
      input: true,
    })
    .extend({ command: commandSchema })
    .strict()
  it('the keys of exec are these', () => expect(Object.keys(execSchema.shape)).toEqual([...execOptionKeys]))
  it('every key, every value, and a run option exec does not take', () => {
    for (const key of [...execOptionKeys, 'rootfs', 'memory']) {
      for (const value of pool) {
        const input = key === 'command' ? { command: value } : { command: ['x'], [key]: value }
        expect(
          outcome(() => checkExecOptions(input)),
          `${key}: ${String(JSON.stringify(value))}`,
        ).toEqual(outcome(() => parseWith(execSchema, input)))
      }
    }
  })
})

describe('the runtime spec: the same value or the same first error as validateSpec', () => {
  const base = buildSpec(
    parseRunOptions({
      command: ['true'],
      timeOffsets: { boottime: 1 },
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1, hard: 1 }],
    }),
    'abc',
  ).spec
  const paths = [
    ['ociVersion'],
    ['process'],
    ['process', 'terminal'],
    ['process', 'user'],
    ['process', 'user', 'uid'],
    ['process', 'user', 'umask'],
    ['process', 'user', 'additionalGids'],
    ['process', 'args'],
    ['process', 'env'],
    ['process', 'cwd'],
    ['process', 'rlimits'],
    ['process', 'oomScoreAdj'],
    ['process', 'noNewPrivileges'],
    ['process', 'capabilities'],
    ['process', 'capabilities', 'bounding'],
    ['root'],
    ['hostname'],
    ['domainname'],
    ['mounts'],
    ['linux'],
    ['linux', 'namespaces'],
    ['linux', 'uidMappings'],
    ['linux', 'timeOffsets'],
    ['linux', 'timeOffsets', 'boottime'],
    ['linux', 'maskedPaths'],
    ['linux', 'sysctl'],
    ['annotations'],
    ['extra'],
  ]
  it('each field set to each value', () => {
    for (const path of paths) {
      for (const value of pool) {
        const spec = structuredClone({ ...base, linux: { ...base.linux, seccomp: undefined } }) as Record<string, any>
        let at = spec
        for (const p of path.slice(0, -1)) at = at[p]
        at[path.at(-1)!] = value
        expect(
          outcome(() => checkSpec(spec)),
          `${path.join('.')}: ${String(JSON.stringify(value))}`,
        ).toEqual(outcome(() => validateSpec(spec)))
      }
    }
  })
})
