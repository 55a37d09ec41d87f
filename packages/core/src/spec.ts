// The OCI runtime spec (config.json, runtime-spec 1.2): the one config model of ns. Friendly
// options compile to it (`buildSpec`); a spec given as is is validated by the same schema.
import { z } from 'zod'

import { parseWith } from './options.js'

const u32 = z.number().int().min(0).max(4294967295)

const idMapping = z.object({ containerID: u32, hostID: u32, size: u32.min(1, 'must be > 0') })

export const ociSpecSchema = z.looseObject({
  ociVersion: z.string().regex(/^1\.\d+\.\d+/, 'must be a 1.x version'),
  process: z.looseObject({
    terminal: z.boolean().optional(),
    user: z.looseObject({ uid: u32, gid: u32, umask: u32.optional(), additionalGids: z.array(u32).optional() }),
    args: z.array(z.string()).min(1, 'must not be empty'),
    env: z.array(z.string().regex(/^[^=]+=/, 'must be KEY=VALUE')).optional(),
    cwd: z.string().startsWith('/', 'must be an absolute path'),
    rlimits: z
      .array(z.looseObject({ type: z.string(), soft: z.number().int().min(0), hard: z.number().int().min(0) }))
      .optional(),
    noNewPrivileges: z.boolean().optional(),
    oomScoreAdj: z.number().int().min(-1000).max(1000).optional(),
    capabilities: z
      .looseObject({
        bounding: z.array(z.string()).optional(),
        effective: z.array(z.string()).optional(),
        inheritable: z.array(z.string()).optional(),
        permitted: z.array(z.string()).optional(),
        ambient: z.array(z.string()).optional(),
      })
      .optional(),
  }),
  root: z.looseObject({ path: z.string().min(1), readonly: z.boolean().optional() }).optional(),
  hostname: z.string().max(64).optional(),
  domainname: z.string().max(64).optional(),
  mounts: z
    .array(
      z.looseObject({
        destination: z.string().startsWith('/', 'must be an absolute path'),
        type: z.string().optional(),
        source: z.string().optional(),
        options: z.array(z.string()).optional(),
      }),
    )
    .optional(),
  linux: z
    .looseObject({
      namespaces: z
        .array(
          z.looseObject({
            type: z.enum(['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time']),
            path: z.string().optional(),
          }),
        )
        .optional(),
      uidMappings: z.array(idMapping).optional(),
      gidMappings: z.array(idMapping).optional(),
      timeOffsets: z
        .partialRecord(
          z.enum(['monotonic', 'boottime']),
          z.looseObject({ secs: z.number().int(), nanosecs: z.number().int().min(0).max(999999999).optional() }),
        )
        .optional(),
      maskedPaths: z.array(z.string()).optional(),
      readonlyPaths: z.array(z.string()).optional(),
      rootfsPropagation: z.string().optional(),
      sysctl: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  annotations: z.record(z.string(), z.string()).optional(),
})

export type OciSpec = z.output<typeof ociSpecSchema>
export type OciMount = NonNullable<OciSpec['mounts']>[number]
export type IdMapping = z.output<typeof idMapping>

/** Validate a runtime spec; errors name the field (`linux.uidMappings[0].size: must be > 0`). */
export function validateSpec(spec: unknown): OciSpec {
  return parseWith(ociSpecSchema, spec)
}
