// Every failure leaves the server as JSON `{ "error": { "code", "message", "field"? } }` with the
// status that says whose fault it is. Never a stack trace.
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { z } from 'zod'

import { NsError } from '@ns/core'

export interface ErrorBody {
  error: {
    code: string
    message: string
    field?: string
    step?: string
    hint?: string
  }
}

/** An error with the HTTP status it answers with (hono's HTTPException is the shape). */
export class ApiError extends Error {
  override readonly name = 'ApiError'
  readonly status: ContentfulStatusCode
  readonly code: string
  readonly field: string | undefined
  readonly headers: Record<string, string>
  readonly step: string | undefined
  readonly hint: string | undefined

  constructor(
    status: ContentfulStatusCode,
    code: string,
    message: string,
    opts: {
      field?: string | undefined
      headers?: Record<string, string>
      step?: string | undefined
      hint?: string | undefined
    } = {},
  ) {
    super(message)
    this.status = status
    this.code = code
    this.field = opts.field
    this.headers = opts.headers ?? {}
    this.step = opts.step
    this.hint = opts.hint
  }

  /** 400: the request names a bad value. The message starts with the field, as @ns/core's do. */
  static invalid(field: string, reason: string): ApiError {
    return new ApiError(400, 'EINVAL', `${field}: ${reason}`, { field })
  }

  /** 403: valid, but refused by the operator's policy. */
  static refused(field: string, reason: string): ApiError {
    return new ApiError(403, 'EPERM', `${field}: ${reason}`, { field })
  }

  static noContainer(id: string): ApiError {
    return new ApiError(404, 'ENOENT', `container "${id}" does not exist`)
  }

  static timedOut(message: string): ApiError {
    return new ApiError(408, 'ETIMEDOUT', message)
  }
}

const missingContainer = /^container ".*" does not exist$/

/** The status an NsError of @ns/core answers with. */
export function statusOf(e: NsError): ContentfulStatusCode {
  switch (e.code) {
    case 'EINVAL':
    case 'ERANGE': // a limit the kernel refuses as out of range (a CPU the host lacks)
      return 400
    case 'ESTATE': // cannot start a running container, delete a running one...
    case 'EEXIST': // the id is taken
    case 'ESRCH': // signal to a container that is not running
      return 409
    case 'ENOENT':
      // A missing container is a 404; a missing executable or path inside is the request's fault.
      return missingContainer.test(e.message) ? 404 : 400
    default:
      // Cannot execute (126) or not found (127): the command asked for is wrong.
      return e.exitCode === 126 || e.exitCode === 127 ? 400 : 500
  }
}

/**
 * The status of an image error of @ns/core. Whose fault it is depends on where the content came
 * from: bad content from a registry is the registry's (502, the server is its client), in an
 * uploaded archive the client's (400). A registry that refuses the server's credentials is a
 * 502 too, never a 401: 401 says the client's bearer token for this server is wrong.
 */
export function imageStatusOf(e: NsError, source: 'registry' | 'upload' | 'store'): ContentfulStatusCode {
  switch (e.code) {
    case 'EINVAL':
    case 'AMBIGUOUS_REFERENCE':
    case 'INVALID_ARCHIVE':
      return 400
    case 'EPERM': // a connection the server's policy refused (egress.ts)
      return e.field === 'reference' ? 403 : 500
    case 'IMAGE_NOT_FOUND':
    case 'MANIFEST_UNKNOWN':
    case 'NAME_UNKNOWN':
    case 'NO_MATCHING_PLATFORM':
      return 404
    case 'IMAGE_IN_USE':
      return 409
    case 'DIGEST_MISMATCH':
    case 'INVALID_MANIFEST':
    case 'UNSUPPORTED_MEDIA_TYPE':
      return source === 'upload' ? 400 : 502
    case 'UNAUTHORIZED':
    case 'DENIED':
    case 'REGISTRY_UNREACHABLE':
    case 'REGISTRY_ERROR':
      return 502
    case 'NOT_IMPLEMENTED':
      return 501
    case 'ABORTED': // the client left, or the server is going away
      return 503
    case 'ENOSPC':
      return 507
    default:
      return statusOf(e)
  }
}

/** An image error of @ns/core as the API's error (an ApiError passes as it is). */
export function imageFailure(e: unknown, source: 'registry' | 'upload' | 'store'): unknown {
  if (!(e instanceof NsError)) return e
  const status = imageStatusOf(e, source)
  // The policy's refusals read as the server's others: the field first.
  const message = e.code === 'EPERM' && status === 403 ? `reference: ${e.message}` : e.message
  return new ApiError(status, e.code, message, { field: e.field, step: e.step, hint: e.hint })
}

/** `a.b[0].c` from a zod issue path. */
export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`
    else out += out === '' ? String(p) : `.${String(p)}`
  }
  return out
}

type Issue = z.core.$ZodIssue

/**
 * The one issue worth telling. In a union, the branch the input meant: at the top of a create body
 * the one with (or without) `spec`; elsewhere the branch that got deepest into the value.
 */
function tellable(issue: Issue, input: unknown, base: PropertyKey[] = []): { path: PropertyKey[]; message: string } {
  const path = [...base, ...issue.path]
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    let branch: Issue[] | undefined
    if (path.length === 0 && input !== null && typeof input === 'object' && issue.errors.length === 2) {
      branch = issue.errors['spec' in input ? 1 : 0]
    } else {
      const depth = (b: Issue[]) => b[0]?.path.length ?? -1
      branch = [...issue.errors].sort((a, b) => depth(b) - depth(a))[0]
    }
    if (branch?.[0]) return tellable(branch[0], input, path)
  }
  if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) {
    return { path: [...path, issue.keys[0]], message: 'unknown field' }
  }
  return { path, message: issue.message.replace(/^Invalid input: /, '') }
}

/** What a validation target is called in messages. */
const targetNames: Record<string, string> = { json: 'body', param: 'path', query: 'query', header: 'header' }

/** The 400 for a request that failed its zod schema. */
export function fromZodError(error: z.ZodError, input: unknown, target: string): ApiError {
  const first = error.issues[0]
  if (!first) return ApiError.invalid(target, 'invalid')
  const { path, message } = tellable(first, input)
  const field = fieldPath(path) || (targetNames[target] ?? target)
  return ApiError.invalid(field, message)
}

export function errorBody(
  code: string,
  message: string,
  extra: Omit<ErrorBody['error'], 'code' | 'message'> = {},
): ErrorBody {
  const error: ErrorBody['error'] = { code, message }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) (error as unknown as Record<string, string>)[k] = v
  return { error }
}

/** The response for anything thrown while handling a request. */
export function errorResponse(err: unknown, c: Context): Response {
  if (err instanceof ApiError) {
    for (const [k, v] of Object.entries(err.headers)) c.header(k, v)
    return c.json(errorBody(err.code, err.message, { field: err.field, step: err.step, hint: err.hint }), err.status)
  }
  if (err instanceof NsError) {
    // A command that cannot run is the `command` asked for.
    const field = err.field ?? (err.exitCode === 126 || err.exitCode === 127 ? 'command' : undefined)
    return c.json(errorBody(err.code, err.message, { field, step: err.step, hint: err.hint }), statusOf(err))
  }
  if (err instanceof HTTPException) {
    // hono's own: malformed JSON (400), a body that is not JSON (415)...
    const status = err.status as ContentfulStatusCode
    const message = err.status === 400 ? 'body: malformed JSON' : err.message || 'request refused'
    const code = err.status === 400 ? 'EINVAL' : err.status === 415 ? 'EMEDIATYPE' : 'EHTTP'
    return c.json(errorBody(code, message, err.status === 400 ? { field: 'body' } : {}), status)
  }
  // A bug of ours: say so without the details (they go to the server's own log).
  console.error(err)
  return c.json(errorBody('EINTERNAL', 'internal error'), 500)
}
