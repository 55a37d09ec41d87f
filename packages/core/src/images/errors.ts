// The failures of pulling and keeping images, each with a code a program can test and one
// message a person can act on: what went wrong, for which reference, and what to do.
import { NsError } from '../errors.js'

/** Codes of image errors (besides `EINVAL` for a bad reference or option, `ENOSPC`, `EACCES`). */
export type ImageErrorCode =
  | 'IMAGE_NOT_FOUND'
  | 'NAME_UNKNOWN'
  | 'MANIFEST_UNKNOWN'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'NO_MATCHING_PLATFORM'
  | 'REGISTRY_UNREACHABLE'
  | 'REGISTRY_ERROR'
  | 'DIGEST_MISMATCH'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INVALID_MANIFEST'
  | 'INVALID_ARCHIVE'
  | 'IMAGE_IN_USE'
  | 'AMBIGUOUS_REFERENCE'
  | 'NOT_IMPLEMENTED'
  | 'ABORTED'
  | 'ENOSPC'
  | 'EACCES'
  | 'EINVAL'

export function imageError(
  code: ImageErrorCode,
  message: string,
  extra: { hint?: string; path?: string; field?: string; step?: string } = {},
): NsError {
  const hint = extra.hint
  return new NsError({
    code,
    message: hint ? `${message} (${hint})` : message,
    hint,
    path: extra.path,
    field: extra.field,
    step: extra.step,
  })
}

/** A file-system failure while writing into the store, with disk-full and permission named. */
export function storeWriteError(err: unknown, what: string, store: string): NsError {
  const e = err as NodeJS.ErrnoException
  if (e instanceof NsError) return e
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') {
    return imageError('ENOSPC', `${what}: no space left in the image store ${store}`, {
      hint: 'free space there, run prune, or choose another store with the store option',
      path: store,
      step: 'write blob',
    })
  }
  if (e?.code === 'EACCES' || e?.code === 'EPERM' || e?.code === 'EROFS') {
    return imageError('EACCES', `${what}: cannot write to the image store ${store} (${e.code})`, {
      hint: 'run as its owner or choose another store with the store option',
      path: store,
      step: 'write blob',
    })
  }
  return new NsError({
    code: e?.code ?? 'EIO',
    message: `${what}: ${e?.message ?? String(err)}`,
    path: e?.path ?? store,
    step: 'write blob',
  })
}

export function abortError(reference: string, signal?: AbortSignal): NsError {
  const reason = signal?.reason instanceof Error ? `: ${signal.reason.message}` : ''
  return imageError('ABORTED', `${reference}: aborted${reason}`)
}
