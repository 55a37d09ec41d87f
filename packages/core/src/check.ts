// Validation without zod, for the paths that start containers: loading zod and building its
// schemas costs more than starting a container does. The schemas of options.ts and spec.ts stay
// the reference (the server makes its OpenAPI of them); the ones here are written after them
// with the same rules, and give the same first error (field and message) as zod does for the
// same input; check.test.ts holds them to it, input by input, and key by key.
import { NsError } from './errors.js'
import { capabilityNames, namespaceNames, normalizeCap } from './names.js'
import type { ParsedRunOptions } from './options.js'
import {
  HOSTNAME_FORM,
  HOSTNAME_MAX,
  MAX_PIDS,
  MAX_TIMEOUT_MS,
  MEMORY_TOO_SMALL,
  memoryFits,
  SIZE_TOO_LARGE,
  sizeFits,
  targetProblem,
  volumeTarget,
  USER_FORM,
  USER_PROBLEM,
  pullPolicies,
  FUNCTION_PROBLEM,
  IMAGES_PROBLEM,
  isImages,
} from './rules.js'
import type { OciSpec } from './spec.js'

type Path = Array<string | number>

interface Issue {
  path: Path
  message: string
  /** zod's `continue`: a failed check (a bound, a pattern), not a wrong type; unions look at it. */
  check: boolean
}

/** Reads `v` at `path`: its value as parsed, with what is wrong added to `issues`. */
export type Check<T = unknown> = (v: unknown, path: Path, issues: Issue[]) => T

/** The name zod gives the type of a value it did not expect. */
function typeName(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v)
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v) as object | null
    const ctor = (v as { constructor?: { name?: string } }).constructor
    if (proto !== Object.prototype && ctor?.name) return ctor.name
  }
  return typeof v
}

const wrongType = (issues: Issue[], path: Path, expected: string, v: unknown) =>
  issues.push({ path, message: `Invalid input: expected ${expected}, received ${typeName(v)}`, check: false })

type Rule<T> = (v: T) => string | undefined

/** A string, with its rules in order (each failed one is an issue). */
export function str(...rules: Rule<string>[]): Check<string> {
  return (v, path, issues) => {
    if (typeof v !== 'string') {
      wrongType(issues, path, 'string', v)
      return v as string
    }
    for (const r of rules) {
      const message = r(v)
      if (message) issues.push({ path, message, check: true })
    }
    return v
  }
}

export const minLength =
  (n: number): Rule<string> =>
  (v) =>
    v.length < n ? `Too small: expected string to have >=${n} characters` : undefined
export const maxLength =
  (n: number): Rule<string> =>
  (v) =>
    v.length > n ? `Too big: expected string to have <=${n} characters` : undefined
export const pattern =
  (re: RegExp, message = `Invalid string: must match pattern ${re}`): Rule<string> =>
  (v) =>
    re.test(v) ? undefined : message
export const startsWith =
  (prefix: string, message: string): Rule<string> =>
  (v) =>
    v.startsWith(prefix) ? undefined : message
export const rule =
  <T>(ok: (v: T) => boolean, message: string): Rule<T> =>
  (v) =>
    ok(v) ? undefined : message
export const problem =
  <T>(f: (v: T) => string | undefined): Rule<T> =>
  (v) =>
    f(v)

/** A number (finite); `int` as zod's `.int()` (a whole number, within the safe range). */
export function num(opts: { int?: boolean }, ...rules: Rule<number>[]): Check<number> {
  return (v, path, issues) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      wrongType(issues, path, 'number', v)
      return v as number
    }
    if (opts.int) {
      if (!Number.isInteger(v)) {
        issues.push({ path, message: 'Invalid input: expected int, received number', check: false })
        return v
      }
      if (v > Number.MAX_SAFE_INTEGER)
        issues.push({ path, message: `Too big: expected int to be <=${Number.MAX_SAFE_INTEGER}`, check: true })
      if (v < Number.MIN_SAFE_INTEGER)
        issues.push({ path, message: `Too small: expected int to be >=${Number.MIN_SAFE_INTEGER}`, check: true })
    }
    for (const r of rules) {
      const message = r(v)
      if (message) issues.push({ path, message, check: true })
    }
    return v
  }
}

export const gte =
  (n: number): Rule<number> =>
  (v) =>
    v < n ? `Too small: expected number to be >=${n}` : undefined
export const gt =
  (n: number): Rule<number> =>
  (v) =>
    v <= n ? `Too small: expected number to be >${n}` : undefined
export const lte =
  (n: number): Rule<number> =>
  (v) =>
    v > n ? `Too big: expected number to be <=${n}` : undefined

export const bool: Check<boolean> = (v, path, issues) => {
  if (typeof v !== 'boolean') wrongType(issues, path, 'boolean', v)
  return v as boolean
}

export function oneOf<const T extends readonly string[]>(values: T): Check<T[number]> {
  const expected = values.map((x) => JSON.stringify(x)).join('|')
  return (v, path, issues) => {
    if (!(values as readonly unknown[]).includes(v))
      issues.push({ path, message: `Invalid option: expected one of ${expected}`, check: false })
    return v as T[number]
  }
}

export function instance<T>(cls: abstract new (...args: never[]) => T): Check<T> {
  return (v, path, issues) => {
    if (!(v instanceof cls)) wrongType(issues, path, cls.name, v)
    return v as T
  }
}

export function array<T>(item: Check<T>, ...rules: Rule<unknown[]>[]): Check<T[]> {
  return (v, path, issues) => {
    if (!Array.isArray(v)) {
      wrongType(issues, path, 'array', v)
      return v as T[]
    }
    const out = v.map((x, i) => item(x, [...path, i], issues))
    for (const r of rules) {
      const message = r(v)
      if (message) issues.push({ path, message, check: true })
    }
    return out
  }
}

export const minItems =
  (n: number): Rule<unknown[]> =>
  (v) =>
    v.length < n ? `Too small: expected array to have >=${n} items` : undefined

/** Marks a field of an object as optional (undefined passes). */
export interface Optional<T> {
  optional: Check<T>
}
export const optional = <T>(c: Check<T>): Optional<T> => ({ optional: c })

type Shape = Record<string, Check | Optional<unknown>>

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
/** Records take plain objects only (an AbortSignal is not one); objects take any. */
const isPlain = (v: unknown): v is Record<string, unknown> => {
  if (!isObject(v)) return false
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}
/** The keys zod looks at for unknown ones: enumerable, own or inherited. */
function keysIn(v: object): string[] {
  const out: string[] = []
  for (const k in v) out.push(k)
  return out
}

/**
 * An object with the fields of `shape`, read in its order. Other keys: `strict` an issue (after
 * the fields'), `strip` dropped, `loose` kept, as zod's strictObject, object and looseObject.
 */
export function object(shape: Shape, unknown: 'strict' | 'strip' | 'loose'): Check<Record<string, unknown>> {
  const keys = Object.keys(shape)
  return (v, path, issues) => {
    if (!isObject(v)) {
      wrongType(issues, path, 'object', v)
      return v as Record<string, unknown>
    }
    const out: Record<string, unknown> = {}
    for (const k of keys) {
      const f = shape[k]!
      const x = v[k]
      if ('optional' in f) {
        if (x === undefined) {
          if (k in v) out[k] = undefined
          continue
        }
        out[k] = f.optional(x, [...path, k], issues)
      } else out[k] = (f as Check)(x, [...path, k], issues)
    }
    const extra = keysIn(v).filter((k) => !Object.hasOwn(shape, k))
    if (extra.length && unknown === 'strict') unrecognized(issues, path, extra)
    if (unknown === 'loose') for (const k of extra) out[k] = v[k]
    return out
  }
}

function unrecognized(issues: Issue[], path: Path, keys: string[]): void {
  const list = keys.map((k) => JSON.stringify(k)).join(', ')
  issues.push({ path, message: `Unrecognized key${keys.length > 1 ? 's' : ''}: ${list}`, check: false })
}

/** A record: every key read by `key` (a wrong one is an issue of its own), every value by `value`. */
export function record<T>(key: Check<string>, value: Check<T>): Check<Record<string, T>> {
  return (v, path, issues) => {
    if (!isPlain(v)) {
      wrongType(issues, path, 'record', v)
      return v as Record<string, T>
    }
    const out: Record<string, T> = {}
    for (const [k, x] of Object.entries(v)) {
      const keyIssues: Issue[] = []
      key(k, [...path, k], keyIssues)
      if (keyIssues.length) {
        issues.push({ path: [...path, k], message: 'Invalid key in record', check: false })
        continue
      }
      out[k] = value(x, [...path, k], issues)
    }
    return out
  }
}

/** zod's partialRecord of an enum: the keys among `keys`, each value (present) read by `value`. */
export function partialRecord<T>(keys: readonly string[], value: Check<T>): Check<Record<string, T>> {
  return (v, path, issues) => {
    if (!isPlain(v)) {
      wrongType(issues, path, 'record', v)
      return v as Record<string, T>
    }
    const out: Record<string, T> = {}
    for (const k of keys) if (k in v) out[k] = value(v[k], [...path, k], issues)
    const extra = Object.keys(v).filter((k) => !keys.includes(k))
    if (extra.length) unrecognized(issues, path, extra)
    return out
  }
}

/**
 * The first option that takes the value. Else, as zod: the issues of the only option that
 * failed by its checks alone (the value had its type), or one issue, "Invalid input".
 */
export function union<T>(...options: Check<T>[]): Check<T> {
  return (v, path, issues) => {
    const tried: Issue[][] = []
    for (const o of options) {
      const own: Issue[] = []
      const out = o(v, path, own)
      if (own.length === 0) return out
      tried.push(own)
    }
    const checksOnly = tried.filter((t) => t.every((i) => i.check))
    if (checksOnly.length === 1) issues.push(...checksOnly[0]!)
    else issues.push({ path, message: 'Invalid input', check: false })
    return v as T
  }
}

/** zod's `.refine()` after a schema: the rules run only on a value the check let through. */
export function refined<T>(c: Check<T>, ...rules: Rule<T>[]): Check<T> {
  return (v, path, issues) => {
    const own: Issue[] = []
    const out = c(v, path, own)
    issues.push(...own)
    if (own.length > 0) return out
    for (const r of rules) {
      const message = r(out)
      if (message !== undefined) {
        issues.push({ path, message, check: true })
        break
      }
    }
    return out
  }
}

/** zod's discriminatedUnion: the option whose `key` is the value's. */
export function tagged(key: string, options: Record<string, Check>): Check {
  const expected = Object.keys(options)
    .map((k) => `'${k}'`)
    .join(' | ')
  return (v, path, issues) => {
    if (!isObject(v)) {
      wrongType(issues, path, 'object', v)
      return v
    }
    const tag = v[key]
    const o = typeof tag === 'string' && Object.hasOwn(options, tag) ? options[tag] : undefined
    if (!o) {
      issues.push({ path: [...path, key], message: `Invalid discriminator value. Expected ${expected}`, check: false })
      return v
    }
    return o(v, path, issues)
  }
}

/** `a.b[0].c` from a path. */
export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`
    else out += out === '' ? String(p) : `.${String(p)}`
  }
  return out || '(options)'
}

/** Read `value` with `c`: its value as read, and the first thing wrong with it, if any. */
export function firstIssue<T>(c: Check<T>, value: unknown): { value: T; issue?: { path: Path; message: string } } {
  const issues: Issue[] = []
  const out = c(value, [], issues)
  return issues.length ? { value: out, issue: issues[0]! } : { value: out }
}

/** Read `value` with `c`; throw an NsError naming the first bad field, as `parseWith` does. */
export function checkWith<T>(c: Check<T>, value: unknown): T {
  const issues: Issue[] = []
  const out = c(value, [], issues)
  if (issues.length === 0) return out
  const issue = issues[0]!
  throw NsError.invalid(fieldPath(issue.path), issue.message.replace(/^Invalid input: /, ''))
}

// ---------------------------------------------------------------- the options (options.ts)

const u32 = num({ int: true }, gte(0), lte(4294967295))
const idMapping = object(
  {
    containerID: u32,
    hostID: u32,
    size: num(
      { int: true },
      rule((n) => n >= 1, 'must be > 0'),
      lte(4294967295),
    ),
  },
  'strip',
)
const mountTarget = str(problem(targetProblem))
const bindMount = object(
  {
    type: str(),
    source: str(minLength(1)),
    target: mountTarget,
    readOnly: optional(bool),
    idmap: optional(bool),
  },
  'strip',
)
const tmpfsMount = object(
  {
    type: str(),
    target: mountTarget,
    size: optional(str(pattern(/^\d+[kmg]?$/, 'must be a size like 64m'))),
    mode: optional(str(pattern(/^[0-7]{3,4}$/, 'must be an octal mode like 1777'))),
  },
  'strip',
)
const capName = str(
  rule(
    (n) => normalizeCap(n) === 'ALL' || (capabilityNames as readonly string[]).includes(normalizeCap(n)),
    'is not a capability (like CAP_SYS_ADMIN, or ALL)',
  ),
)
const stdioValue = union<unknown>(oneOf(['pipe', 'inherit', 'ignore']), num({ int: true }, gte(0)))
const user = union<unknown>(
  str(pattern(USER_FORM, USER_PROBLEM)),
  object(
    {
      uid: num({ int: true }, gte(0)),
      gid: optional(num({ int: true }, gte(0))),
      additionalGids: optional(array(num({ int: true }, gte(0)))),
    },
    'strip',
  ),
)
const size = (like: string, ...numberRules: Rule<number>[]) =>
  union<unknown>(
    num({ int: true }, ...numberRules),
    str(pattern(/^\d+[kmg]?$/i, `must be a size like ${like}`), rule(sizeFits, SIZE_TOO_LARGE)),
  )
const env = union<unknown>(record(str(), str()), array(str(pattern(/^[^=]+=/, 'must be KEY=VALUE'))))
const command = array(
  str(),
  rule((a) => a.length >= 1, 'must name a program'),
)

/** zod's `custom`: the value as it is, when `ok` takes it. */
const custom =
  <T>(ok: (v: unknown) => boolean, message: string): Check<T> =>
  (v, path, issues) => {
    if (!ok(v)) issues.push({ path, message, check: true })
    return v as T
  }

const runShape = {
  command: optional(command),
  rootfs: optional(str(minLength(1))),
  readOnly: optional(bool),
  hostname: optional(
    str(minLength(1), maxLength(HOSTNAME_MAX), pattern(HOSTNAME_FORM, 'must be letters, digits, dots and dashes')),
  ),
  domainname: optional(str(minLength(1), maxLength(64))),
  env: optional(env),
  cwd: optional(str(startsWith('/', 'must be an absolute path'))),
  user: optional(user),
  volumes: optional(
    array(
      str(
        pattern(
          /^[^:]+:\/[^:]*(:(ro|rw|idmap)(,(ro|rw|idmap))*)?$/,
          'must be SRC:DST[:OPTS] with an absolute DST, OPTS among ro, rw, idmap',
        ),
        problem((v) => (v.includes(':') ? targetProblem(volumeTarget(v)) : undefined)),
      ),
    ),
  ),
  mounts: optional(array(tagged('type', { bind: bindMount, tmpfs: tmpfsMount }))),
  namespaces: optional(
    partialRecord(namespaceNames, union<unknown>(bool, str(startsWith('/', 'must be an absolute path')))),
  ),
  userns: optional(oneOf(['auto', 'host'])),
  uidMappings: optional(array(idMapping, minItems(1))),
  gidMappings: optional(array(idMapping, minItems(1))),
  timeOffsets: optional(
    object({ monotonic: optional(num({ int: true })), boottime: optional(num({ int: true })) }, 'strict'),
  ),
  labels: optional(
    record(str(pattern(/^[A-Za-z0-9._-]+$/, 'label keys must be letters, digits, dots, dashes or underscores')), str()),
  ),
  tty: optional(bool),
  init: optional(bool),
  noNewPrivileges: optional(bool),
  memory: optional(
    refined<unknown>(
      size('64m', gt(0)),
      rule((v) => memoryFits(v as number | string), MEMORY_TOO_SMALL),
    ),
  ),
  memorySwap: optional(size('128m', gte(-1))),
  memoryReservation: optional(size('32m', gt(0))),
  pidsLimit: optional(num({ int: true }, gt(0), lte(MAX_PIDS))),
  cpus: optional(num({}, gt(0), lte(1024))),
  cpuShares: optional(num({ int: true }, gte(2), lte(262144))),
  cpusetCpus: optional(str(pattern(/^[0-9,-]+$/, 'must be a cpu list like 0-1,3'))),
  bestEffortLimits: optional(bool),
  blkioWeight: optional(num({ int: true }, gte(10), lte(1000))),
  seccomp: optional(
    union<unknown>(
      oneOf(['default', 'unconfined']),
      object(
        {
          defaultAction: str(),
          syscalls: optional(array(object({ names: array(str()), action: str() }, 'loose'))),
        },
        'loose',
      ),
    ),
  ),
  capAdd: optional(array(capName)),
  capDrop: optional(array(capName)),
  rlimits: optional(
    array(
      object(
        {
          type: str(pattern(/^RLIMIT_[A-Z]+$/)),
          soft: num({ int: true }, gte(0)),
          hard: num({ int: true }, gte(0)),
        },
        'strip',
      ),
    ),
  ),
  stdin: optional(stdioValue),
  stdout: optional(stdioValue),
  stderr: optional(stdioValue),
  timeout: optional(num({ int: true }, gt(0), lte(MAX_TIMEOUT_MS))),
  signal: optional(instance(AbortSignal)),
  input: optional(union<unknown>(str(), instance(Uint8Array))),
  image: optional(str(minLength(1), maxLength(1024))),
  pull: optional(oneOf(pullPolicies)),
  platform: optional(str(minLength(1), maxLength(128))),
  entrypoint: optional(array(str())),
  onPull: optional(custom((v) => typeof v === 'function', FUNCTION_PROBLEM)),
  images: optional(custom(isImages, IMAGES_PROBLEM)),
} satisfies Shape

/** The keys of `runOptionsSchema`, for the test that holds the two to the same fields. */
export const runOptionKeys = Object.keys(runShape)

const runOptions = object(runShape, 'strict')

/** `parseRunOptions` without zod: the same result, the same first error. */
export function checkRunOptions(options: unknown): ParsedRunOptions {
  return checkWith(runOptions, options) as ParsedRunOptions
}

/** The options of `exec` (detached.ts): a part of the run options, nothing else. */
export const execOptionKeys = [
  'command',
  'env',
  'cwd',
  'user',
  'tty',
  'stdin',
  'stdout',
  'stderr',
  'timeout',
  'signal',
  'input',
] as const
const execOptions = object({ ...Object.fromEntries(execOptionKeys.map((k) => [k, runShape[k]])), command }, 'strict')

export function checkExecOptions(options: unknown): Pick<ParsedRunOptions, (typeof execOptionKeys)[number]> {
  return checkWith(execOptions, options) as Pick<ParsedRunOptions, (typeof execOptionKeys)[number]>
}

// ---------------------------------------------------------------- the runtime spec (spec.ts)

const specIdMapping = object(
  {
    containerID: u32,
    hostID: u32,
    size: num(
      { int: true },
      gte(0),
      lte(4294967295),
      rule((n) => n >= 1, 'must be > 0'),
    ),
  },
  'strip',
)
const specUser = object({ uid: u32, gid: u32, umask: optional(u32), additionalGids: optional(array(u32)) }, 'loose')
const specEnv = optional(array(str(pattern(/^[^=]+=/, 'must be KEY=VALUE'))))
const strings = optional(array(str()))

const ociSpec = object(
  {
    ociVersion: str(pattern(/^1\.\d+\.\d+/, 'must be a 1.x version')),
    process: object(
      {
        terminal: optional(bool),
        user: specUser,
        args: array(
          str(),
          rule((a) => a.length >= 1, 'must not be empty'),
        ),
        env: specEnv,
        cwd: str(startsWith('/', 'must be an absolute path')),
        rlimits: optional(
          array(object({ type: str(), soft: num({ int: true }, gte(0)), hard: num({ int: true }, gte(0)) }, 'loose')),
        ),
        noNewPrivileges: optional(bool),
        oomScoreAdj: optional(num({ int: true }, gte(-1000), lte(1000))),
        capabilities: optional(
          object(
            { bounding: strings, effective: strings, inheritable: strings, permitted: strings, ambient: strings },
            'loose',
          ),
        ),
      },
      'loose',
    ),
    root: optional(object({ path: str(minLength(1)), readonly: optional(bool) }, 'loose')),
    hostname: optional(str(maxLength(64))),
    domainname: optional(str(maxLength(64))),
    mounts: optional(
      array(
        object(
          {
            destination: str(startsWith('/', 'must be an absolute path')),
            type: optional(str()),
            source: optional(str()),
            options: strings,
          },
          'loose',
        ),
      ),
    ),
    linux: optional(
      object(
        {
          namespaces: optional(
            array(
              object(
                {
                  type: oneOf(['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time']),
                  path: optional(str()),
                },
                'loose',
              ),
            ),
          ),
          uidMappings: optional(array(specIdMapping)),
          gidMappings: optional(array(specIdMapping)),
          timeOffsets: optional(
            partialRecord(
              ['monotonic', 'boottime'],
              object(
                { secs: num({ int: true }), nanosecs: optional(num({ int: true }, gte(0), lte(999999999))) },
                'loose',
              ),
            ),
          ),
          maskedPaths: strings,
          readonlyPaths: strings,
          rootfsPropagation: optional(str()),
          sysctl: optional(record(str(), str())),
        },
        'loose',
      ),
    ),
    annotations: optional(record(str(), str())),
  },
  'loose',
)

/** `validateSpec` without zod: the same result, the same first error. */
export function checkSpec(spec: unknown): OciSpec {
  return checkWith(ociSpec, spec) as OciSpec
}

/**
 * The values of a built spec that its options allow more freely than the spec does, checked
 * with the spec's own rules (see build.ts): the user, the environment, the hostname, the id maps.
 */
const looserParts = object(
  {
    process: object({ user: specUser, env: specEnv }, 'strip'),
    hostname: optional(str(maxLength(64))),
    linux: object(
      { uidMappings: optional(array(specIdMapping)), gidMappings: optional(array(specIdMapping)) },
      'strip',
    ),
  },
  'strip',
)

export function checkBuiltSpec(spec: OciSpec): void {
  checkWith(looserParts, spec)
}
