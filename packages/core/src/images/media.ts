// The documents of an image (OCI image-spec 1.1 and Docker's schema 2): media types, the
// descriptor, the image index / manifest list, the manifest and the config, checked with zod
// so that a malformed document is an error naming its field.
import { z } from 'zod'

import { checkDigest } from './digest.js'
import { imageError } from './errors.js'

export const mediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociForeignLayer: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociForeignLayerGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociForeignLayerZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const

export const indexMediaTypes: readonly string[] = [mediaTypes.ociIndex, mediaTypes.dockerList]
export const manifestMediaTypes: readonly string[] = [mediaTypes.ociManifest, mediaTypes.dockerManifest]
export const configMediaTypes: readonly string[] = [mediaTypes.ociConfig, mediaTypes.dockerConfig]
const schema1MediaTypes: readonly string[] = [mediaTypes.dockerSchema1, mediaTypes.dockerSchema1Signed]

export type Compression = 'gzip' | 'zstd' | 'none'

const layerCompression: Record<string, Compression> = {
  [mediaTypes.ociLayer]: 'none',
  [mediaTypes.ociLayerGzip]: 'gzip',
  [mediaTypes.ociLayerZstd]: 'zstd',
  [mediaTypes.ociForeignLayer]: 'none',
  [mediaTypes.ociForeignLayerGzip]: 'gzip',
  [mediaTypes.ociForeignLayerZstd]: 'zstd',
  [mediaTypes.dockerLayer]: 'none',
  [mediaTypes.dockerLayerGzip]: 'gzip',
  [mediaTypes.dockerForeignLayerGzip]: 'gzip',
}

/** The compression of a layer of this media type, or undefined when it is not a layer ns can unpack. */
export function compressionOf(mediaType: string): Compression | undefined {
  return layerCompression[mediaType]
}

/** What a blob's first bytes say it is: gzip (1f 8b), zstd (28 b5 2f fd), else a plain tar. */
export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip'
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd'
  return 'none'
}

/** The OCI layer media type for a compression. */
export function ociLayerType(c: Compression): string {
  return c === 'gzip' ? mediaTypes.ociLayerGzip : c === 'zstd' ? mediaTypes.ociLayerZstd : mediaTypes.ociLayer
}

const digestField = z.string().superRefine((s, ctx) => {
  try {
    checkDigest(s, 'digest')
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message.replace(/^digest: /, '') })
  }
})

export const platformSchema = z.object({
  architecture: z.string().min(1),
  os: z.string().min(1),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
})
export type Platform = z.infer<typeof platformSchema>

export const descriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest: digestField,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: platformSchema.optional(),
  artifactType: z.string().optional(),
})
export type Descriptor = z.infer<typeof descriptorSchema>

export const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  annotations: z.record(z.string(), z.string()).optional(),
})
export type ImageIndex = z.infer<typeof indexSchema>

export const manifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  annotations: z.record(z.string(), z.string()).optional(),
})
export type ImageManifest = z.infer<typeof manifestSchema>

/** The image config (OCI image-spec `config.json`; Docker's is the same shape). */
export const imageConfigSchema = z
  .object({
    created: z.string().optional(),
    author: z.string().optional(),
    architecture: z.string().min(1),
    os: z.string().min(1),
    variant: z.string().optional(),
    'os.version': z.string().optional(),
    config: z
      .object({
        User: z.string().optional(),
        ExposedPorts: z.record(z.string(), z.object({}).loose()).nullish(),
        Env: z.array(z.string()).nullish(),
        Entrypoint: z.array(z.string()).nullish(),
        Cmd: z.array(z.string()).nullish(),
        Volumes: z.record(z.string(), z.object({}).loose()).nullish(),
        WorkingDir: z.string().optional(),
        Labels: z.record(z.string(), z.string()).nullish(),
        StopSignal: z.string().optional(),
      })
      .loose()
      .nullish(),
    rootfs: z.object({ type: z.literal('layers'), diff_ids: z.array(digestField) }),
    history: z.array(z.object({}).loose()).optional(),
  })
  .loose()
export type ImageConfig = z.infer<typeof imageConfigSchema>

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch (e) {
    throw imageError('INVALID_MANIFEST', `${what}: not valid JSON (${(e as Error).message})`)
  }
}

function check<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const r = schema.safeParse(value)
  if (r.success) return r.data
  const issue = r.error.issues[0]!
  const field = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')
  throw imageError('INVALID_MANIFEST', `${what}${field}: ${issue.message.replace(/^Invalid input: /, '')}`, {
    field: field.replace(/^\./, ''),
  })
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; index: ImageIndex }
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest }

/**
 * Reads a manifest document: an index / manifest list or an image manifest, of the media type
 * the registry declared (`declared`) or, lacking one, the one the document names or its shape
 * implies. Schema 1 is refused with the way out; other media types are named.
 */
export function parseManifest(bytes: Uint8Array, declared: string | undefined, what: string): ParsedManifest {
  const json = parseJson(bytes, what) as Record<string, unknown>
  if (json === null || typeof json !== 'object') throw imageError('INVALID_MANIFEST', `${what}: not a JSON object`)
  const own = typeof json.mediaType === 'string' ? json.mediaType : undefined
  let mediaType = declared?.split(';')[0]?.trim()
  if (!mediaType || mediaType === 'application/json' || mediaType === 'text/plain') mediaType = own
  if (json.schemaVersion === 1 || (mediaType && schema1MediaTypes.includes(mediaType))) {
    throw imageError(
      'UNSUPPORTED_MEDIA_TYPE',
      `${what}: Docker image manifest schema 1 is deprecated and not supported`,
      { hint: 'push the image again with a current engine (e.g. skopeo copy --format v2s2 or oci)' },
    )
  }
  if (!mediaType) mediaType = Array.isArray(json.manifests) ? mediaTypes.ociIndex : mediaTypes.ociManifest
  if (own && own !== mediaType) {
    throw imageError('INVALID_MANIFEST', `${what}: served as ${mediaType} but says it is ${own}`)
  }
  if (indexMediaTypes.includes(mediaType)) {
    return { kind: 'index', mediaType, index: check(indexSchema, json, what) }
  }
  if (manifestMediaTypes.includes(mediaType)) {
    const manifest = check(manifestSchema, json, what)
    if (!configMediaTypes.includes(manifest.config.mediaType)) {
      throw imageError(
        'UNSUPPORTED_MEDIA_TYPE',
        `${what}: config of media type ${manifest.config.mediaType} is not a container image (an artifact?)`,
      )
    }
    manifest.layers.forEach((l, i) => {
      if (compressionOf(l.mediaType) === undefined) {
        throw imageError(
          'UNSUPPORTED_MEDIA_TYPE',
          `${what}.layers[${i}]: layer media type ${l.mediaType} is not supported`,
          {
            field: `layers[${i}].mediaType`,
          },
        )
      }
    })
    return { kind: 'manifest', mediaType, manifest }
  }
  throw imageError('UNSUPPORTED_MEDIA_TYPE', `${what}: manifest media type ${mediaType} is not supported`)
}

/** Reads an image config and checks it against its manifest's layers. */
export function parseConfig(bytes: Uint8Array, layers: number, what: string): ImageConfig {
  const config = check(imageConfigSchema, parseJson(bytes, what), what)
  if (config.rootfs.diff_ids.length !== layers) {
    throw imageError(
      'INVALID_MANIFEST',
      `${what}: rootfs.diff_ids has ${config.rootfs.diff_ids.length} entries for ${layers} layers`,
      { field: 'rootfs.diff_ids' },
    )
  }
  return config
}

/** The Accept header of a manifest request: every type ns reads (schema 1 only to name it). */
export const manifestAccept = [
  mediaTypes.ociIndex,
  mediaTypes.ociManifest,
  mediaTypes.dockerList,
  mediaTypes.dockerManifest,
  `${mediaTypes.dockerSchema1Signed};q=0.5`,
  `${mediaTypes.dockerSchema1};q=0.5`,
].join(', ')
