// Warm sandboxes for POST /v1/run (`ns serve --pool N`): the core's pool, of specs this server
// has judged (`admitOptions`, as for a request). A request whose options, but for its own
// fields (command, env, cwd, input, timeout), are the pool's runs in one of them; any other is
// started cold, as without a pool. Either way it is the same container: the spec of a sandbox
// is what the request's options compile to, with its command, environment and cwd sent when
// it runs.
import { MAX_POOL_SIZE, NsError, poolOfSpecs, type Pool } from '@ns/core'

import { fromZodError } from './errors.js'
import { admitOptions, type Policy } from './policy.js'
import { runBody, type ContainerOptions } from './schemas.js'

/** The fields of a run request that each run brings; every other is the pool's. */
export const poolRunFields = ['command', 'env', 'cwd', 'input', 'timeout'] as const

export interface ServerPool {
  pool: Pool
  /** The pool's options, as a request's are once validated. */
  options: Omit<ContainerOptions, 'command'>
  /** Does this request (validated) run in the pool? */
  matches(request: Record<string, unknown>): boolean
}

/** JSON with the keys of every object sorted: equal for equal values whatever their order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(v)
}

function withoutRunFields(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) if (!(poolRunFields as readonly string[]).includes(k)) out[k] = v
  return out
}

/**
 * The pool of `size` sandboxes with `options` (a run request's fields but its own), judged by
 * `policy` now: what the policy refuses, or options that are not valid, stop the server from
 * starting, the field named (`poolOptions.rootfs`).
 */
export function serverPool(size: number, options: Record<string, unknown>, policy: Policy): ServerPool {
  if (!Number.isInteger(size) || size < 1 || size > MAX_POOL_SIZE)
    throw NsError.invalid('pool', `must be a whole number from 1 to ${MAX_POOL_SIZE}`)
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw NsError.invalid('poolOptions', 'must be an object of run options')
  for (const k of poolRunFields)
    if (k in options) throw NsError.invalid(`poolOptions.${k}`, 'is a field of each request, not of the pool')
  // Validated as a request's body would be (a command stands in for those to come).
  const parsed = runBody.safeParse({ ...options, command: ['true'] })
  if (!parsed.success) {
    const e = fromZodError(parsed.error, options, 'json')
    throw NsError.invalid(`poolOptions.${e.field ?? ''}`.replace(/\.$/, ''), e.message.replace(/^[^:]*: /, ''))
  }
  const { command: _command, ...judged } = parsed.data
  const body = { ...judged, command: ['true'] }
  // Judged now, as a request's options are: a refusal is the operator's to see at start-up.
  try {
    admitOptions(body, policy)
  } catch (e) {
    const err = e as { field?: string; message: string; code?: string }
    throw new NsError({
      code: err.code ?? 'EPERM',
      field: err.field ? `poolOptions.${err.field}` : 'poolOptions',
      message: `poolOptions.${err.message}`,
    })
  }
  const key = canonical(judged)
  return {
    pool: poolOfSpecs(size, (id) => admitOptions(body, policy, id)),
    options: judged,
    matches: (request) => canonical(withoutRunFields(request)) === key,
  }
}
