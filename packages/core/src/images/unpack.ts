// Unpacking an image's layers into directories an overlay mount can stack. The unpacking of
// one layer is native work (crates/ns-image, through the addon's `unpackLayer`): the blob is
// streamed, its digest and diff id verified, its entries made beneath the layer directory,
// OCI whiteouts turned into overlayfs ones, and the directory renamed into place only when
// all of it is there.
import { statSync } from 'node:fs'
import { join } from 'node:path'

import native from '@ns/native'

import { defaultIdMappings } from '../host.js'
import type { IdMapping } from '../spec.js'
import { hexOf } from './digest.js'
import { imageError, storeWriteError } from './errors.js'
import { acquireLock, type LockOptions } from './lock.js'
import type { ImageRecord, ImageStore } from './store.js'

export interface UnpackLayerRequest {
  /** The layer blob in the store. */
  blob: string
  /** Its media type, which names the compression (gzip, zstd or none). */
  mediaType: string
  /** The layer directory to make (its parent exists); the files go to `<dest>/diff`. */
  dest: string
  /** The blob's digest (verified again while it streams). */
  digest: string
  /** The digest of the uncompressed tar, from the image config: the unpacker checks it. */
  diffId: string
  /** A rootless store: owners mapped through the caller's subordinate ids, `user.overlay.*` whiteouts. */
  rootless: boolean
  /** For a rootless store: the maps its containers run with (the owners are written as they map them). */
  uidMappings?: IdMapping[] | undefined
  gidMappings?: IdMapping[] | undefined
}

export interface UnpackLayerResult {
  diffId: string
  size: number
}

/** The native unpacker's rejection as an image error with a code to act on. */
function unpackError(e: unknown, req: UnpackLayerRequest, store: string): unknown {
  const err = e as { code?: string; message?: string; hint?: string; path?: string; step?: string }
  if (err?.code === 'EDIGEST') {
    return imageError('DIGEST_MISMATCH', `layer ${req.digest}: ${err.message}`, {
      hint: 'the image is damaged; remove it and pull it again',
      step: err.step,
    })
  }
  if (err?.code === 'ENOSPC' || err?.code === 'EDQUOT')
    return storeWriteError(err, `cannot unpack layer ${req.digest}`, store)
  if (err?.code === 'EUNSAFE' || err?.code === 'EFORMAT') {
    return imageError('INVALID_ARCHIVE', `layer ${req.digest}: ${err.message}`, {
      hint: err.hint ?? 'the layer is refused: nothing of it was kept',
      step: err.step,
      path: err.path,
    })
  }
  return e
}

/** Unpacks one layer (the native unpacker, off the event loop). */
export async function unpackLayer(req: UnpackLayerRequest, store = ''): Promise<UnpackLayerResult> {
  try {
    const r = await native.unpackLayer({
      blob: req.blob,
      mediaType: req.mediaType,
      dest: req.dest,
      digest: req.digest,
      diffId: req.diffId,
      rootless: req.rootless,
      ...(req.rootless && req.uidMappings ? { uidMappings: req.uidMappings, gidMappings: req.gidMappings } : {}),
    })
    return { diffId: r.diffId, size: r.size }
  } catch (e) {
    throw unpackError(e, req, store)
  }
}

export interface UnpackOptions extends LockOptions {
  rootless?: boolean | undefined
  /** The unpacker (default: `unpackLayer`). */
  unpacker?: ((req: UnpackLayerRequest) => Promise<UnpackLayerResult>) | undefined
}

/** Where a layer's directory is once unpacked: `<store>/layers/sha256/<diffId hex>`. */
export function layerDir(store: ImageStore, diffId: string): string {
  return join(store.root, 'layers', 'sha256', hexOf(diffId))
}

/** The overlay lower directory of an unpacked layer: its `diff`. */
export function layerRoot(store: ImageStore, diffId: string): string {
  return join(layerDir(store, diffId), 'diff')
}

/** A layer directory is complete once its marker is there (it is renamed into place whole). */
export function isUnpacked(dir: string): boolean {
  try {
    return statSync(join(dir, 'layer.json')).isFile()
  } catch {
    return false
  }
}

/** Is this store a rootless one (a normal user's)? */
export function storeIsRootless(): boolean {
  return (process.geteuid?.() ?? 0) !== 0
}

/**
 * Makes sure every layer of an image is unpacked (once, under a lock per layer, so that two
 * runs of a new image unpack it once), and returns the layers' overlay lower directories from
 * the bottom up (overlayfs wants them top first, which the runtime does).
 */
export async function unpackImage(store: ImageStore, image: ImageRecord, opts: UnpackOptions = {}): Promise<string[]> {
  const rootless = opts.rootless ?? storeIsRootless()
  const unpacker = opts.unpacker ?? ((r: UnpackLayerRequest) => unpackLayer(r, store.root))
  const maps = rootless ? defaultIdMappings() : undefined
  const roots: string[] = []
  for (const layer of image.layers) {
    const dest = layerDir(store, layer.diffId)
    roots.push(join(dest, 'diff'))
    if (isUnpacked(dest)) continue
    try {
      await store.ensureLayerDir()
    } catch (e) {
      throw storeWriteError(e, `cannot unpack layer ${layer.digest}`, store.root)
    }
    const lock = await acquireLock(join(store.root, 'locks', `layer-${hexOf(layer.diffId)}.lock`), opts)
    try {
      if (isUnpacked(dest)) continue
      const r = await unpacker({
        blob: store.blobPath(layer.digest),
        mediaType: layer.mediaType,
        dest,
        digest: layer.digest,
        diffId: layer.diffId,
        rootless,
        uidMappings: maps?.uid,
        gidMappings: maps?.gid,
      })
      if (r.diffId !== layer.diffId) {
        throw imageError(
          'DIGEST_MISMATCH',
          `layer ${layer.digest} unpacks to ${r.diffId}, the image config says ${layer.diffId}`,
          {
            hint: 'the image is damaged; remove it and pull it again',
          },
        )
      }
    } finally {
      await lock.release()
    }
  }
  return roots
}
