// Unpacking an image's layers into directories an overlay mount can stack. The unpacking of
// one layer is native work (crates/ns-image, through the addon); `unpackLayer` below is the
// one place where it is called. Until the addon has it, it fails saying so.
import { randomBytes } from 'node:crypto'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'

import { hexOf } from './digest.js'
import { imageError, storeWriteError } from './errors.js'
import { acquireLock, self, type LockOptions } from './lock.js'
import type { ImageRecord, ImageStore } from './store.js'

export interface UnpackLayerRequest {
  /** The layer blob in the store. */
  blob: string
  /** Its media type, which names the compression (gzip, zstd or none). */
  mediaType: string
  /** An empty directory to unpack into (whiteouts as overlayfs wants them). */
  dest: string
  /** The blob's digest (already verified by the store). */
  digest: string
  /** The digest of the uncompressed tar, from the image config: the unpacker checks it. */
  diffId: string
  /** Unpacking as a normal user: owners kept in xattrs / whiteouts as `user.overlay.*`. */
  rootless: boolean
}

export interface UnpackLayerResult {
  diffId: string
  size: number
}

/**
 * Unpacks one layer. THE PLACE TO WIRE the native unpacker: replace this body with
 * `return native.unpackLayer(req)` once `@ns/native` exports it.
 */
export async function unpackLayer(req: UnpackLayerRequest): Promise<UnpackLayerResult> {
  throw imageError(
    'NOT_IMPLEMENTED',
    `cannot unpack layer ${req.digest}: the native layer unpacker is not built into this version of ns`,
    {
      hint: 'pulling, listing, saving and loading images work; running them needs the unpacker',
    },
  )
}

export interface UnpackOptions extends LockOptions {
  rootless?: boolean | undefined
  /** The unpacker (default: `unpackLayer`). */
  unpacker?: ((req: UnpackLayerRequest) => Promise<UnpackLayerResult>) | undefined
}

/** Where a layer's files live once unpacked: `<store>/layers/sha256/<diffId hex>`. */
export function layerDir(store: ImageStore, diffId: string): string {
  return join(store.root, 'layers', 'sha256', hexOf(diffId))
}

/**
 * Makes sure every layer of an image is unpacked (once, under a lock per layer; into a temp
 * directory renamed into place when its diff id checks out), and returns the layer
 * directories from the bottom up (overlayfs wants them top first in `lowerdir`).
 */
export async function unpackImage(store: ImageStore, image: ImageRecord, opts: UnpackOptions = {}): Promise<string[]> {
  const unpacker = opts.unpacker ?? unpackLayer
  const rootless = opts.rootless ?? (process.geteuid?.() ?? 0) !== 0
  const dirs: string[] = []
  for (const layer of image.layers) {
    const dest = layerDir(store, layer.diffId)
    dirs.push(dest)
    if (
      await stat(dest)
        .then((s) => s.isDirectory())
        .catch(() => false)
    )
      continue
    const lock = await acquireLock(join(store.root, 'locks', `layer-${hexOf(layer.diffId)}.lock`), opts)
    try {
      if (
        await stat(dest)
          .then((s) => s.isDirectory())
          .catch(() => false)
      )
        continue
      const o = self()
      const tmp = `${dest}.${o.pid}.${o.start}.${randomBytes(4).toString('hex')}.tmp`
      try {
        await mkdir(tmp, { recursive: true, mode: 0o755 })
      } catch (e) {
        throw storeWriteError(e, `cannot unpack layer ${layer.digest}`, store.root)
      }
      try {
        const r = await unpacker({
          blob: store.blobPath(layer.digest),
          mediaType: layer.mediaType,
          dest: tmp,
          digest: layer.digest,
          diffId: layer.diffId,
          rootless,
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
        await rename(tmp, dest)
      } catch (e) {
        await rm(tmp, { recursive: true, force: true }).catch(() => {})
        throw e
      }
    } finally {
      await lock.release()
    }
  }
  return dirs
}
