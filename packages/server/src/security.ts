// Who may call, and what a caller may ask for: the bearer token here; the operator's policy on
// bind mounts and privileged requests in policy.ts (its judge and admission, re-exported).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

import type { MiddlewareHandler } from 'hono'

import { ApiError } from './errors.js'

// ---------------------------------------------------------------------------------------------
// Bearer token

/** A fresh token: 32 random bytes, base64url. */
export function generateToken(): string {
  return randomBytes(32).toString('base64url')
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest()

/** Does `given` equal the token? In constant time: both sides are hashed to equal-length digests. */
export function tokenMatches(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected)
}

/** Paths anyone may read without a token: liveness and the API's own description. */
export const publicPaths = new Set(['/v1/health', '/openapi.json', '/docs'])

/** `Authorization: Bearer <token>` on every request but the public ones; 401 otherwise. */
export function bearerAuth(token: string): MiddlewareHandler {
  const expected = digest(token)
  const challenge = { 'WWW-Authenticate': 'Bearer realm="ns"' }
  return async (c, next) => {
    if (!(c.req.method === 'GET' && publicPaths.has(c.req.path))) {
      const m = /^Bearer +(\S+) *$/i.exec(c.req.header('authorization') ?? '')
      if (!m)
        throw new ApiError(401, 'EAUTH', 'missing bearer token (Authorization: Bearer <token>)', { headers: challenge })
      if (!tokenMatches(m[1]!, expected))
        throw new ApiError(401, 'EAUTH', 'invalid bearer token', { headers: challenge })
    }
    await next()
  }
}

// ---------------------------------------------------------------------------------------------
// Policy: see policy.ts

export {
  admitOptions,
  admitSpec,
  checkOptions,
  checkSpec,
  grantableIds,
  judgeSpec,
  resolveAllowedRoots,
  type IdRanges,
  type Policy,
} from './policy.js'
