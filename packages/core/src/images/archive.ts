// Images in files, read into the store: OCI image layout directories (`oci:DIR[:name]`), the
// same as a tar (`oci-archive:`), and docker's `docker save` tar (`docker-archive:`). Every
// blob read is verified against its digest on the way in. Writing them is archive-save.ts's.
import { createReadStream } from 'node:fs'
import { open, readFile, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'

import * as tar from 'tar-stream'

import { NsError } from '../errors.js'
import { checkDigest, hexOf, isDigest, sha256 } from './digest.js'
import { imageError } from './errors.js'
import { mediaTypes, ociLayerType, parseManifest, sniffCompression, type Descriptor, type ImageIndex } from './media.js'
import { selectManifest, type PlatformSpec } from './platform.js'
import { buildRecord } from './record.js'
import { parseReference, type ImageReference } from './reference.js'
import type { ImageInfo, ImageStore, Lease } from './store.js'
import { containerdNameKey, refNameKey } from './archive-save.js'

const maxJsonBytes = 4 * 1024 * 1024

export interface ImportOptions {
  signal?: AbortSignal | undefined
  /** For an index in the layout: the platform wanted (default: this host's). */
  platform: PlatformSpec
}

/** Where the blobs of an image being read come from. */
interface BlobSource {
  what: string
  /** Bytes of a small blob (manifest, index, config) from the source or the store. */
  bytes(digest: string): Promise<Buffer>
  /** Brings a blob into the store, verified. */
  ingest(desc: Descriptor): Promise<void>
}

function archiveError(what: string, reason: string, path?: string): NsError {
  return imageError('INVALID_ARCHIVE', `${what}: ${reason}`, {
    path,
    hint: 'the archive or layout is damaged or not an image',
  })
}

/** A name for an image read from a layout: its annotations, or `localhost/<file>:<name>` as podman does. */
function nameFor(
  annotations: Record<string, string> | undefined,
  wanted: string | undefined,
  path: string,
): string | undefined {
  const candidates = [annotations?.[containerdNameKey], annotations?.[refNameKey], wanted]
  for (const c of candidates) {
    if (!c) continue
    if (c.includes('/') || c.includes('@')) {
      try {
        const r = parseReference(c)
        if (!r.digest) return r.full
      } catch {
        // not a reference: a layout-local name
      }
    }
  }
  const tag = wanted ?? annotations?.[refNameKey]
  if (!tag || !/^[\w][\w.-]{0,127}$/.test(tag)) return undefined
  const base = basename(path)
    .replace(/\.(tar|tgz|tar\.gz)$/, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
  if (!base) return undefined
  try {
    return parseReference(`localhost/${base}:${tag}`).full
  } catch {
    return undefined
  }
}

function parseJsonFile<T>(bytes: Buffer, what: string, file: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch (e) {
    throw archiveError(what, `${file} is not valid JSON (${(e as Error).message})`)
  }
}

/**
 * Resolves one entry of an OCI `index.json` to an image in the store: the index of a
 * multi-platform entry is narrowed to the platform, the manifest and config read, every layer
 * brought in and verified, the record committed.
 */
async function importEntry(
  store: ImageStore,
  src: BlobSource,
  entry: Descriptor,
  name: string | undefined,
  source: string,
  lease: Lease,
  opts: ImportOptions,
): Promise<ImageInfo> {
  let desc = entry
  let index: { digest: string; mediaType: string; size: number } | undefined
  const first = parseManifest(await src.bytes(desc.digest), desc.mediaType, `${src.what}: manifest ${desc.digest}`)
  let parsed = first
  if (first.kind === 'index') {
    await src.ingest(desc)
    index = { digest: desc.digest, mediaType: first.mediaType, size: desc.size }
    desc = selectManifest(first.index.manifests, opts.platform, src.what)
    parsed = parseManifest(await src.bytes(desc.digest), desc.mediaType, `${src.what}: manifest ${desc.digest}`)
    if (parsed.kind === 'index') throw archiveError(src.what, `index ${desc.digest} points at another index`)
  }
  if (parsed.kind !== 'manifest') throw archiveError(src.what, 'no image manifest')
  const manifest = parsed.manifest
  await lease.add([desc.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)])
  await src.ingest(desc)
  await src.ingest(manifest.config)
  const { record } = buildRecord({
    manifestDigest: desc.digest,
    manifestMediaType: parsed.mediaType,
    manifestSize: desc.size,
    manifest,
    configBytes: await store.readBlob(manifest.config.digest),
    index,
    repoDigests: [],
    source,
    what: src.what,
  })
  for (const l of manifest.layers) await src.ingest(l)
  return store.commit(record, name ? [name] : [])
}

/** The entries of an OCI index.json to import: the one named `wanted`, or all of them. */
function chooseEntries(index: ImageIndex, wanted: string | undefined, what: string): Descriptor[] {
  if (wanted === undefined) {
    if (index.manifests.length === 0) throw archiveError(what, 'index.json lists no image')
    return index.manifests
  }
  const hits = index.manifests.filter(
    (m) => m.annotations?.[refNameKey] === wanted || m.annotations?.[containerdNameKey] === wanted,
  )
  if (hits.length === 0) {
    const names = index.manifests.map((m) => m.annotations?.[refNameKey]).filter(Boolean)
    throw imageError(
      'IMAGE_NOT_FOUND',
      `${what}: no image named ${JSON.stringify(wanted)} (it has ${names.join(', ') || 'no names'})`,
    )
  }
  return hits.slice(0, 1)
}

function checkLayout(layoutBytes: Buffer | undefined, what: string): void {
  if (!layoutBytes) throw archiveError(what, 'no oci-layout file: not an OCI image layout')
  const j = parseJsonFile<{ imageLayoutVersion?: string }>(layoutBytes, what, 'oci-layout')
  if (typeof j.imageLayoutVersion !== 'string' || !j.imageLayoutVersion.startsWith('1.')) {
    throw archiveError(what, `oci-layout has version ${JSON.stringify(j.imageLayoutVersion)}, not 1.x`)
  }
}

/** Reads an OCI image layout directory into the store: the image named `wanted`, or every one. */
export async function importLayout(
  store: ImageStore,
  dir: string,
  wanted: string | undefined,
  opts: ImportOptions,
): Promise<ImageInfo[]> {
  const what = `oci:${dir}`
  const read = async (file: string) => {
    try {
      return await readFile(join(dir, file))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw archiveError(what, `cannot read ${file}: ${(e as Error).message}`, join(dir, file))
    }
  }
  checkLayout(await read('oci-layout'), what)
  const indexBytes = await read('index.json')
  if (!indexBytes) throw archiveError(what, 'no index.json')
  const index = parseManifest(indexBytes, mediaTypes.ociIndex, `${what}: index.json`)
  if (index.kind !== 'index') throw archiveError(what, 'index.json is not an image index')
  const blobFile = (d: string) => join(dir, 'blobs', 'sha256', hexOf(d))
  const src: BlobSource = {
    what,
    async bytes(digest) {
      if (await store.hasBlob(digest)) return store.readBlob(digest)
      const s = await stat(blobFile(digest)).catch(() => undefined)
      if (!s) throw archiveError(what, `blob ${digest} is missing`)
      if (s.size > maxJsonBytes) throw archiveError(what, `manifest ${digest} is ${s.size} bytes`)
      const b = await readFile(blobFile(digest))
      if (sha256(b) !== digest) {
        throw imageError(
          'DIGEST_MISMATCH',
          `${what}: blob ${digest} failed verification: its content hashes to ${sha256(b)}`,
        )
      }
      return b
    },
    async ingest(desc) {
      await store.ingest(
        desc,
        async (sink) => {
          let stream: Readable
          try {
            await stat(blobFile(desc.digest))
            stream = createReadStream(blobFile(desc.digest))
          } catch {
            throw archiveError(what, `blob ${desc.digest} is missing`, blobFile(desc.digest))
          }
          for await (const c of stream) await sink.write(c as Buffer)
        },
        { what, signal: opts.signal },
      )
    },
  }
  const lease = await store.lease([])
  try {
    const out: ImageInfo[] = []
    for (const e of chooseEntries(index.index, wanted, what)) {
      out.push(await importEntry(store, src, e, nameFor(e.annotations, wanted, dir), what, lease, opts))
    }
    return out
  } finally {
    await lease.release()
  }
}

interface TarContents {
  /** Small JSON-ish files, by path. */
  small: Map<string, Buffer>
  /** Every other regular file, ingested: path -> digest and size. */
  blobs: Map<string, { digest: string; size: number }>
  symlinks: Map<string, string>
}

const normalize = (p: string) => p.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '')

function isSmall(path: string): boolean {
  return (
    path === 'manifest.json' ||
    path === 'index.json' ||
    path === 'oci-layout' ||
    path === 'repositories' ||
    path.endsWith('.json') ||
    path.endsWith('/VERSION')
  )
}

/** Streams a tar (gzip-compressed or not) once, ingesting every blob-like file as it passes, verified. */
async function readTar(
  store: ImageStore,
  path: string,
  what: string,
  lease: Lease,
  signal?: AbortSignal,
): Promise<TarContents> {
  const head = Buffer.alloc(2)
  try {
    const fh = await open(path, 'r')
    await fh.read(head, 0, 2, 0)
    await fh.close()
  } catch (e) {
    throw imageError(
      (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'IMAGE_NOT_FOUND' : 'INVALID_ARCHIVE',
      `${what}: cannot open ${path}: ${(e as Error).message}`,
      {
        path,
      },
    )
  }
  const out: TarContents = { small: new Map(), blobs: new Map(), symlinks: new Map() }
  const extract = tar.extract()
  const file = createReadStream(path)
  const feeding =
    head[0] === 0x1f && head[1] === 0x8b ? pipeline(file, createGunzip(), extract) : pipeline(file, extract)
  feeding.catch((e: unknown) => extract.destroy(e as Error))
  try {
    for await (const entry of extract) {
      if (signal?.aborted) throw imageError('ABORTED', `${what}: aborted`)
      const name = normalize(entry.header.name)
      const type = entry.header.type
      if (type === 'symlink' || type === 'link') {
        const target = entry.header.linkname ?? ''
        out.symlinks.set(name, type === 'link' ? normalize(target) : normalize(join(dirname(name), target)))
        entry.resume()
        continue
      }
      if (type !== 'file' && type !== 'contiguous-file') {
        entry.resume()
        continue
      }
      const size = entry.header.size ?? 0
      const blobName = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name)
      if (isSmall(name) && !blobName && size <= maxJsonBytes) {
        const chunks: Buffer[] = []
        for await (const c of entry) chunks.push(c as Buffer)
        out.small.set(name, Buffer.concat(chunks))
        continue
      }
      const expected = blobName ? { digest: `sha256:${blobName[1]}`, size } : undefined
      if (expected) await lease.add([expected.digest])
      const r = await store.ingest(
        expected,
        async (sink) => {
          for await (const c of entry) await sink.write(c as Buffer)
        },
        { what: `${what}: ${name}`, lease, signal },
      )
      // A blob already present was not read: drain the entry.
      if (r.existed && expected) entry.resume()
      out.blobs.set(name, { digest: r.digest, size: r.size })
    }
    await feeding
  } catch (e) {
    extract.destroy()
    file.destroy()
    if (e instanceof NsError) throw e
    throw archiveError(what, `cannot read the tar: ${(e as Error).message}`, path)
  }
  return out
}

function resolvePath(c: TarContents, p: string): string {
  let cur = normalize(p)
  for (let i = 0; i < 16 && c.symlinks.has(cur); i++) cur = c.symlinks.get(cur)!
  return cur
}

function tarSource(store: ImageStore, c: TarContents, what: string): BlobSource {
  return {
    what,
    async bytes(digest) {
      if (await store.hasBlob(digest)) return store.readBlob(digest)
      const b = c.small.get(`blobs/sha256/${hexOf(digest)}`)
      if (!b) throw archiveError(what, `blob ${digest} is not in the archive`)
      return b
    },
    async ingest(desc) {
      if (await store.hasBlob(desc.digest, desc.size)) return
      throw archiveError(what, `blob ${desc.digest} is not in the archive`)
    },
  }
}

async function importOciTar(
  store: ImageStore,
  c: TarContents,
  path: string,
  wanted: string | undefined,
  lease: Lease,
  opts: ImportOptions,
  what: string,
): Promise<ImageInfo[]> {
  checkLayout(c.small.get('oci-layout'), what)
  const indexBytes = c.small.get('index.json')
  if (!indexBytes) throw archiveError(what, 'no index.json')
  const index = parseManifest(indexBytes, mediaTypes.ociIndex, `${what}: index.json`)
  if (index.kind !== 'index') throw archiveError(what, 'index.json is not an image index')
  const src = tarSource(store, c, what)
  const out: ImageInfo[] = []
  for (const e of chooseEntries(index.index, wanted, what)) {
    out.push(await importEntry(store, src, e, nameFor(e.annotations, wanted, path), what, lease, opts))
  }
  return out
}

interface DockerManifestEntry {
  Config: string
  RepoTags?: string[] | null
  Layers: string[]
}

async function importDockerTar(
  store: ImageStore,
  c: TarContents,
  wanted: ImageReference | undefined,
  lease: Lease,
  what: string,
): Promise<ImageInfo[]> {
  const mbytes = c.small.get('manifest.json')
  if (!mbytes) throw archiveError(what, 'no manifest.json: not a docker-archive')
  const entries = parseJsonFile<DockerManifestEntry[]>(mbytes, what, 'manifest.json')
  if (!Array.isArray(entries) || entries.length === 0) throw archiveError(what, 'manifest.json lists no image')
  let chosen = entries
  if (wanted) {
    chosen = entries.filter((e) => (e.RepoTags ?? []).some((t) => parseReference(t).full === wanted.full))
    if (chosen.length === 0)
      throw imageError('IMAGE_NOT_FOUND', `${what}: no image tagged ${wanted.full} in the archive`)
  }
  const fileBytes = async (p: string): Promise<Buffer> => {
    const r = resolvePath(c, p)
    const small = c.small.get(r)
    if (small) return small
    const b = c.blobs.get(r)
    if (b) return store.readBlob(b.digest)
    throw archiveError(what, `${p} is named in manifest.json but not in the archive`)
  }
  const out: ImageInfo[] = []
  for (const [n, e] of chosen.entries()) {
    if (typeof e?.Config !== 'string' || !Array.isArray(e.Layers))
      throw archiveError(what, `manifest.json[${n}] has no Config or Layers`)
    const configBytes = await fileBytes(e.Config)
    const configDigest = sha256(configBytes)
    await lease.add([configDigest])
    await store.putBytes(configBytes, `${what}: config`)
    const layers: Descriptor[] = []
    const config = parseJsonFile<{ rootfs?: { diff_ids?: string[] } }>(configBytes, what, e.Config)
    const diffIds = config.rootfs?.diff_ids ?? []
    for (const [i, lp] of e.Layers.entries()) {
      const r = resolvePath(c, lp)
      let b = c.blobs.get(r)
      if (!b) {
        const small = c.small.get(r)
        if (!small) throw archiveError(what, `layer ${lp} is named in manifest.json but not in the archive`)
        const d = sha256(small)
        await lease.add([d])
        await store.putBytes(small, `${what}: ${lp}`)
        b = { digest: d, size: small.length }
      }
      const head = Buffer.alloc(4)
      const fh = await open(store.blobPath(b.digest), 'r')
      await fh.read(head, 0, 4, 0)
      await fh.close()
      const compression = sniffCompression(head)
      if (compression === 'none' && diffIds[i] !== undefined && diffIds[i] !== b.digest) {
        throw imageError(
          'DIGEST_MISMATCH',
          `${what}: layer ${lp} hashes to ${b.digest}, the config says ${checkDigest(diffIds[i], 'diff_id')}`,
        )
      }
      layers.push({ mediaType: ociLayerType(compression), digest: b.digest, size: b.size })
    }
    const manifest = {
      schemaVersion: 2 as const,
      mediaType: mediaTypes.ociManifest,
      config: { mediaType: mediaTypes.ociConfig, digest: configDigest, size: configBytes.length },
      layers,
    }
    const mbytes = Buffer.from(JSON.stringify(manifest))
    const mdigest = sha256(mbytes)
    await lease.add([mdigest])
    await store.putBytes(mbytes, `${what}: manifest`)
    const { record } = buildRecord({
      manifestDigest: mdigest,
      manifestMediaType: mediaTypes.ociManifest,
      manifestSize: mbytes.length,
      manifest,
      configBytes,
      repoDigests: [],
      source: what,
      what,
    })
    const names = (e.RepoTags ?? []).flatMap((t) => {
      try {
        return [parseReference(t).full]
      } catch {
        return []
      }
    })
    out.push(await store.commit(record, wanted ? [wanted.full] : names))
  }
  return out
}

/**
 * Reads an archive into the store: an `oci-archive` (a tar of an OCI layout) or a
 * `docker-archive` (`docker save`), told apart by their contents unless `format` says;
 * gzip-compressed tars too. Returns the images it held (or the one asked for).
 */
export async function importArchive(
  store: ImageStore,
  path: string,
  format: 'oci-archive' | 'docker-archive' | undefined,
  wanted: { tag?: string | undefined; ref?: ImageReference | undefined },
  opts: ImportOptions,
): Promise<ImageInfo[]> {
  const what = `${format ?? 'archive'}:${path}`
  const lease = await store.lease([])
  try {
    const c = await readTar(store, path, what, lease, opts.signal)
    const oci = c.small.has('oci-layout') && c.small.has('index.json')
    const docker = c.small.has('manifest.json')
    let images: ImageInfo[]
    if (format === 'docker-archive' || (format === undefined && docker && (!oci || wanted.ref))) {
      images = await importDockerTar(store, c, wanted.ref, lease, what)
    } else if (format === 'oci-archive' || oci) {
      images = await importOciTar(store, c, path, wanted.tag, lease, opts, what)
    } else {
      throw archiveError(
        what,
        'neither an OCI archive (oci-layout, index.json) nor a docker archive (manifest.json)',
        path,
      )
    }
    // Blobs of the archive no image uses go now rather than at the next prune.
    const used = new Set(
      images.flatMap((i) => [
        i.digest,
        i.config.digest,
        ...i.layers.map((l) => l.digest),
        ...(i.indexDigest ? [i.indexDigest] : []),
      ]),
    )
    const unused = [...c.blobs.values()].map((b) => b.digest).filter((d) => !used.has(d))
    await lease.release()
    if (unused.length) await store.dropUnused(unused)
    return images
  } finally {
    await lease.release()
  }
}

export { isDigest }
