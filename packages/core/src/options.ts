import { z } from 'zod'

import { fieldPath } from './check.js'
import { NsError } from './errors.js'
import { capabilityNames, namespaceNames, normalizeCap } from './names.js'
import {
  MAX_PIDS,
  MAX_TIMEOUT_MS,
  MEMORY_TOO_SMALL,
  memoryFits,
  SIZE_TOO_LARGE,
  sizeFits,
  targetProblem,
  volumeTarget,
  HOSTNAME_FORM,
  HOSTNAME_MAX,
  USER_FORM,
  USER_PROBLEM,
  pullPolicies,
  FUNCTION_PROBLEM,
  IMAGES_PROBLEM,
  isImages,
} from './rules.js'
import type { Images } from './images/index.js'
import type { PullEvent } from './images/pull.js'

// The names are names.ts's (the paths that start containers load no zod); re-exported here.
export { capabilityNames, defaultCapabilities, namespaceNames, normalizeCap } from './names.js'
export type { NamespaceName } from './names.js'
export { fieldPath }

const idMapping = z.object({
  containerID: z.number().int().min(0).max(4294967295),
  hostID: z.number().int().min(0).max(4294967295),
  size: z.number().int().min(1, 'must be > 0').max(4294967295),
})

/** A mount's target: absolute, no `..`, not the root itself. */
const mountTarget = z.string().superRefine((v, ctx) => {
  const problem = targetProblem(v)
  if (problem) ctx.addIssue({ code: 'custom', message: problem })
})

const bindMount = z.object({
  type: z.literal('bind'),
  source: z.string().min(1),
  target: mountTarget,
  readOnly: z.boolean().optional(),
  /** See the files' owners through the container's id maps (an idmapped mount): host root's files are its root's. */
  idmap: z.boolean().optional(),
})
const tmpfsMount = z.object({
  type: z.literal('tmpfs'),
  target: mountTarget,
  size: z
    .string()
    .regex(/^\d+[kmg]?$/, 'must be a size like 64m')
    .optional(),
  mode: z
    .string()
    .regex(/^[0-7]{3,4}$/, 'must be an octal mode like 1777')
    .optional(),
})

const capName = z
  .string()
  .refine(
    (n) => normalizeCap(n) === 'ALL' || (capabilityNames as readonly string[]).includes(normalizeCap(n)),
    'is not a capability (like CAP_SYS_ADMIN, or ALL)',
  )

const stdioValue = z.union([z.enum(['pipe', 'inherit', 'ignore']), z.number().int().min(0)])

const user = z.union([
  z.string().regex(USER_FORM, USER_PROBLEM),
  z.object({
    uid: z.number().int().min(0),
    gid: z.number().int().min(0).optional(),
    additionalGids: z.array(z.number().int().min(0)).optional(),
  }),
])

/** A program and its arguments (required by `exec`). */
export const commandSchema = z.array(z.string()).min(1, 'must name a program')

/** The friendly options of `run` and `spawn`. Each compiles to a field of the OCI runtime spec. */
export const runOptionsSchema = z.strictObject({
  /** The program and its arguments (with an `image`: in place of its Cmd; default: the image's). */
  command: commandSchema.optional(),
  /** A root filesystem directory. Without it: a read-only sandbox of the host's own files. */
  rootfs: z.string().min(1).optional(),
  /** Make the root read-only (default: true for the sandbox, false for a rootfs). */
  readOnly: z.boolean().optional(),
  hostname: z
    .string()
    .min(1)
    .max(HOSTNAME_MAX)
    .regex(HOSTNAME_FORM, 'must be letters, digits, dots and dashes')
    .optional(),
  domainname: z.string().min(1).max(64).optional(),
  env: z
    .union([z.record(z.string(), z.string()), z.array(z.string().regex(/^[^=]+=/, 'must be KEY=VALUE'))])
    .optional(),
  cwd: z.string().startsWith('/', 'must be an absolute path').optional(),
  user: user.optional(),
  /** `SRC:DST[:OPTS]` volumes, as on docker's command line; OPTS: ro or rw, and idmap (comma-separated). */
  volumes: z
    .array(
      z
        .string()
        .regex(
          /^[^:]+:\/[^:]*(:(ro|rw|idmap)(,(ro|rw|idmap))*)?$/,
          'must be SRC:DST[:OPTS] with an absolute DST, OPTS among ro, rw, idmap',
        )
        .superRefine((v, ctx) => {
          const problem = v.includes(':') ? targetProblem(volumeTarget(v)) : undefined
          if (problem) ctx.addIssue({ code: 'custom', message: problem })
        }),
    )
    .optional(),
  mounts: z.array(z.discriminatedUnion('type', [bindMount, tmpfsMount])).optional(),
  /** Per namespace: true a new one (default for all but time), false the host's, a path to join one. */
  namespaces: z
    .partialRecord(
      z.enum(namespaceNames),
      z.union([z.boolean(), z.string().startsWith('/', 'must be an absolute path')]),
    )
    .optional(),
  /**
   * The user namespace when none is mapped explicitly. `auto` (root's default): container ids
   * map to a range of host ids of the container's own, so its root is nobody on the host.
   * `host`: no user namespace at all (root inside is the host's root, bounded by capabilities).
   */
  userns: z.enum(['auto', 'host']).optional(),
  uidMappings: z.array(idMapping).min(1).optional(),
  gidMappings: z.array(idMapping).min(1).optional(),
  /** Clock offsets in seconds for a new time namespace. */
  timeOffsets: z
    .strictObject({ monotonic: z.number().int().optional(), boottime: z.number().int().optional() })
    .optional(),
  /** Labels, kept as annotations (`io.ns.label/<key>`) and usable to filter lists. */
  labels: z
    .record(
      z.string().regex(/^[A-Za-z0-9._-]+$/, 'label keys must be letters, digits, dots, dashes or underscores'),
      z.string(),
    )
    .optional(),
  /** Give the process a terminal (a pty from its own devpts; the caller's stdio is relayed to it). */
  tty: z.boolean().optional(),
  /** Run a minimal init as PID 1 (default true). */
  init: z.boolean().optional(),
  noNewPrivileges: z.boolean().optional(),
  /** Memory limit: bytes, or a size like 64m, 1g; at least 6m (less cannot start a process). */
  memory: z
    .union([
      z.number().int().positive(),
      z
        .string()
        .regex(/^\d+[kmg]?$/i, 'must be a size like 64m')
        .refine(sizeFits, SIZE_TOO_LARGE),
    ])
    .refine(memoryFits, MEMORY_TOO_SMALL)
    .optional(),
  /** Memory plus swap limit (-1: unlimited swap). */
  memorySwap: z
    .union([
      z.number().int().min(-1),
      z
        .string()
        .regex(/^\d+[kmg]?$/i, 'must be a size like 128m')
        .refine(sizeFits, SIZE_TOO_LARGE),
    ])
    .optional(),
  /** Memory the container is guaranteed under pressure (soft limit). */
  memoryReservation: z
    .union([
      z.number().int().positive(),
      z
        .string()
        .regex(/^\d+[kmg]?$/i, 'must be a size like 32m')
        .refine(sizeFits, SIZE_TOO_LARGE),
    ])
    .optional(),
  /** At most this many processes (and threads). */
  pidsLimit: z.number().int().positive().max(MAX_PIDS).optional(),
  /** CPU time as a number of CPUs (0.5: half of one). */
  cpus: z.number().positive().max(1024).optional(),
  /** Relative CPU weight (v1 shares, 2..262144; converted to a v2 weight). */
  cpuShares: z.number().int().min(2).max(262144).optional(),
  /** CPUs it may run on, as a list like 0-1,3. */
  cpusetCpus: z
    .string()
    .regex(/^[0-9,-]+$/, 'must be a cpu list like 0-1,3')
    .optional(),
  /**
   * Limits that cannot be applied (no cgroup delegated to a normal user, a controller the host
   * lacks) are by default an error. `true`: the container runs without them, and `warnings` say so.
   */
  bestEffortLimits: z.boolean().optional(),
  /** Relative weight of its block I/O, 10 to 1000 (where the host's I/O scheduler takes one). */
  blkioWeight: z.number().int().min(10).max(1000).optional(),
  /** 'default' (Docker's effect), 'unconfined', or a profile in the runtime spec's linux.seccomp form. */
  seccomp: z
    .union([
      z.enum(['default', 'unconfined']),
      z.looseObject({
        defaultAction: z.string(),
        syscalls: z.array(z.looseObject({ names: z.array(z.string()), action: z.string() })).optional(),
      }),
    ])
    .optional(),
  /** Capabilities on top of the default set (Docker's 14): names like CAP_SYS_ADMIN or SYS_ADMIN, or ALL. */
  capAdd: z.array(capName).optional(),
  /** Capabilities taken from the default set; ALL drops every one. */
  capDrop: z.array(capName).optional(),
  rlimits: z
    .array(
      z.object({
        type: z.string().regex(/^RLIMIT_[A-Z]+$/),
        soft: z.number().int().min(0),
        hard: z.number().int().min(0),
      }),
    )
    .optional(),
  stdin: stdioValue.optional(),
  stdout: stdioValue.optional(),
  stderr: stdioValue.optional(),
  /** Kill the container (SIGKILL) after this many milliseconds. */
  timeout: z.number().int().positive().max(MAX_TIMEOUT_MS).optional(),
  signal: z.instanceof(AbortSignal).optional(),
  /** For `run`: what the command reads on stdin. */
  input: z.union([z.string(), z.instanceof(Uint8Array)]).optional(),
  /**
   * An OCI image as the root filesystem (`alpine:3.20`, `host:port/repo@sha256:…`, an image id):
   * its layers' overlay with a writable layer of the container's own, and its config (Entrypoint,
   * Cmd, Env, WorkingDir, User, Volumes, Labels) under these options.
   */
  image: z.string().min(1).max(1024).optional(),
  /** When to pull the image: `missing` (default: when it is not in the store), `always`, `never`. */
  pull: z.enum(pullPolicies).optional(),
  /** The image's platform, `os/arch[/variant]` (default: this host's). */
  platform: z.string().min(1).max(128).optional(),
  /** In place of the image's Entrypoint (`[]`: none); its Cmd then goes too, as with docker. */
  entrypoint: z.array(z.string()).optional(),
  /** Called with each event of a pull the run makes. */
  onPull: z.custom<(event: PullEvent) => void>((v) => typeof v === 'function', FUNCTION_PROBLEM).optional(),
  /** The image store and registry settings to use (`openImages(...)`; default: the default store's). */
  images: z.custom<Images>(isImages, IMAGES_PROBLEM).optional(),
})

export type RunOptions = z.input<typeof runOptionsSchema>
export type ParsedRunOptions = z.output<typeof runOptionsSchema>

/** Validate, and throw an NsError naming the first bad field. */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, prefix = ''): z.output<T> {
  const r = schema.safeParse(value)
  if (r.success) return r.data
  const issue = r.error.issues[0]!
  const field = fieldPath([...(prefix ? [prefix] : []), ...issue.path])
  throw NsError.invalid(field, issue.message.replace(/^Invalid input: /, ''))
}

export function parseRunOptions(options: unknown): ParsedRunOptions {
  return parseWith(runOptionsSchema, options)
}
