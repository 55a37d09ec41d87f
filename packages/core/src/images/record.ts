// An image record built from its manifest and config, whatever the source (a registry, an
// OCI layout, an archive).
import { imageError } from './errors.js'
import { compressionOf, parseConfig, type ImageConfig, type ImageManifest } from './media.js'
import { normalizePlatform, type PlatformSpec } from './platform.js'
import type { ImageRecord } from './store.js'

export interface RecordInput {
  manifestDigest: string
  manifestMediaType: string
  manifestSize: number
  manifest: ImageManifest
  configBytes: Uint8Array
  index?: { digest: string; mediaType: string; size: number } | undefined
  repoDigests: string[]
  source: string
  what: string
}

export function buildRecord(i: RecordInput): { record: ImageRecord; config: ImageConfig } {
  const config = parseConfig(i.configBytes, i.manifest.layers.length, `${i.what}: config ${i.manifest.config.digest}`)
  const platform: PlatformSpec = normalizePlatform({
    os: config.os,
    architecture: config.architecture,
    variant: config.variant,
  })
  const layers = i.manifest.layers.map((l, n) => {
    const compression = compressionOf(l.mediaType)
    if (compression === undefined) {
      throw imageError('UNSUPPORTED_MEDIA_TYPE', `${i.what}: layer ${l.digest} has media type ${l.mediaType}`)
    }
    return {
      digest: l.digest,
      mediaType: l.mediaType,
      size: l.size,
      diffId: config.rootfs.diff_ids[n]!,
      compression,
      ...(l.urls ? { urls: l.urls } : {}),
    }
  })
  const unique = new Map<string, number>()
  unique.set(i.manifestDigest, i.manifestSize)
  unique.set(i.manifest.config.digest, i.manifest.config.size)
  for (const l of layers) unique.set(l.digest, l.size)
  const record: ImageRecord = {
    id: i.manifest.config.digest,
    digest: i.manifestDigest,
    manifestMediaType: i.manifestMediaType,
    manifestSize: i.manifestSize,
    ...(i.index ? { indexDigest: i.index.digest, indexMediaType: i.index.mediaType, indexSize: i.index.size } : {}),
    config: { digest: i.manifest.config.digest, mediaType: i.manifest.config.mediaType, size: i.manifest.config.size },
    layers,
    platform,
    created: config.created,
    size: [...unique.values()].reduce((a, b) => a + b, 0),
    repoDigests: i.repoDigests,
    added: new Date().toISOString(),
    source: i.source,
  }
  return { record, config }
}
