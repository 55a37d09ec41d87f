// The request and response shapes of the API. Bodies reuse @ns/core's own zod schemas, so a
// request is validated by the same rules as a program's options, and the OpenAPI document is
// generated from exactly what validates.
import { z } from '@hono/zod-openapi'

import { commandSchema, ociSpecSchema, runOptionsSchema } from '@ns/core'

// ---------------------------------------------------------------------------------------------
// Small pieces

/** Container ids as the runtime accepts them: letters, digits and `_ + - .`, not starting with a dot. */
export const containerId = z
  .string()
  .max(1024)
  .regex(/^[A-Za-z0-9_+-][A-Za-z0-9_+.-]*$/, 'must be letters, digits and _ + - . (not starting with a dot)')

export const idParams = z.object({
  id: containerId.openapi({ param: { name: 'id', in: 'path' }, example: 'web' }),
})

/** A boolean in a query string. */
export const queryBool = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1')
  .optional()

/** Whole seconds in a query string, at most `max`. */
export function querySeconds(max: number, description: string) {
  return z
    .string()
    .regex(/^\d+$/, 'must be a whole number of seconds')
    .refine((v) => Number(v) <= max, `must be at most ${max}`)
    .transform(Number)
    .optional()
    .openapi({ description, example: '10' })
}

/** Signal names the runtime knows (with or without `SIG`, in any case), and numbers 1 to 64. */
const signalNames = new Set(
  'HUP INT QUIT ILL TRAP ABRT IOT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO POLL PWR SYS'.split(
    ' ',
  ),
)
const signalMessage = 'must be a signal name (SIGTERM, TERM) or number (1 to 64)'

/** `SIGKILL` for `kill`, `KILL`, `sigkill` and 9 for 9; undefined for what is no signal. */
export function signalOf(v: string | number): string | number | undefined {
  if (typeof v === 'number' || /^\d+$/.test(v)) {
    const n = Number(v)
    return Number.isInteger(n) && n >= 1 && n <= 64 ? n : undefined
  }
  const name = v.toUpperCase().replace(/^SIG/, '')
  return signalNames.has(name) ? `SIG${name}` : undefined
}

/** A signal in a query string. */
export const querySignal = z
  .string()
  .refine((v) => signalOf(v) !== undefined, signalMessage)
  .optional()
  .openapi({ description: 'Signal name or number (default SIGTERM).', example: 'SIGTERM' })

/** A signal in a JSON body: a name or a number. */
export const bodySignal = z
  .union([z.string(), z.number()])
  .refine((v) => signalOf(v) !== undefined, signalMessage)
  .optional()
  .openapi({ description: 'Signal name or number (default SIGTERM).', example: 'SIGKILL' })

// ---------------------------------------------------------------------------------------------
// Container options: @ns/core's friendly options, less what makes no sense over HTTP (file
// descriptors of the server, a terminal, an AbortSignal, binary input).

// Not a named component: the bodies below extend it, and a strict object extended by reference
// (`allOf`) would forbid the added fields in the JSON Schema. Each body is whole instead.
export const containerOptions = runOptionsSchema.omit({
  stdin: true,
  stdout: true,
  stderr: true,
  input: true,
  timeout: true,
  signal: true,
  tty: true,
  // The server's own image store and registry settings are used (and pulls are judged).
  onPull: true,
  images: true,
})
const optionsDescription =
  'The friendly options of @ns/core (those of `run`): each compiles to a field of the OCI runtime spec.'
export type ContainerOptions = z.output<typeof containerOptions>

const createExtras = {
  name: containerId.optional().openapi({ description: 'The container id (default: 12 random hex digits).' }),
  start: z.boolean().optional().openapi({ description: 'Start it at once (default: it waits for POST /start).' }),
  remove: z.boolean().optional().openapi({ description: 'Remove it once it has ended.' }),
}

/**
 * A full OCI runtime spec, validated by the core's schema. A copy: zod 4 gives `.openapi()` only to
 * schemas made after @hono/zod-openapi extended it, and the core's may have been made before.
 */
export const ociSpec = ociSpecSchema
  .clone()
  .openapi('OciSpec', { description: 'A full OCI runtime spec (config.json, runtime-spec 1.2).' })

export const createFromOptions = containerOptions
  .extend({
    ...createExtras,
    tty: z
      .boolean()
      .optional()
      .openapi({ description: 'Give it a terminal, reached through GET /v1/containers/{id}/attach (a WebSocket).' }),
  })
  .openapi('CreateFromOptions', { description: optionsDescription })
export const createFromSpec = z
  .strictObject({
    spec: ociSpec,
    ...createExtras,
    init: z.boolean().optional().openapi({ description: 'Run the minimal init as PID 1 (default true).' }),
  })
  .openapi('CreateFromSpec')
export const createBody = z.union([createFromOptions, createFromSpec]).openapi('CreateBody')

/** Kept in one place: the bound of a run's or an exec's `timeout`, in milliseconds. */
const timeoutMs = z.number().int().positive().optional().openapi({
  description: 'Kill it (SIGKILL) after this many milliseconds (default and upper bound: set by the server).',
})
const input = z
  .string()
  .max(1024 * 1024)
  .optional()
  .openapi({ description: 'What the command reads on stdin.' })

export const runBody = containerOptions
  .extend({ timeout: timeoutMs, input })
  .openapi('RunBody', { description: optionsDescription })

export const execBody = runOptionsSchema
  .pick({ env: true, cwd: true, user: true })
  .extend({ command: commandSchema, timeout: timeoutMs, input })
  .strict()
  .openapi('ExecBody')

/** New limits for a running container: those of the run options a cgroup takes again. */
export const updateBody = runOptionsSchema
  .pick({
    memory: true,
    memoryReservation: true,
    memorySwap: true,
    cpus: true,
    cpuShares: true,
    cpusetCpus: true,
    pidsLimit: true,
    blkioWeight: true,
  })
  .strict()
  .openapi('UpdateBody', { description: 'Only the limits given are written; the others stay as they are.' })

const termSize = z.number().int().min(1).max(65535)

/** The first message of an exec over a WebSocket: what to run. */
export const execSession = runOptionsSchema
  .pick({ env: true, cwd: true, user: true })
  .extend({
    command: commandSchema,
    tty: z.boolean().optional().openapi({ description: 'Give it a terminal (default true).' }),
    cols: termSize.optional().openapi({ description: 'Columns of the terminal at the start.' }),
    rows: termSize.optional().openapi({ description: 'Rows of the terminal at the start.' }),
  })
  .strict()
  .openapi('ExecSession')

/** What a client sends as text on a terminal's WebSocket (binary messages are keys). */
export const terminalMessage = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('resize'), cols: termSize, rows: termSize }),
  z.strictObject({ type: z.literal('input'), data: z.string().max(1024 * 1024) }),
  z.strictObject({ type: z.literal('close-stdin') }),
])

// ---------------------------------------------------------------------------------------------
// Responses

export const exitRecord = z
  .object({
    exitCode: z.number().int().nullable(),
    signal: z.number().int().nullable().openapi({ description: 'The number of the signal that ended it.' }),
    finished: z.string(),
  })
  .openapi('ExitRecord', { description: 'How it ended, as the monitor recorded it.' })

export const containerState = z
  .object({
    ociVersion: z.string(),
    id: z.string(),
    status: z.enum(['creating', 'created', 'running', 'paused', 'stopped']),
    pid: z.number().int().optional(),
    bundle: z.string(),
    annotations: z.record(z.string(), z.string()),
    created: z.string(),
    owner: z.string(),
    exit: exitRecord.optional(),
    labels: z.record(z.string(), z.string()),
  })
  .openapi('ContainerState', { description: 'The OCI state of a container, with its labels.' })

export const containerInspect = containerState
  .extend({
    config: ociSpec.optional(),
    namespaces: z.record(z.string(), z.object({ container: z.string(), host: z.string(), shared: z.boolean() })),
    pids: z.array(z.number().int()).openapi({ description: 'Host PIDs of its processes.' }),
    mounts: z.array(z.string()),
  })
  .openapi('ContainerInspect')

export const idAndState = z
  .object({
    id: z.string(),
    state: containerState,
    warnings: z
      .array(z.string())
      .optional()
      .openapi({ description: 'What was asked for and not done (limits not applied, with bestEffortLimits).' }),
  })
  .openapi('IdAndState')

export const exitStatus = z
  .object({
    exitCode: z.number().int().openapi({ description: 'The exit code, or 128 + N when signal N ended it.' }),
    signal: z
      .string()
      .nullable()
      .openapi({ description: 'The signal that ended it (SIGKILL), if one did.', example: null }),
    finished: z.string(),
    oomKilled: z.boolean().openapi({ description: "The kernel's OOM killer ended it: it reached its memory limit." }),
  })
  .openapi('ExitStatus')

export const runResult = z
  .object({
    exitCode: z.number().int(),
    signal: z.string().nullable(),
    timedOut: z.boolean(),
    stdout: z.string(),
    stderr: z.string(),
    truncated: z.boolean().openapi({ description: "Output past the server's limit was dropped." }),
    durationMs: z.number(),
    warnings: z
      .array(z.string())
      .optional()
      .openapi({ description: 'What was asked for and not done (limits not applied, with bestEffortLimits).' }),
  })
  .openapi('RunResult')

export const logEntry = z
  .object({ time: z.string(), stream: z.enum(['stdout', 'stderr']), log: z.string() })
  .openapi('LogEntry')

export const stats = z
  .object({
    id: z.string(),
    status: z.string(),
    source: z.enum(['cgroup', 'proc']).openapi({
      description: 'cgroup: read from its cgroup files (a container with limits); proc: summed over its processes.',
    }),
    memoryBytes: z.number().int().openapi({
      description: 'Memory charged to its cgroup, or the sum of the resident set sizes (VmRSS) of its processes.',
    }),
    memoryPeakBytes: z.number().int().optional(),
    memoryLimitBytes: z.number().int().optional(),
    cpuSeconds: z.number().openapi({ description: 'CPU time used (of its cgroup, or of its living processes).' }),
    pids: z.number().int(),
    pidsLimit: z.number().int().optional(),
    oomKilled: z.boolean().optional(),
    time: z.string(),
  })
  .openapi('Stats')

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'EINVAL' }),
      message: z.string().openapi({ example: 'command: must name a program' }),
      field: z.string().optional().openapi({ example: 'command' }),
      step: z.string().optional(),
      hint: z.string().optional(),
    }),
  })
  .openapi('Error')

const errorContent = { 'application/json': { schema: errorSchema } }
const errorDescriptions = {
  400: 'Invalid request: the message names the field',
  401: 'Missing or wrong bearer token (TCP only)',
  403: "Refused by the server's policy (bind mounts, privileged options, registries)",
  404: 'No such container',
  408: 'The server-side time limit elapsed',
  409: 'The container is in the wrong state, or the id is taken',
  413: 'Body too large',
  429: 'Too many container starts at once: retry later',
  500: 'Runtime failure',
  502: "The registry failed: unreachable, refused the server's credentials (UNAUTHORIZED, DENIED), or served content that does not verify",
  503: 'The server is shutting down, or the client left',
  507: 'No space left in the image store',
} as const

/** The error responses a route can give, as OpenAPI responses (a description of its own where given). */
export function errors<S extends keyof typeof errorDescriptions>(
  ...statuses: (S | [S, string])[]
): { [K in S]: { description: string; content: typeof errorContent } } {
  return Object.fromEntries(
    statuses.map((s) => {
      const [status, description] = Array.isArray(s) ? s : [s, errorDescriptions[s]]
      return [status, { description, content: errorContent }]
    }),
  ) as unknown as {
    [K in S]: { description: string; content: typeof errorContent }
  }
}

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
})

export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { 'application/json': { schema } },
})

export const eventStream = (description: string) => ({
  description,
  content: { 'text/event-stream': { schema: z.string() } },
})

// ---------------------------------------------------------------------------------------------
// Images

/** An image reference in a path: `name:tag`, `name@digest`, an id or a digest, URL-encoded. */
export const imageRefParams = z.object({
  ref: z
    .string()
    .min(1)
    .max(1024)
    .openapi({
      param: { name: 'ref', in: 'path' },
      description:
        'A name (`alpine:3.20`, `host:port/repo:tag`), `name@sha256:…`, an image id or manifest digest, or a unique id prefix; URL-encoded (`/` as `%2F`, `:` as `%3A`).',
      example: 'docker.io%2Flibrary%2Falpine%3A3.20',
    }),
})

const reference = z
  .string()
  .min(1)
  .max(1024)
  .openapi({ description: 'An image reference, as docker reads it.', example: 'alpine:3.20' })

export const pullBody = z
  .strictObject({
    reference,
    platform: z
      .string()
      .max(128)
      .optional()
      .openapi({ description: "`os/arch[/variant]` (default: the server's).", example: 'linux/arm64' }),
  })
  .openapi('PullBody')

export const tagBody = z
  .strictObject({
    target: z.string().min(1).max(1024).openapi({ description: 'The new name.', example: 'localhost/mine:1' }),
  })
  .openapi('TagBody')

const blobRef = z.object({ digest: z.string(), mediaType: z.string(), size: z.number().int() })

export const imageInfo = z
  .object({
    id: z.string().openapi({ description: "The image id docker and podman show: the config's digest." }),
    digest: z.string().openapi({ description: "The manifest's digest." }),
    names: z.array(z.string()).openapi({ description: 'The names (tags) that point at it.' }),
    manifestMediaType: z.string(),
    manifestSize: z.number().int(),
    indexDigest: z.string().optional().openapi({ description: 'The index (manifest list) it was chosen from.' }),
    indexMediaType: z.string().optional(),
    indexSize: z.number().int().optional(),
    config: blobRef,
    layers: z.array(
      blobRef.extend({
        diffId: z.string().openapi({ description: 'The digest of the uncompressed tar.' }),
        compression: z.enum(['gzip', 'zstd', 'none']),
        urls: z.array(z.string()).optional(),
      }),
    ),
    platform: z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() }),
    created: z.string().optional(),
    size: z.number().int().openapi({ description: 'Bytes of its blobs (compressed layers, config, manifest).' }),
    repoDigests: z.array(z.string()),
    added: z.string().openapi({ description: 'When it was stored.' }),
    source: z.string().openapi({ description: 'Where it came from.' }),
  })
  .openapi('Image', { description: 'An image in the store, with its names.' })

export const imageDetails = imageInfo
  .extend({
    imageConfig: z
      .object({
        architecture: z.string(),
        os: z.string(),
        config: z.record(z.string(), z.unknown()).nullish(),
        rootfs: z.object({ type: z.string(), diff_ids: z.array(z.string()) }),
      })
      .loose()
      .openapi({ description: 'The OCI image config (Env, Cmd, Entrypoint, WorkingDir, User... under `config`).' }),
  })
  .openapi('ImageDetails')

export const removeResult = z
  .object({
    untagged: z.array(z.string()),
    deleted: z.array(z.string()).openapi({ description: 'Manifest digests of the images deleted.' }),
    blobsRemoved: z.number().int(),
    bytesRemoved: z.number().int(),
  })
  .openapi('RemoveResult')

export const pruneResult = removeResult.extend({ tempFilesRemoved: z.number().int() }).openapi('PruneResult')
