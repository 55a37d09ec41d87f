// Images of the store written to files: an OCI image layout directory (added to one that is
// there), an `oci-archive` (a tar of a layout) or a `docker-archive` (docker's `manifest.json`
// beside the layout). Nothing half-written is left: files are renamed into place at the end.
import { randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { copyFile, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'

import * as tar from 'tar-stream'

import { NsError } from '../errors.js'
import { hexOf } from './digest.js'
import { storeWriteError } from './errors.js'
import { mediaTypes, parseManifest, type Descriptor, type ImageIndex } from './media.js'
import type { ImageInfo, ImageStore } from './store.js'

export type SaveFormat = 'oci-archive' | 'docker-archive' | 'oci-dir'

/** The annotations that name an image in a layout's index (OCI's, and containerd's). */
export const refNameKey = 'org.opencontainers.image.ref.name'
export const containerdNameKey = 'io.containerd.image.name'

/** The blobs of images in a layout: files to write, each from the store. */
interface SaveEntry {
  image: ImageInfo
  /** The name written into the layout (ref.name) or the archive (RepoTags). */
  names: string[]
}

function layoutIndex(entries: SaveEntry[], existing: ImageIndex | undefined, tag: string | undefined): ImageIndex {
  const manifests: Descriptor[] = []
  const fresh: Descriptor[] = []
  for (const e of entries) {
    const names = tag ? [tag] : e.names.length ? e.names : [undefined]
    for (const n of names) {
      fresh.push({
        mediaType: e.image.manifestMediaType,
        digest: e.image.digest,
        size: e.image.manifestSize,
        annotations: n ? { [refNameKey]: n, ...(tag ? {} : { [containerdNameKey]: n }) } : {},
        platform: {
          os: e.image.platform.os,
          architecture: e.image.platform.architecture,
          ...(e.image.platform.variant ? { variant: e.image.platform.variant } : {}),
        },
      })
    }
  }
  const freshNames = new Set(fresh.map((d) => d.annotations?.[refNameKey]).filter(Boolean))
  for (const d of existing?.manifests ?? []) {
    const n = d.annotations?.[refNameKey]
    if (n && freshNames.has(n)) continue
    manifests.push(d)
  }
  manifests.push(...fresh)
  for (const d of manifests) if (d.annotations && Object.keys(d.annotations).length === 0) delete d.annotations
  return { schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests }
}

function blobList(entries: SaveEntry[]): { digest: string; size: number }[] {
  const m = new Map<string, number>()
  for (const { image } of entries) {
    m.set(image.digest, image.manifestSize)
    m.set(image.config.digest, image.config.size)
    for (const l of image.layers) m.set(l.digest, l.size)
  }
  return [...m].map(([digest, size]) => ({ digest, size }))
}

/** Writes images as an OCI layout directory, adding to one that is there. */
export async function writeLayout(
  store: ImageStore,
  entries: SaveEntry[],
  dir: string,
  tag: string | undefined,
): Promise<void> {
  try {
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true })
    let existing: ImageIndex | undefined
    try {
      const b = await readFile(join(dir, 'index.json'))
      const p = parseManifest(b, mediaTypes.ociIndex, `oci:${dir}: index.json`)
      if (p.kind === 'index') existing = p.index
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
    }
    for (const b of blobList(entries)) {
      const dst = join(dir, 'blobs', 'sha256', hexOf(b.digest))
      const s = await stat(dst).catch(() => undefined)
      if (s?.size === b.size) continue
      const tmp = `${dst}.${randomBytes(4).toString('hex')}.tmp`
      await copyFile(store.blobPath(b.digest), tmp)
      await rename(tmp, dst)
    }
    await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
    const tmp = join(dir, `index.json.${randomBytes(4).toString('hex')}.tmp`)
    await writeFile(tmp, JSON.stringify(layoutIndex(entries, existing, tag)))
    await rename(tmp, join(dir, 'index.json'))
  } catch (e) {
    if (e instanceof NsError) throw e
    throw storeWriteError(e, `cannot write the layout ${dir}`, dir)
  }
}

/**
 * Writes images as an `oci-archive` (a tar of an OCI layout) or a `docker-archive`
 * (`manifest.json` with the layers as they are stored, and the OCI layout beside it, as docker
 * 25 writes). Written to a temp file renamed at the end: no half-written archive is left.
 */
export async function writeArchive(
  store: ImageStore,
  entries: SaveEntry[],
  path: string,
  format: 'oci-archive' | 'docker-archive',
  tag: string | undefined,
): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`)
  const pack = tar.pack()
  // Owned by the writer, as the tools that make archives from files do: a normal user's
  // skopeo cannot extract entries owned by root.
  const owner = { mtime: new Date(0), uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
  const add = (name: string, body: Buffer) =>
    new Promise<void>((resolve, reject) =>
      pack.entry({ name, size: body.length, mode: 0o644, ...owner }, body, (e) => (e ? reject(e) : resolve())),
    )
  const addFile = (name: string, file: string, size: number) =>
    new Promise<void>((resolve, reject) => {
      const e = pack.entry({ name, size, mode: 0o644, ...owner }, (err) => (err ? reject(err) : resolve()))
      pipeline(createReadStream(file), e).catch(reject)
    })
  const out = createWriteStream(tmp, { flags: 'wx' })
  const writing = pipeline(pack, out)
  try {
    for (const name of ['blobs/', 'blobs/sha256/']) {
      await new Promise<void>((resolve, reject) =>
        pack.entry({ name, type: 'directory', mode: 0o755, ...owner }, (e) => (e ? reject(e) : resolve())),
      )
    }
    for (const b of blobList(entries))
      await addFile(`blobs/sha256/${hexOf(b.digest)}`, store.blobPath(b.digest), b.size)
    await add('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })))
    await add(
      'index.json',
      Buffer.from(JSON.stringify(layoutIndex(entries, undefined, format === 'oci-archive' ? tag : undefined))),
    )
    if (format === 'docker-archive') {
      const manifest = entries.map(({ image, names }) => ({
        Config: `blobs/sha256/${hexOf(image.config.digest)}`,
        RepoTags: names.map((n) => n),
        Layers: image.layers.map((l) => `blobs/sha256/${hexOf(l.digest)}`),
      }))
      await add('manifest.json', Buffer.from(JSON.stringify(manifest)))
    }
    pack.finalize()
    await writing
    await rename(tmp, path)
  } catch (e) {
    pack.destroy()
    await writing.catch(() => {})
    await unlink(tmp).catch(() => {})
    if (e instanceof NsError) throw e
    throw storeWriteError(e, `cannot write the archive ${path}`, dirname(path))
  }
}

export type { SaveEntry }
