// Pulling an image from a registry into the store: resolve the reference (choosing the
// platform's manifest from an index), lease its blobs, fetch the config and the layers a few
// at a time (each verified while it streams), then record the image under its name.
import { performance } from 'node:perf_hooks'

import { NsError } from '../errors.js'
import { abortError, imageError } from './errors.js'
import { parseManifest, type Descriptor, type ImageManifest } from './media.js'
import {
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  platformScore,
  selectManifest,
  type PlatformSpec,
} from './platform.js'
import { buildRecord } from './record.js'
import { withTarget, type ImageReference } from './reference.js'
import type { RegistryClient } from './registry.js'
import type { ImageInfo, ImageStore } from './store.js'

/** What a pull reports as it goes; `elapsedMs` and `bytes` give a layer's speed. */
export type PullEvent =
  | { type: 'resolving'; reference: string }
  | {
      type: 'resolved'
      reference: string
      digest: string
      mediaType: string
      platform: string
      indexDigest?: string | undefined
      layers: { digest: string; mediaType: string; size: number }[]
    }
  | {
      type: 'layer'
      status: 'resolved' | 'exists' | 'downloading' | 'retrying' | 'verified' | 'complete'
      reference: string
      digest: string
      mediaType: string
      /** Bytes of the layer so far, and its size. */
      bytes: number
      total: number
      /** Since this layer's download began. */
      elapsedMs: number
      /** With `retrying`: the attempt about to be made and why the last one failed. */
      attempt?: number
      error?: string
    }
  | { type: 'complete'; reference: string; image: ImageInfo }

export interface PullOptions {
  onProgress?: ((event: PullEvent) => void) | undefined
  /** `os/arch[/variant]` (or an object); default: this host's. */
  platform?: string | PlatformSpec | undefined
  signal?: AbortSignal | undefined
  /** Layers fetched at once (default 3). */
  concurrency?: number | undefined
}

export function wantedPlatform(p: PullOptions['platform']): { want: PlatformSpec; explicit: boolean } {
  if (p === undefined) return { want: hostPlatform(), explicit: false }
  if (typeof p === 'string') return { want: parsePlatform(p), explicit: true }
  if (!p || typeof p.os !== 'string' || typeof p.architecture !== 'string') {
    throw imageError('EINVAL', 'platform: must be "os/arch[/variant]" or { os, architecture, variant }', {
      field: 'platform',
    })
  }
  return { want: normalizePlatform(p), explicit: true }
}

/** Runs `jobs` at most `limit` at a time; on the first failure the rest are aborted and it is thrown. */
export async function bounded(
  limit: number,
  items: readonly Descriptor[],
  job: (d: Descriptor, signal: AbortSignal) => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const stop = new AbortController()
  const linked = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal
  let next = 0
  let first: unknown
  const worker = async () => {
    while (next < items.length && first === undefined) {
      const d = items[next++]!
      try {
        await job(d, linked)
      } catch (e) {
        if (first === undefined) {
          first = e
          stop.abort(e)
        }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  if (first !== undefined) throw first
}

/** The error with the reference in its message (every failure of a pull names what was pulled). */
export function namedError(e: unknown, reference: string): unknown {
  if (!(e instanceof NsError) || e.message.includes(reference)) return e
  return new NsError({
    code: e.code,
    message: `${reference}: ${e.message}`,
    step: e.step,
    path: e.path,
    field: e.field,
    errno: e.errno,
    hint: e.hint,
    exitCode: e.exitCode,
  })
}

export async function pullFromRegistry(
  store: ImageStore,
  client: RegistryClient,
  ref: ImageReference,
  opts: PullOptions = {},
): Promise<ImageInfo> {
  try {
    return await pullOnce(store, client, ref, opts)
  } catch (e) {
    if (opts.signal?.aborted && !(e instanceof NsError && e.code === 'ABORTED')) throw abortError(ref.full, opts.signal)
    throw namedError(e, ref.full)
  }
}

async function pullOnce(
  store: ImageStore,
  client: RegistryClient,
  ref: ImageReference,
  opts: PullOptions,
): Promise<ImageInfo> {
  const emit = opts.onProgress ?? (() => {})
  const { want, explicit } = wantedPlatform(opts.platform)
  const signal = opts.signal
  const reference = ref.full
  emit({ type: 'resolving', reference })
  const top = await client.getManifest(ref, ref.digest ?? ref.tag!, signal)
  let parsed = parseManifest(top.bytes, top.mediaType, `${reference}: manifest ${top.digest}`)
  let index: { digest: string; mediaType: string; size: number; bytes: Buffer } | undefined
  let m = top
  if (parsed.kind === 'index') {
    index = { digest: top.digest, mediaType: parsed.mediaType, size: top.bytes.length, bytes: top.bytes }
    const chosen = selectManifest(parsed.index.manifests, want, reference)
    m = await client.getManifest(ref, chosen.digest, signal)
    parsed = parseManifest(m.bytes, m.mediaType ?? chosen.mediaType, `${reference}: manifest ${m.digest}`)
    if (parsed.kind === 'index') {
      throw imageError(
        'UNSUPPORTED_MEDIA_TYPE',
        `${reference}: the index for ${formatPlatform(want)} points at another index`,
      )
    }
  }
  const manifest: ImageManifest = parsed.manifest
  const mediaType = parsed.mediaType
  const digests = [m.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]
  if (index) digests.push(index.digest)
  const lease = await store.lease(digests)
  try {
    if (index) await store.putBytes(index.bytes, `${reference}: index`)
    await store.putBytes(m.bytes, `${reference}: manifest`)
    await store.ingest(manifest.config, (sink) => client.downloadBlob(ref, manifest.config, sink, {}, signal), {
      what: `${reference}: config`,
      signal,
    })
    const configBytes = await store.readBlob(manifest.config.digest)
    const { record } = buildRecord({
      manifestDigest: m.digest,
      manifestMediaType: mediaType,
      manifestSize: m.bytes.length,
      manifest,
      configBytes,
      index,
      repoDigests: [`${ref.name}@${m.digest}`, ...(index ? [`${ref.name}@${index.digest}`] : [])],
      source: reference,
      what: reference,
    })
    if (explicit && platformScore(want, record.platform) === 0) {
      throw imageError(
        'NO_MATCHING_PLATFORM',
        `${reference}: the image is for ${formatPlatform(record.platform)}, not ${formatPlatform(want)}`,
        { hint: 'it has no manifest list; pull it without a platform, or pull another tag', field: 'platform' },
      )
    }
    emit({
      type: 'resolved',
      reference,
      digest: m.digest,
      mediaType,
      platform: formatPlatform(record.platform),
      indexDigest: index?.digest,
      layers: manifest.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size })),
    })
    await bounded(
      opts.concurrency ?? 3,
      manifest.layers,
      async (layer, s) => {
        const t0 = performance.now()
        const ev = (status: Extract<PullEvent, { type: 'layer' }>['status'], bytes: number, extra = {}) =>
          emit({
            type: 'layer',
            status,
            reference,
            digest: layer.digest,
            mediaType: layer.mediaType,
            bytes,
            total: layer.size,
            elapsedMs: performance.now() - t0,
            ...extra,
          })
        ev('resolved', 0)
        let last = 0
        const r = await store.ingest(
          layer,
          (sink) =>
            client.downloadBlob(
              ref,
              layer,
              sink,
              {
                onBytes: (n) => {
                  const now = performance.now()
                  if (now - last >= 100 || n === layer.size) {
                    last = now
                    ev('downloading', n)
                  }
                },
                onRetry: (attempt, offset, error) => ev('retrying', offset, { attempt, error: error.message }),
              },
              s,
            ),
          { what: `${reference}: layer`, signal: s },
        )
        ev(r.existed ? 'exists' : 'verified', layer.size)
        ev('complete', layer.size)
      },
      signal,
    )
    if (signal?.aborted) throw abortError(reference, signal)
    const names = ref.digest ? [] : [withTarget(ref, { tag: ref.tag! }).full]
    const image = await store.commit(record, names)
    emit({ type: 'complete', reference, image })
    return image
  } finally {
    await lease.release()
  }
}
