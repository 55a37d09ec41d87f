// The server itself: liveness and versions.
import { createRoute, z } from '@hono/zod-openapi'

import { buildSpec, hostInfo, parseRunOptions } from '@ns/core'

import { router } from '../context.js'
import { json } from '../schemas.js'

const tags = ['system']

const health = createRoute({
  method: 'get',
  path: '/v1/health',
  tags,
  summary: 'Is the server up (no token needed)',
  responses: { 200: json(z.object({ ok: z.literal(true) }), 'Up') },
})

const version = createRoute({
  method: 'get',
  path: '/v1/version',
  tags,
  summary: 'Versions of ns and of the OCI runtime spec it writes',
  responses: { 200: json(z.object({ version: z.string(), ociVersion: z.string() }), 'Versions') },
})

let versions: { version: string; ociVersion: string } | undefined

export function systemRoutes() {
  const app = router()
  app.openapi(health, (c) => c.json({ ok: true as const }, 200))
  app.openapi(version, (c) => {
    // The spec version is the one the core writes, asked of it once.
    versions ??= {
      version: hostInfo().version,
      ociVersion: buildSpec(parseRunOptions({ command: ['true'] })).spec.ociVersion,
    }
    return c.json(versions, 200)
  })
  return app
}
