// Images over HTTP, a thin layer over @ns/core's store: pull (its progress as Server-Sent
// Events, or one answer at the end), list, inspect, tag, remove, prune, and archives in (load,
// the body spooled to a temp file as it arrives) and out (save, the archive as the response).
// What a pull may reach is the policy's (`judgePull`; each connection in egress.ts).
import { createWriteStream } from 'node:fs'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'

import { createRoute, z } from '@hono/zod-openapi'
import { streamSSE } from 'hono/streaming'

import { parsePlatform, parseReference, type ImageInfo, type PullEvent } from '@ns/core'

import { router, type AppContext } from '../context.js'
import { ApiError, errorBody, imageFailure } from '../errors.js'
import { whileAny } from '../limits.js'
import { judgePull } from '../pull-policy.js'
import {
  errors,
  eventStream,
  imageDetails,
  imageInfo,
  imageRefParams,
  json,
  jsonBody,
  pruneResult,
  pullBody,
  queryBool,
  removeResult,
  tagBody,
} from '../schemas.js'

const tags = ['images']
const heartbeatMs = 15_000

/** Where archives are loaded: its body is bounded by `maxArchiveBytes`, not `maxBodyBytes`. */
export const loadPath = '/v1/images/load'

const platformQuery = z
  .string()
  .max(128)
  .optional()
  .openapi({ description: "`os/arch[/variant]` for a multi-platform entry (default: the server's)." })

const pullImage = createRoute({
  method: 'post',
  path: '/v1/images/pull',
  tags,
  summary: 'Pull an image from a registry',
  description:
    'With `Accept: text/event-stream` the progress comes as Server-Sent Events, as the pull goes: `event:` is the type and `data:` the event as JSON — ' +
    '`resolving`; `resolved` (`{ digest, mediaType, platform, layers: [{ digest, size }] }`); `layer` per layer and step (`status`: resolved, exists, downloading, retrying, verified, complete; `bytes` of `total`, `elapsedMs`); ' +
    'then `complete` (`{ image }`, the record) or `error` (`{ status, error: { code, message, field? } }`, the status the request would have had). ' +
    'Otherwise one JSON answer once it is done. A client that disconnects aborts the pull: nothing half-written is kept. ' +
    "What may be pulled is the server's policy: the registries of `--allow-registry` when there are any, otherwise any registry at a public address " +
    '(not loopback, link-local or private); every connection of the pull (token servers, redirects) is checked as it is made. ' +
    "The server logs in with its own credentials; a registry's refusal of them is a 502 (`UNAUTHORIZED`, `DENIED`), never a 401.",
  request: { body: jsonBody(pullBody) },
  responses: {
    200: {
      description: 'The image pulled (JSON), or with `Accept: text/event-stream` its progress, ending with it',
      content: {
        'application/json': { schema: imageInfo },
        'text/event-stream': eventStream('').content['text/event-stream'],
      },
    },
    ...errors(
      [400, 'Invalid request (the message names the field: `reference`, `platform`)'],
      401,
      [403, 'A registry, or an address, this server does not pull from (`reference`); a file transport (`oci:`...)'],
      [404, 'No such repository, tag or digest, or no image for the platform (`NO_MATCHING_PLATFORM`)'],
      413,
      [429, 'Too many image pulls, loads and saves at once: retry later'],
      500,
      502,
      503,
      507,
    ),
  },
})

const listImages = createRoute({
  method: 'get',
  path: '/v1/images',
  tags,
  summary: 'List images',
  request: {
    query: z.object({
      reference: z.string().max(1024).optional().openapi({
        description:
          'Only images of this name (`alpine:3.20`, `repo@sha256:…`) or repository (`alpine`: any of its tags).',
        example: 'alpine',
      }),
      dangling: queryBool.openapi({ description: 'Only images without a name (true), or only with one (false).' }),
    }),
  },
  responses: { 200: json(z.array(imageInfo), 'The images of the store, newest first'), ...errors(400, 401, 500) },
})

const inspectImage = createRoute({
  method: 'get',
  path: '/v1/images/{ref}',
  tags,
  summary: 'Inspect an image',
  description: 'Its record (names, layers, platform, size) and its OCI image config.',
  request: { params: imageRefParams },
  responses: {
    200: json(imageDetails, 'The image'),
    ...errors(400, 401, [404, 'No such image (`IMAGE_NOT_FOUND`)'], 500),
  },
})

const removeImage = createRoute({
  method: 'delete',
  path: '/v1/images/{ref}',
  tags,
  summary: 'Remove an image (or one of its names)',
  description:
    'By name: removes that name, and the image with its last one. By id or digest: the image, refused (409 `IMAGE_IN_USE`) while it has several names unless `force`. ' +
    'Blobs another image (or a pull in progress) uses are kept.',
  request: {
    params: imageRefParams,
    query: z.object({ force: queryBool.openapi({ description: 'Remove it with all of its names.' }) }),
  },
  responses: {
    200: json(removeResult, 'What was untagged and deleted'),
    ...errors(400, 401, [404, 'No such image'], [409, 'In use: it has other names (`IMAGE_IN_USE`)'], 500),
  },
})

const tagImage = createRoute({
  method: 'post',
  path: '/v1/images/{ref}/tag',
  tags,
  summary: 'Give an image another name',
  request: { params: imageRefParams, body: jsonBody(tagBody) },
  responses: {
    200: json(imageInfo, 'The image, with its names'),
    ...errors([400, 'Invalid request (`target`: not a name, or one with a digest)'], 401, [404, 'No such image'], 500),
  },
})

const pruneImages = createRoute({
  method: 'post',
  path: '/v1/images/prune',
  tags,
  summary: 'Remove images without a name, and every blob no image uses',
  description: 'Also what dead pulls left behind (temp files, locks). Blobs of pulls in progress are kept.',
  responses: {
    200: json(pruneResult, 'What was removed'),
    ...errors(401, 500),
  },
})

const archiveTypes = ['application/x-tar', 'application/gzip', 'application/octet-stream'] as const
const binary = z.string().openapi({ format: 'binary' })

const loadImages = createRoute({
  method: 'post',
  path: loadPath,
  tags,
  summary: 'Load the images of an archive',
  description:
    'The body is an `oci-archive` or a `docker-archive` (tar, gzip or not; told apart by its content), as `skopeo copy` and `docker save` write them. ' +
    "It is written to a temp file (in the server's TMPDIR) as it arrives, then read into the store; its size is bounded by the server (413 past it).",
  request: {
    query: z.object({ platform: platformQuery }),
    body: {
      required: true,
      content: Object.fromEntries(archiveTypes.map((t) => [t, { schema: binary }])),
    },
  },
  responses: {
    200: json(z.array(imageInfo), 'The images of the archive, as stored'),
    ...errors(
      [400, 'Not an archive, or a damaged one (`INVALID_ARCHIVE`, `DIGEST_MISMATCH`)'],
      401,
      [413, "Larger than the server's limit for archives"],
      [429, 'Too many image pulls, loads and saves at once: retry later'],
      500,
      507,
    ),
  },
})

const saveImage = createRoute({
  method: 'get',
  path: '/v1/images/{ref}/save',
  tags,
  summary: 'An image as an archive',
  description:
    'The image as an `oci-archive` (default) or a `docker-archive` (a tar that `skopeo`, `podman load` and `docker load` read, and POST /v1/images/load takes back).',
  request: {
    params: imageRefParams,
    query: z.object({
      format: z
        .enum(['oci-archive', 'docker-archive'])
        .optional()
        .openapi({ description: 'The archive format (default oci-archive).' }),
    }),
  },
  responses: {
    200: { description: 'The archive', content: { 'application/x-tar': { schema: binary } } },
    ...errors(
      400,
      401,
      [404, 'No such image'],
      [429, 'Too many image pulls, loads and saves at once: retry later'],
      500,
      [507, "No space left for the archive in the server's TMPDIR"],
    ),
  },
})

/** Does the client ask for the progress as it goes? */
function wantsEvents(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((t) => t.split(';')[0]!.trim().toLowerCase() === 'text/event-stream')
}

/** The images matching `reference`: a name (with its tag or digest), or a repository (any tag). */
function matcher(reference: string): (img: ImageInfo) => boolean {
  let ref
  try {
    ref = parseReference(reference, 'reference')
  } catch (e) {
    throw imageFailure(e, 'store')
  }
  if (ref.digest) {
    const d = ref.digest
    return (img) =>
      (img.digest === d || img.indexDigest === d) &&
      (img.repoDigests.some((r) => r.startsWith(`${ref.name}@`)) || img.names.some((n) => n.startsWith(`${ref.name}:`)))
  }
  const last = reference.slice(reference.lastIndexOf('/') + 1)
  if (last.includes(':')) return (img) => img.names.includes(ref.full)
  return (img) => img.names.some((n) => n.startsWith(`${ref.name}:`))
}

/** The error a stream reports, in the shape of an error answer and with the status it would have had. */
function errorEvent(e: unknown): { status: number; error: ReturnType<typeof errorBody>['error'] } {
  const err = imageFailure(e, 'registry')
  if (err instanceof ApiError) {
    return {
      status: err.status,
      error: errorBody(err.code, err.message, { field: err.field, step: err.step, hint: err.hint }).error,
    }
  }
  console.error(err)
  return { status: 500, error: errorBody('EINTERNAL', 'internal error').error }
}

/** Writes a request body to `file`, failing past `max` bytes (413) or on a full disk (507). */
async function spool(body: WebReadableStream<Uint8Array>, file: string, max: number, signal: AbortSignal) {
  let bytes = 0
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length
      if (bytes > max) done(new ApiError(413, 'E2BIG', `body: larger than ${max} bytes`, { field: 'body' }))
      else done(null, chunk)
    },
  })
  try {
    await pipeline(Readable.fromWeb(body), count, createWriteStream(file, { flags: 'wx', mode: 0o600 }), { signal })
  } catch (e) {
    if (e instanceof ApiError) throw e
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new ApiError(507, 'ENOSPC', `body: no space left for the archive in ${tmpdir()}`, {
        hint: 'free space there, or give the server another TMPDIR',
      })
    }
    if (signal.aborted) throw new ApiError(503, 'ABORTED', 'body: the client left before the archive was whole')
    throw new ApiError(400, 'EINVAL', `body: the archive could not be read: ${(e as Error).message}`, {
      field: 'body',
    })
  }
}

export function imageRoutes(ctx: AppContext) {
  const app = router()
  const images = ctx.images

  app.openapi(pullImage, async (c) => {
    const { reference, platform } = c.req.valid('json')
    try {
      if (platform !== undefined) parsePlatform(platform)
    } catch (e) {
      throw imageFailure(e, 'registry')
    }
    await judgePull(reference, ctx.policy).catch((e: unknown) => {
      throw imageFailure(e, 'registry')
    })
    const give = ctx.imageSlots.take()
    const pull = (signal: AbortSignal, onProgress?: (e: PullEvent) => void) =>
      images.pull(reference, { platform, signal, onProgress })

    if (!wantsEvents(c.req.header('accept'))) {
      try {
        const image = await whileAny([c.req.raw.signal, ctx.shutdown], (signal) => pull(signal))
        return c.json(image, 200)
      } catch (e) {
        throw imageFailure(e, 'registry')
      } finally {
        give()
      }
    }

    return streamSSE(c, async (sse) => {
      try {
        await whileAny([c.req.raw.signal, ctx.shutdown], async (gone) => {
          // Events come from the core as they happen; they are written in order, one at a time.
          let writing: Promise<unknown> = Promise.resolve()
          const send = (event: string, data: unknown) => {
            writing = writing.then(() => sse.writeSSE({ event, data: JSON.stringify(data) }))
          }
          // A registry may be slow to answer: comment lines keep the connection from looking idle.
          const alive = setInterval(() => (writing = writing.then(() => sse.write(': keep-alive\n\n'))), heartbeatMs)
          try {
            await pull(gone, (e) => send(e.type, e))
          } catch (e) {
            // To a client still there (the server may be going away); to one gone, nothing is written.
            send('error', errorEvent(e))
          } finally {
            clearInterval(alive)
          }
          await writing
        })
      } finally {
        give()
      }
    })
  })

  app.openapi(listImages, async (c) => {
    const { reference, dangling } = c.req.valid('query')
    const match = reference === undefined ? () => true : matcher(reference)
    const all = await images.list().catch((e: unknown) => {
      throw imageFailure(e, 'store')
    })
    const out = all.filter((img) => match(img) && (dangling === undefined || dangling === (img.names.length === 0)))
    return c.json(out, 200)
  })

  app.openapi(inspectImage, async (c) => {
    const { ref } = c.req.valid('param')
    const image = await images.inspect(ref).catch((e: unknown) => {
      throw imageFailure(e, 'store')
    })
    return c.json(image, 200)
  })

  app.openapi(removeImage, async (c) => {
    const { ref } = c.req.valid('param')
    const { force } = c.req.valid('query')
    const result = await images.remove(ref, { force: force ?? false }).catch((e: unknown) => {
      throw imageFailure(e, 'store')
    })
    return c.json(result, 200)
  })

  app.openapi(tagImage, async (c) => {
    const { ref } = c.req.valid('param')
    const { target } = c.req.valid('json')
    const image = await images.tag(ref, target).catch((e: unknown) => {
      throw imageFailure(e, 'store')
    })
    return c.json(image, 200)
  })

  app.openapi(pruneImages, async (c) => {
    const result = await images.prune().catch((e: unknown) => {
      throw imageFailure(e, 'store')
    })
    return c.json(result, 200)
  })

  app.openapi(loadImages, async (c) => {
    const { platform } = c.req.valid('query')
    const max = ctx.limits.maxArchiveBytes
    const declared = c.req.header('content-length')
    if (declared !== undefined && Number.parseInt(declared || '0', 10) > max)
      throw new ApiError(413, 'E2BIG', `body: larger than ${max} bytes`, { field: 'body' })
    try {
      if (platform !== undefined) parsePlatform(platform)
    } catch (e) {
      throw imageFailure(e, 'upload')
    }
    const body = c.req.raw.body
    if (!body) throw ApiError.invalid('body', 'send the archive as the request body')
    const give = ctx.imageSlots.take()
    const dir = await mkdtemp(join(tmpdir(), 'ns-load-'))
    try {
      const loaded = await whileAny([c.req.raw.signal, ctx.shutdown], async (signal) => {
        const file = join(dir, 'archive')
        await spool(body as WebReadableStream<Uint8Array>, file, max, signal)
        return images.load(file, { signal, platform })
      })
      return c.json(loaded, 200)
    } catch (e) {
      throw imageFailure(e, 'upload')
    } finally {
      give()
      await rm(dir, { recursive: true, force: true })
    }
  })

  app.openapi(saveImage, async (c) => {
    const { ref } = c.req.valid('param')
    const format = c.req.valid('query').format ?? 'oci-archive'
    const give = ctx.imageSlots.take()
    const dir = await mkdtemp(join(tmpdir(), 'ns-save-'))
    try {
      const file = join(dir, 'image.tar')
      await images.save(ref, file, format).catch((e: unknown) => {
        const code = (e as NodeJS.ErrnoException).code
        if (code === 'ENOSPC' || code === 'EDQUOT') {
          throw new ApiError(507, 'ENOSPC', `${ref}: no space left for the archive in ${tmpdir()}`, {
            hint: 'free space there, or give the server another TMPDIR',
          })
        }
        throw imageFailure(e, 'store')
      })
      // Open, then gone from the file system: the response reads what it holds open, and
      // nothing is left behind however the response ends.
      const fh = await open(file, 'r')
      const { size } = await fh.stat()
      await rm(dir, { recursive: true, force: true })
      const stream = fh.createReadStream()
      return new Response(Readable.toWeb(stream) as unknown as ReadableStream, {
        status: 200,
        headers: {
          'Content-Type': 'application/x-tar',
          'Content-Length': String(size),
          'Content-Disposition': `attachment; filename="${format === 'docker-archive' ? 'image.docker.tar' : 'image.oci.tar'}"`,
        },
      })
    } finally {
      give()
      await rm(dir, { recursive: true, force: true })
    }
  })

  return app
}
