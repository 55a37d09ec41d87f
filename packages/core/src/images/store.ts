// The image store on disk: content-addressed blobs (one copy each, whatever number of images
// use it), image records, the names that point at them, and the leases of pulls in progress.
//
//   <store>/blobs/sha256/<hex>        every manifest, index, config and layer, verified
//   <store>/images/<hex>.json         one record per image, named by its manifest's digest
//   <store>/refs.json                 { "names": { "docker.io/library/alpine:3.20": "sha256:…" } }
//   <store>/tmp/                      downloads in progress (renamed into blobs/ once verified)
//   <store>/leases/                   the blobs a pull or load in progress holds (kept by prune)
//   <store>/locks/                    store.lock (records, names, collection), blob-<hex>.lock
//   <store>/layers/sha256/<diffid>/   unpacked layers (see unpack.ts), shared by the containers
//   <store>/containers/<id>/          a container's writable layer and record (see containers.ts)
//
// A blob is written to tmp/ while its sha256 is computed, then renamed into place only when the
// digest and size are right, so a blob file is never half-written nor wrong. Records and
// refs.json are whole-file writes renamed over the old ones, taken under store.lock; readers
// need no lock.
import { randomBytes } from 'node:crypto'
import { createReadStream, existsSync, readFileSync } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'

import native from '@ns/native'

import { NsError } from '../errors.js'
import { reconcileContainers, type ContainerRecord } from './containers.js'
import { hexOf, isDigest, newHash, sha256 } from './digest.js'
import { imageError, storeWriteError } from './errors.js'
import { acquireLock, clearStaleLocks, ownerAlive, parseOwner, self, type LockOptions } from './lock.js'
import type { Compression } from './media.js'
import type { PlatformSpec } from './platform.js'
import { parseReference, type ImageReference } from './reference.js'
import type { BlobSink } from './registry.js'

/** The store of root (`/var/lib/ns`), or of a normal user (`$XDG_DATA_HOME/ns`, `~/.local/share/ns`). */
export function defaultStore(): string {
  if ((process.geteuid?.() ?? 0) === 0) return '/var/lib/ns'
  const data = process.env.XDG_DATA_HOME || join(process.env.HOME || homedir(), '.local', 'share')
  return join(data, 'ns')
}

export interface BlobRef {
  digest: string
  mediaType: string
  size: number
}

export interface LayerRecord extends BlobRef {
  /** The digest of the uncompressed tar (the config's `rootfs.diff_ids`). */
  diffId: string
  compression: Compression
  urls?: string[] | undefined
}

/** What the store keeps of an image. */
export interface ImageRecord {
  /** The image id docker and podman show: the config's digest. */
  id: string
  /** The manifest's digest (the record's key). */
  digest: string
  manifestMediaType: string
  manifestSize: number
  /** The index (manifest list) it was chosen from, when it came from one. */
  indexDigest?: string | undefined
  indexMediaType?: string | undefined
  indexSize?: number | undefined
  config: BlobRef
  layers: LayerRecord[]
  platform: PlatformSpec
  /** From the config. */
  created?: string | undefined
  /** Bytes of its blobs (compressed layers, config, manifest). */
  size: number
  /** `name@digest` by which it was pulled. */
  repoDigests: string[]
  /** When it was stored. */
  added: string
  /** Where it came from (a reference, or a transport and path). */
  source: string
}

/** A record with the names (tags) that point at it. */
export interface ImageInfo extends ImageRecord {
  names: string[]
}

export interface RemoveResult {
  untagged: string[]
  /** Manifest digests of the images deleted. */
  deleted: string[]
  blobsRemoved: number
  bytesRemoved: number
}

export interface PruneResult extends RemoveResult {
  tempFilesRemoved: number
  /** Images without a name that were kept: containers use them (their manifest digests). */
  inUse: string[]
  /** Directories of containers that were gone (a crash, a kill), removed. */
  containersRemoved: number
}

interface Refs {
  names: Record<string, string>
}

/** The blob digests a record uses. */
export function blobsOf(r: ImageRecord): string[] {
  return [r.digest, r.config.digest, ...r.layers.map((l) => l.digest), ...(r.indexDigest ? [r.indexDigest] : [])]
}

class FileSink implements BlobSink {
  written = 0
  #hash = newHash()
  constructor(
    readonly fh: FileHandle,
    readonly onError: (e: unknown) => NsError,
  ) {}
  async write(chunk: Uint8Array): Promise<void> {
    let off = 0
    try {
      while (off < chunk.length) {
        const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off, this.written + off)
        off += bytesWritten
      }
    } catch (e) {
      throw this.onError(e)
    }
    this.#hash.update(chunk)
    this.written += chunk.length
  }
  async reset(): Promise<void> {
    await this.fh.truncate(0).catch((e: unknown) => {
      throw this.onError(e)
    })
    this.#hash = newHash()
    this.written = 0
  }
  digest(): string {
    return `sha256:${this.#hash.digest('hex')}`
  }
}

/** Blobs held by a job in progress (see `ImageStore.lease`). */
export interface Lease {
  add(digests: readonly string[]): Promise<void>
  release(): Promise<void>
}

export interface IngestResult {
  digest: string
  size: number
  /** The blob was there already (nothing was fetched). */
  existed: boolean
}

export class ImageStore {
  readonly root: string

  constructor(root: string = defaultStore()) {
    this.root = root
  }

  get blobDir(): string {
    return join(this.root, 'blobs', 'sha256')
  }
  blobPath(digest: string): string {
    return join(this.blobDir, hexOf(digest))
  }
  #recordPath(digest: string): string {
    return join(this.root, 'images', `${hexOf(digest)}.json`)
  }
  get #refsPath(): string {
    return join(this.root, 'refs.json')
  }
  get #lockPath(): string {
    return join(this.root, 'locks', 'store.lock')
  }

  /** Is the record of this image (by manifest digest) in the store? */
  hasRecord(digest: string): boolean {
    return existsSync(this.#recordPath(digest))
  }

  /**
   * The image a name points at, read without listing the store (the quick way of `ns run
   * NAME`): undefined when the name is not there (then `resolve` looks further).
   */
  findByName(name: string): ImageInfo | undefined {
    try {
      const refs = JSON.parse(readFileSync(this.#refsPath, 'utf8')) as Refs
      const digest = refs.names?.[name]
      if (!digest) return undefined
      const r = JSON.parse(readFileSync(this.#recordPath(digest), 'utf8')) as ImageRecord
      const names = Object.keys(refs.names)
        .filter((n) => refs.names[n] === digest)
        .sort()
      return { ...r, names }
    } catch {
      return undefined
    }
  }

  /** Makes `layers/sha256/` (where unpacked layers go). */
  async ensureLayerDir(): Promise<void> {
    await this.#ensureDirs()
    await mkdir(join(this.root, 'layers', 'sha256'), { recursive: true })
  }

  async #ensureDirs(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true, mode: 0o700 })
      for (const d of [
        this.blobDir,
        join(this.root, 'images'),
        join(this.root, 'tmp'),
        join(this.root, 'leases'),
        join(this.root, 'locks'),
      ]) {
        await mkdir(d, { recursive: true })
      }
    } catch (e) {
      throw storeWriteError(e, 'cannot create the image store', this.root)
    }
  }

  /** Is the blob in the store, of this size when one is given? */
  async hasBlob(digest: string, size?: number): Promise<boolean> {
    try {
      const s = await stat(this.blobPath(digest))
      return s.isFile() && (size === undefined || s.size === size)
    } catch {
      return false
    }
  }

  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest))
    } catch (e) {
      throw imageError(
        'IMAGE_NOT_FOUND',
        `blob ${digest} is missing from the store ${this.root}: ${(e as Error).message}`,
        {
          path: this.blobPath(digest),
        },
      )
    }
  }

  blobStream(digest: string): Readable {
    return createReadStream(this.blobPath(digest))
  }

  /** The store-wide lock: record, name and collection changes. */
  withStoreLock<T>(fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
    return this.#ensureDirs().then(async () => {
      const lock = await acquireLock(this.#lockPath, { what: 'the image store lock', ...opts }).catch((e: unknown) => {
        throw storeWriteError(e, 'cannot take the image store lock', this.root)
      })
      try {
        return await fn()
      } finally {
        await lock.release()
      }
    })
  }

  /**
   * Brings a blob into the store: under the blob's own lock (so two pulls of one image fetch it
   * once), skips it if present, else lets `fill` write it to a temp file while it is hashed,
   * then checks digest and size and renames it into place. On any failure the temp file goes.
   * With `expected` undefined the digest is whatever the content hashes to.
   */
  async ingest(
    expected: { digest: string; size: number } | undefined,
    fill: (sink: BlobSink) => Promise<void>,
    opts: LockOptions & { what: string; lease?: Lease | undefined },
  ): Promise<IngestResult> {
    await this.#ensureDirs()
    const lock = expected
      ? await acquireLock(join(this.root, 'locks', `blob-${hexOf(expected.digest)}.lock`), opts).catch((e: unknown) => {
          throw storeWriteError(e, opts.what, this.root)
        })
      : undefined
    try {
      if (expected && (await this.hasBlob(expected.digest, expected.size))) {
        return { digest: expected.digest, size: expected.size, existed: true }
      }
      const o = self()
      const tmp = join(
        this.root,
        'tmp',
        `${expected ? hexOf(expected.digest) : 'blob'}.${o.pid}.${o.start}.${randomBytes(6).toString('hex')}.partial`,
      )
      let fh: FileHandle
      try {
        fh = await open(tmp, 'wx+', 0o644)
      } catch (e) {
        throw storeWriteError(e, opts.what, this.root)
      }
      const sink = new FileSink(fh, (e) => storeWriteError(e, opts.what, this.root))
      let done = false
      try {
        await fill(sink)
        const digest = sink.digest()
        if (expected && sink.written !== expected.size) {
          throw imageError(
            'DIGEST_MISMATCH',
            `${opts.what}: blob ${expected.digest} has ${sink.written} bytes, not ${expected.size}`,
            {
              hint: 'the source served other content; nothing was stored',
            },
          )
        }
        if (expected && digest !== expected.digest) {
          throw imageError(
            'DIGEST_MISMATCH',
            `${opts.what}: blob ${expected.digest} failed verification: its content hashes to ${digest}`,
            {
              hint: 'the source (or something between) altered it; nothing was stored',
            },
          )
        }
        // A blob of unknown digest is leased before it lands, so a prune meanwhile keeps it.
        if (!expected) await opts.lease?.add([digest])
        try {
          await fh.sync()
          await fh.close()
          done = true
          if (!expected && (await this.hasBlob(digest, sink.written))) {
            await unlink(tmp)
            return { digest, size: sink.written, existed: true }
          }
          await rename(tmp, this.blobPath(digest))
        } catch (e) {
          throw storeWriteError(e, opts.what, this.root)
        }
        return { digest, size: sink.written, existed: false }
      } catch (e) {
        if (!done) await fh.close().catch(() => {})
        await unlink(tmp).catch(() => {})
        throw e
      }
    } finally {
      await lock?.release()
    }
  }

  /** Writes a small blob held in memory (a manifest, an index, a config). */
  async putBytes(bytes: Uint8Array, what: string): Promise<string> {
    const digest = sha256(bytes)
    await this.ingest({ digest, size: bytes.length }, (sink) => sink.write(bytes), { what })
    return digest
  }

  /**
   * Records that a job in progress uses these blobs, so that a prune meanwhile keeps them. Taken
   * under the store lock, before the job looks whether a blob is present.
   */
  async lease(digests: readonly string[]): Promise<Lease> {
    const file = join(this.root, 'leases', `${process.pid}.${randomBytes(6).toString('hex')}.json`)
    const held = new Set(digests)
    const write = () =>
      this.withStoreLock(async () => {
        try {
          await writeFile(file, JSON.stringify({ ...self(), digests: [...held] }))
        } catch (e) {
          throw storeWriteError(e, 'cannot write a lease', this.root)
        }
      })
    await write()
    return {
      async add(more: readonly string[]) {
        if (more.every((d) => held.has(d))) return
        for (const d of more) held.add(d)
        await write()
      },
      release: () => unlink(file).catch(() => {}),
    }
  }

  async #readRefs(): Promise<Refs> {
    try {
      const j = JSON.parse(await readFile(this.#refsPath, 'utf8')) as Refs
      return { names: j.names ?? {} }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { names: {} }
      throw imageError('EINVAL', `the store's ${this.#refsPath} is unreadable: ${(e as Error).message}`, {
        path: this.#refsPath,
      })
    }
  }

  async #writeJson(path: string, value: unknown): Promise<void> {
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
    try {
      await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`)
      await rename(tmp, path)
    } catch (e) {
      await unlink(tmp).catch(() => {})
      throw storeWriteError(e, `cannot write ${path}`, this.root)
    }
  }

  async #readRecord(digest: string): Promise<ImageRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.#recordPath(digest), 'utf8')) as ImageRecord
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw imageError('EINVAL', `the image record ${this.#recordPath(digest)} is unreadable: ${(e as Error).message}`)
    }
  }

  async #records(): Promise<ImageRecord[]> {
    let files: string[]
    try {
      files = await readdir(join(this.root, 'images'))
    } catch {
      return []
    }
    const out: ImageRecord[] = []
    for (const f of files) {
      if (!/^[a-f0-9]{64}\.json$/.test(f)) continue
      const r = await this.#readRecord(`sha256:${f.slice(0, 64)}`)
      if (r) out.push(r)
    }
    return out
  }

  /**
   * Stores an image record (merging the repo digests of one already there) and points `names`
   * at it; a name that pointed at another image moves. Every blob must already be stored.
   */
  async commit(record: ImageRecord, names: readonly string[]): Promise<ImageInfo> {
    return this.withStoreLock(async () => {
      for (const d of blobsOf(record)) {
        if (!(await this.hasBlob(d)))
          throw imageError('IMAGE_NOT_FOUND', `cannot record ${record.source}: blob ${d} is missing`)
      }
      const old = await this.#readRecord(record.digest)
      const merged: ImageRecord = old
        ? { ...record, added: old.added, repoDigests: [...new Set([...old.repoDigests, ...record.repoDigests])] }
        : record
      await this.#writeJson(this.#recordPath(record.digest), merged)
      const refs = await this.#readRefs()
      for (const n of names) refs.names[n] = record.digest
      await this.#writeJson(this.#refsPath, refs)
      return {
        ...merged,
        names: Object.keys(refs.names)
          .filter((n) => refs.names[n] === record.digest)
          .sort(),
      }
    })
  }

  /** Every image with its names, newest first. */
  async list(): Promise<ImageInfo[]> {
    const [records, refs] = await Promise.all([this.#records(), this.#readRefs()])
    const names = new Map<string, string[]>()
    for (const [n, d] of Object.entries(refs.names)) names.set(d, [...(names.get(d) ?? []), n])
    return records
      .map((r) => ({ ...r, names: (names.get(r.digest) ?? []).sort() }))
      .sort((a, b) => (b.added ?? '').localeCompare(a.added ?? ''))
  }

  /**
   * Finds an image by name (`alpine`, `host/repo:tag`), by `name@digest`, by full id or
   * manifest digest, or by a unique prefix of either. `how` tells which matched.
   */
  async resolve(input: string): Promise<{ image: ImageInfo; by: 'name' | 'digest' | 'id'; name?: string }> {
    const images = await this.list()
    const notFound = () =>
      imageError('IMAGE_NOT_FOUND', `no such image: ${input}`, {
        hint: 'list the images with images.list() (ns images), or pull it first',
        field: 'reference',
      })
    const full = /^(?:sha256:)?([a-f0-9]{64})$/.exec(input)
    if (full) {
      const d = `sha256:${full[1]}`
      const hit =
        images.find((i) => i.digest === d) ?? images.find((i) => i.id === d) ?? images.find((i) => i.indexDigest === d)
      if (!hit) throw notFound()
      return { image: hit, by: hit.id === d ? 'id' : 'digest' }
    }
    let ref: ImageReference | undefined
    try {
      ref = parseReference(input)
    } catch {
      ref = undefined
    }
    if (ref?.digest) {
      const d = ref.digest
      const name = ref.name
      const hit = images.find(
        (i) =>
          (i.digest === d || i.indexDigest === d) &&
          (i.repoDigests.some((r) => r.startsWith(`${name}@`)) || i.names.some((n) => parseReference(n).name === name)),
      )
      if (hit) return { image: hit, by: 'digest' }
    } else if (ref) {
      const hit = images.find((i) => i.names.includes(ref.full))
      if (hit) return { image: hit, by: 'name', name: ref.full }
    }
    const prefix = /^(?:sha256:)?([a-f0-9]{3,63})$/.exec(input)
    if (prefix) {
      const p = `sha256:${prefix[1]}`
      const hits = images.filter((i) => i.id.startsWith(p) || i.digest.startsWith(p))
      const ids = new Set(hits.map((h) => h.digest))
      if (ids.size > 1) {
        throw imageError('AMBIGUOUS_REFERENCE', `${input} names ${ids.size} images`, {
          hint: 'give more digits of the id',
        })
      }
      if (hits[0]) return { image: hits[0], by: 'id' }
    }
    throw notFound()
  }

  async inspect(input: string): Promise<ImageInfo> {
    return (await this.resolve(input)).image
  }

  /** Points another name at an image. */
  async tag(source: string, target: string): Promise<ImageInfo> {
    const dst = parseReference(target, 'target')
    if (dst.digest)
      throw imageError('EINVAL', `target: ${target} has a digest; a tag names an image by tag`, { field: 'target' })
    return this.withStoreLock(async () => {
      const { image } = await this.resolve(source)
      const refs = await this.#readRefs()
      refs.names[dst.full] = image.digest
      await this.#writeJson(this.#refsPath, refs)
      return { ...image, names: [...new Set([...image.names, dst.full])].sort() }
    })
  }

  /**
   * Removes a name; the image goes with its last name, and with it every blob no other image
   * (nor a pull in progress) uses. By id or digest, an image with several names is removed only
   * with `force`.
   */
  async remove(input: string, opts: { force?: boolean } = {}): Promise<RemoveResult> {
    return this.withStoreLock(async () => {
      const { image, by, name } = await this.resolve(input)
      const users = (await reconcileContainers(this)).live.filter((c) => c.image === image.digest)
      const last = by === 'name' ? image.names.length <= 1 : true
      if (last && users.length) throw inUseError(input, image, users)
      const refs = await this.#readRefs()
      const untagged: string[] = []
      let drop = false
      if (by === 'name' && name) {
        delete refs.names[name]
        untagged.push(name)
        drop = image.names.length <= 1
      } else {
        if (image.names.length > 1 && !opts.force) {
          throw imageError(
            'IMAGE_IN_USE',
            `${input}: image ${image.id} has ${image.names.length} names (${image.names.join(', ')})`,
            {
              hint: 'remove it by name, or force the removal of all of them',
            },
          )
        }
        for (const n of image.names) {
          delete refs.names[n]
          untagged.push(n)
        }
        drop = true
      }
      await this.#writeJson(this.#refsPath, refs)
      const deleted: string[] = []
      if (drop) {
        await rm(this.#recordPath(image.digest), { force: true })
        deleted.push(image.digest)
      }
      const gc = await this.#collect()
      return { untagged, deleted, blobsRemoved: gc.blobs, bytesRemoved: gc.bytes }
    })
  }

  /** Removes images without a name, then every blob no image uses, and what dead pulls left. */
  async prune(): Promise<PruneResult> {
    return this.withStoreLock(async () => {
      const deleted: string[] = []
      const inUse: string[] = []
      const containers = await reconcileContainers(this)
      const used = new Set(containers.live.map((c) => c.image))
      for (const img of await this.list()) {
        if (img.names.length === 0 && used.has(img.digest)) {
          inUse.push(img.digest)
        } else if (img.names.length === 0) {
          await rm(this.#recordPath(img.digest), { force: true })
          deleted.push(img.digest)
        }
      }
      const gc = await this.#collect()
      return {
        untagged: [],
        deleted,
        blobsRemoved: gc.blobs,
        bytesRemoved: gc.bytes,
        tempFilesRemoved: gc.temps,
        inUse,
        containersRemoved: containers.removed,
      }
    })
  }

  /** Deletes those of `digests` that no image and no pull in progress uses. */
  async dropUnused(digests: readonly string[]): Promise<number> {
    return this.withStoreLock(async () => (await this.#collect(new Set(digests))).blobs)
  }

  /**
   * Under the store lock: deletes blobs that neither a record nor a live lease holds (only those
   * of `only` when given), unpacked layers no record uses, and temp files of dead processes.
   */
  async #collect(only?: Set<string>): Promise<{ blobs: number; bytes: number; temps: number }> {
    const keep = new Set<string>()
    for (const r of await this.#records()) for (const d of blobsOf(r)) keep.add(d)
    const leaseDir = join(this.root, 'leases')
    for (const f of await readdir(leaseDir).catch(() => [] as string[])) {
      const path = join(leaseDir, f)
      let text: string
      try {
        text = await readFile(path, 'utf8')
      } catch {
        continue
      }
      const owner = parseOwner(text)
      if (owner && ownerAlive(owner)) {
        for (const d of (JSON.parse(text) as { digests?: string[] }).digests ?? []) keep.add(d)
      } else {
        await unlink(path).catch(() => {})
      }
    }
    let blobs = 0
    let bytes = 0
    for (const f of await readdir(this.blobDir).catch(() => [] as string[])) {
      const d = `sha256:${f}`
      if (!isDigest(d) || keep.has(d) || (only && !only.has(d))) continue
      const path = join(this.blobDir, f)
      const s = await stat(path).catch(() => undefined)
      await rm(path, { force: true })
      blobs++
      bytes += s?.size ?? 0
    }
    if (only) return { blobs, bytes, temps: 0 }
    const diffIds = new Set((await this.#records()).flatMap((r) => r.layers.map((l) => hexOf(l.diffId))))
    // And those of containers that live (their images are kept, so this is a safeguard).
    for (const c of (await reconcileContainers(this)).live) for (const l of c.layers) diffIds.add(hexOf(l))
    const layerDir = join(this.root, 'layers', 'sha256')
    for (const f of await readdir(layerDir).catch(() => [] as string[])) {
      if (/^[a-f0-9]{64}$/.test(f) && diffIds.has(f)) continue
      if (!/^[a-f0-9]{64}(\..*)?$/.test(f)) continue
      const dot = f.split('.')
      // A layer being unpacked (`<hex>.<pid>.<start>.<nonce>.tmp`) stays while its process lives.
      if (dot.length === 5) {
        const s = self()
        if (ownerAlive({ pid: Number(dot[1]), start: dot[2]!, pidns: s.pidns, boot: s.boot })) continue
      }
      await removeLayerDir(join(layerDir, f))
    }
    let temps = 0
    const tmpDir = join(this.root, 'tmp')
    for (const f of await readdir(tmpDir).catch(() => [] as string[])) {
      const m = /^[a-z0-9]+\.(\d+)\.(\d+)\.[a-f0-9]+\.partial$/.exec(f)
      if (!m) continue
      const s = self()
      if (ownerAlive({ pid: Number(m[1]), start: m[2]!, pidns: s.pidns, boot: s.boot })) continue
      await rm(join(tmpDir, f), { force: true })
      temps++
    }
    // Locks of killed processes (the store lock, held now by this one, is left alone).
    temps += await clearStaleLocks(join(this.root, 'locks'), (f) => f !== 'store.lock')
    return { blobs, bytes, temps }
  }
}

/** The refusal to remove an image containers use. */
function inUseError(input: string, image: ImageInfo, users: ContainerRecord[]): NsError {
  const ids = users.map((c) => c.id)
  const shown = ids.length > 3 ? `${ids.slice(0, 3).join(', ')} and ${ids.length - 3} more` : ids.join(', ')
  return imageError(
    'IMAGE_IN_USE',
    `${input}: image ${image.id.slice(7, 19)} is used by container${ids.length > 1 ? 's' : ''} ${shown}`,
    {
      hint: 'remove the containers first (ns rm)',
      field: 'reference',
    },
  )
}

/** An unpacked layer's directory: a rootless one holds files of subordinate ids, removed through their namespace. */
async function removeLayerDir(path: string): Promise<void> {
  if ((process.geteuid?.() ?? 0) === 0) {
    await rm(path, { recursive: true, force: true })
    return
  }
  await native.removeLayer({ path, rootless: true }).catch(() => rm(path, { recursive: true, force: true }))
}
