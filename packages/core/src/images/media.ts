// The documents of an image (OCI image-spec 1.1 and Docker's schema 2): media types, the
// descriptor, the image index / manifest list, the manifest and the config, checked field by
// field (with check.ts's readers, without a schema library, so that the command line can load
// them fast) so that a malformed document is an error naming its field.
import { array, firstIssue, gte, minLength, num, object, optional, problem, record, str, type Check } from '../check.js'

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

const digestField = str(
  problem((s) => {
    try {
      checkDigest(s, 'digest')
      return undefined
    } catch (e) {
      return (e as Error).message.replace(/^digest: /, '')
    }
  }),
)

/** zod's `.nullish()`: undefined or null pass, anything else is read by `c`. */
function nullish<T>(c: Check<T>) {
  return optional<T | null>((v, path, issues) => (v === null ? null : c(v, path, issues)))
}
const strings = array(str())
/** An object of anything (`{}` in a config's `ExposedPorts`, `Volumes`). */
const anyObject = object({}, 'loose')

const platformShape = {
  architecture: str(minLength(1)),
  os: str(minLength(1)),
  'os.version': optional(str()),
  'os.features': optional(strings),
  variant: optional(str()),
  features: optional(strings),
}
const platformSchema = object(platformShape, 'strip')
export interface Platform {
  architecture: string
  os: string
  'os.version'?: string | undefined
  'os.features'?: string[] | undefined
  variant?: string | undefined
  features?: string[] | undefined
}

const descriptorSchema = object(
  {
    mediaType: str(minLength(1)),
    digest: digestField,
    size: num({ int: true }, gte(0)),
    urls: optional(strings),
    annotations: optional(record(str(), str())),
    platform: optional(platformSchema),
    artifactType: optional(str()),
  },
  'strip',
)
export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  urls?: string[] | undefined
  annotations?: Record<string, string> | undefined
  platform?: Platform | undefined
  artifactType?: string | undefined
}

const schemaVersion2: Check<2> = (v, path, issues) => {
  if (v !== 2) issues.push({ path, message: 'Invalid input: expected 2', check: false })
  return v as 2
}

const indexSchema = object(
  {
    schemaVersion: schemaVersion2,
    mediaType: optional(str()),
    manifests: array(descriptorSchema),
    annotations: optional(record(str(), str())),
  },
  'strip',
)
export interface ImageIndex {
  schemaVersion: 2
  mediaType?: string | undefined
  manifests: Descriptor[]
  annotations?: Record<string, string> | undefined
}

const manifestSchema = object(
  {
    schemaVersion: schemaVersion2,
    mediaType: optional(str()),
    config: descriptorSchema,
    layers: array(descriptorSchema),
    annotations: optional(record(str(), str())),
  },
  'strip',
)
export interface ImageManifest {
  schemaVersion: 2
  mediaType?: string | undefined
  config: Descriptor
  layers: Descriptor[]
  annotations?: Record<string, string> | undefined
}

const literal =
  <T extends string>(want: T): Check<T> =>
  (v, path, issues) => {
    if (v !== want) issues.push({ path, message: `Invalid input: expected "${want}"`, check: false })
    return v as T
  }

/** The image config (OCI image-spec `config.json`; Docker's is the same shape). */
const imageConfigSchema = object(
  {
    created: optional(str()),
    author: optional(str()),
    architecture: str(minLength(1)),
    os: str(minLength(1)),
    variant: optional(str()),
    'os.version': optional(str()),
    config: nullish(
      object(
        {
          User: optional(str()),
          ExposedPorts: nullish(record(str(), anyObject)),
          Env: nullish(strings),
          Entrypoint: nullish(strings),
          Cmd: nullish(strings),
          Volumes: nullish(record(str(), anyObject)),
          WorkingDir: optional(str()),
          Labels: nullish(record(str(), str())),
          StopSignal: optional(str()),
        },
        'loose',
      ),
    ),
    rootfs: object({ type: literal('layers'), diff_ids: array(digestField) }, 'strip'),
    history: optional(array(anyObject)),
  },
  'loose',
)
/** What a container takes from an image (the config's `config`). */
export interface ContainerConfig {
  User?: string | undefined
  ExposedPorts?: Record<string, Record<string, unknown>> | null | undefined
  Env?: string[] | null | undefined
  Entrypoint?: string[] | null | undefined
  Cmd?: string[] | null | undefined
  Volumes?: Record<string, Record<string, unknown>> | null | undefined
  WorkingDir?: string | undefined
  Labels?: Record<string, string> | null | undefined
  StopSignal?: string | undefined
  [key: string]: unknown
}
export interface ImageConfig {
  created?: string | undefined
  author?: string | undefined
  architecture: string
  os: string
  variant?: string | undefined
  'os.version'?: string | undefined
  config?: ContainerConfig | null | undefined
  rootfs: { type: 'layers'; diff_ids: string[] }
  history?: Record<string, unknown>[] | undefined
  [key: string]: unknown
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch (e) {
    throw imageError('INVALID_MANIFEST', `${what}: not valid JSON (${(e as Error).message})`)
  }
}

function check<T>(schema: Check<unknown>, value: unknown, what: string): T {
  const { value: out, issue } = firstIssue(schema, value)
  if (!issue) return out as T
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
    return { kind: 'index', mediaType, index: check<ImageIndex>(indexSchema, json, what) }
  }
  if (manifestMediaTypes.includes(mediaType)) {
    const manifest = check<ImageManifest>(manifestSchema, json, what)
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
  const config = check<ImageConfig>(imageConfigSchema, parseJson(bytes, what), what)
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
