// `@ns/core`'s images: pull from registries, keep in a store, list, inspect, tag, remove,
// prune, load from and save to archives. The CLI's and the server's image commands are thin
// layers over `openImages()`.
import { stat } from 'node:fs/promises'

import { imageError } from './errors.js'
import { importArchive, importLayout, writeArchive, writeLayout, type SaveEntry, type SaveFormat } from './archive.js'
import { removeCredentials, saveCredentials, type AuthFileOptions, type Credentials } from './auth.js'
import { parseConfig, type ImageConfig } from './media.js'
import { namedError, pullFromRegistry, wantedPlatform, type PullOptions } from './pull.js'
import { parseReference, parseSource, type ImageReference } from './reference.js'
import { RegistryClient, type RegistryOptions } from './registry.js'
import { defaultStore, ImageStore, type ImageInfo, type PruneResult, type RemoveResult } from './store.js'

export interface ImagesOptions extends RegistryOptions {
  /** The store directory (default: `/var/lib/ns` for root, `$XDG_DATA_HOME/ns` otherwise). */
  store?: string | undefined
}

/** An image as `inspect` shows it: the record, its names and its config. */
export interface ImageDetails extends ImageInfo {
  imageConfig: ImageConfig
}

export interface LoadOptions {
  signal?: AbortSignal | undefined
  /** For a multi-platform entry in the archive (default: this host's). */
  platform?: PullOptions['platform']
}

export interface Images {
  readonly store: string
  /**
   * Pulls an image by reference (`alpine`, `host:port/repo:tag`, `repo@sha256:…`) from its
   * registry, or reads one from `oci:DIR[:name]`, `oci-archive:FILE[:name]`,
   * `docker-archive:FILE[:ref]`.
   */
  pull(reference: string, opts?: PullOptions): Promise<ImageInfo>
  list(): Promise<ImageInfo[]>
  inspect(reference: string): Promise<ImageDetails>
  remove(reference: string, opts?: { force?: boolean }): Promise<RemoveResult>
  tag(source: string, target: string): Promise<ImageInfo>
  prune(): Promise<PruneResult>
  /** Reads every image of an archive (OCI or docker, gzip or not) or an OCI layout directory. */
  load(archive: string, opts?: LoadOptions): Promise<ImageInfo[]>
  /**
   * Writes images to `path` as an `oci-archive` (default), a `docker-archive` or an `oci-dir`
   * (OCI layout directory); `path` may also be `oci:DIR[:name]`, `oci-archive:FILE[:name]` or
   * `docker-archive:FILE[:ref]`.
   */
  save(references: string | string[], path: string, format?: SaveFormat): Promise<void>
  /** Checks credentials against a registry and saves them in the auth file (`ns login`). */
  login(registry: string, credentials: Credentials, opts?: { verify?: boolean }): Promise<string>
  /** Forgets a registry's credentials (`ns logout`); true if there were some. */
  logout(registry: string): Promise<boolean>
}

function registryDomain(registry: string): string {
  const r = registry.replace(/^https?:\/\//, '').replace(/\/.*$/, '')
  try {
    return parseReference(`${r}/x`).domain
  } catch {
    throw imageError('EINVAL', `registry: ${JSON.stringify(registry)} is not a host[:port]`, { field: 'registry' })
  }
}

/** Opens the image store (created when first written) with a registry client of these options. */
export function openImages(options: ImagesOptions = {}): Images {
  const store = new ImageStore(options.store ?? defaultStore())
  const client = new RegistryClient(options)
  const auth: AuthFileOptions = { authFile: options.authFile }

  async function entriesFor(references: string[]): Promise<SaveEntry[]> {
    const out: SaveEntry[] = []
    for (const r of references) {
      const { image, by, name } = await store.resolve(r)
      out.push({ image, names: by === 'name' && name ? [name] : image.names })
    }
    return out
  }

  const api: Images = {
    store: store.root,
    async pull(reference, opts = {}) {
      const src = parseSource(reference)
      if (src.transport === 'docker') return pullFromRegistry(store, client, src.ref, opts)
      const { want } = wantedPlatform(opts.platform)
      const io = { signal: opts.signal, platform: want }
      const got = await (
        src.transport === 'oci'
          ? importLayout(store, src.path, src.tag, io)
          : importArchive(
              store,
              src.path,
              src.transport,
              src.transport === 'docker-archive' ? { ref: src.ref } : { tag: src.tag },
              io,
            )
      ).catch((e: unknown) => {
        throw namedError(e, reference)
      })
      opts.onProgress?.({ type: 'complete', reference, image: got[0]! })
      return got[0]!
    },
    list: () => store.list(),
    async inspect(reference) {
      const image = await store.inspect(reference)
      const imageConfig = parseConfig(
        await store.readBlob(image.config.digest),
        image.layers.length,
        `${reference}: config`,
      )
      return { ...image, imageConfig }
    },
    remove: (reference, opts) => store.remove(reference, opts),
    tag: (source, target) => store.tag(source, target),
    prune: () => store.prune(),
    async load(archive, opts = {}) {
      const { want } = wantedPlatform(opts.platform)
      const io = { signal: opts.signal, platform: want }
      const src = /^(oci|oci-archive|docker-archive):/.test(archive) ? parseSource(archive, 'archive') : undefined
      if (src?.transport === 'oci') return importLayout(store, src.path, src.tag, io)
      if (src?.transport === 'oci-archive') return importArchive(store, src.path, 'oci-archive', { tag: src.tag }, io)
      if (src?.transport === 'docker-archive')
        return importArchive(store, src.path, 'docker-archive', { ref: src.ref }, io)
      const s = await stat(archive).catch(() => undefined)
      if (!s)
        throw imageError('IMAGE_NOT_FOUND', `archive: ${archive} does not exist`, { field: 'archive', path: archive })
      if (s.isDirectory()) return importLayout(store, archive, undefined, io)
      return importArchive(store, archive, undefined, {}, io)
    },
    async save(references, path, format) {
      const refs = Array.isArray(references) ? references : [references]
      if (refs.length === 0) throw imageError('EINVAL', 'references: name at least one image', { field: 'references' })
      let dest = path
      let fmt: SaveFormat = format ?? 'oci-archive'
      let tag: string | undefined
      let dockerRef: ImageReference | undefined
      const src = /^(oci|oci-archive|docker-archive):/.test(path) ? parseSource(path, 'path') : undefined
      if (src && src.transport !== 'docker') {
        dest = src.path
        fmt = src.transport === 'oci' ? 'oci-dir' : src.transport
        if (src.transport === 'docker-archive') dockerRef = src.ref
        else tag = src.tag
      }
      if (!['oci-archive', 'docker-archive', 'oci-dir'].includes(fmt)) {
        throw imageError('EINVAL', `format: ${JSON.stringify(fmt)} is not oci-archive, docker-archive or oci-dir`, {
          field: 'format',
        })
      }
      const entries = await entriesFor(refs)
      if (dockerRef) for (const e of entries) e.names = [dockerRef.full]
      if (fmt === 'oci-dir') return writeLayout(store, entries, dest, tag)
      return writeArchive(store, entries, dest, fmt, tag)
    },
    async login(registry, credentials, opts = {}) {
      const domain = registryDomain(registry)
      if (opts.verify ?? true) await new RegistryClient({ ...options, credentials }).verifyLogin(domain)
      return saveCredentials(domain, credentials, auth)
    },
    logout: (registry) => removeCredentials(registryDomain(registry), auth),
  }
  return api
}

let opened: Images | undefined
const def = () => (opened ??= openImages())

/** The images of the default store, with the default registry settings. */
export const images: Images = {
  get store() {
    return def().store
  },
  pull: (r, o) => def().pull(r, o),
  list: () => def().list(),
  inspect: (r) => def().inspect(r),
  remove: (r, o) => def().remove(r, o),
  tag: (s, t) => def().tag(s, t),
  prune: () => def().prune(),
  load: (a, o) => def().load(a, o),
  save: (r, p, f) => def().save(r, p, f),
  login: (r, c, o) => def().login(r, c, o),
  logout: (r) => def().logout(r),
}

export { ImageStore, defaultStore } from './store.js'
export type { ImageInfo, ImageRecord, LayerRecord, BlobRef, PruneResult, RemoveResult } from './store.js'
export { RegistryClient, isLoopback } from './registry.js'
export type { RegistryOptions } from './registry.js'
export { parseReference, parseSource, familiarName, formatSource } from './reference.js'
export type { ImageReference, ImageSource } from './reference.js'
export { authFilePaths, findCredentials, saveCredentials, removeCredentials, parseChallenges } from './auth.js'
export type { Credentials, Challenge } from './auth.js'
export { hostPlatform, parsePlatform, formatPlatform, selectManifest } from './platform.js'
export type { PlatformSpec } from './platform.js'
export { mediaTypes, parseManifest } from './media.js'
export type { ImageConfig, ImageIndex, ImageManifest, Descriptor, Compression } from './media.js'
export type { PullEvent, PullOptions } from './pull.js'
export type { SaveFormat } from './archive.js'
export { unpackLayer, unpackImage, layerDir, layerRoot } from './unpack.js'
export { reconcileContainers, containerDir } from './containers.js'
export type { ContainerRecord, StoreContainers } from './containers.js'
export { prepareImage, resolveUser, processOf } from './run.js'
export type { PreparedImage } from './run.js'
export type { UnpackLayerRequest, UnpackLayerResult, UnpackOptions } from './unpack.js'
export { acquireLock } from './lock.js'
export type { Lock, LockOptions } from './lock.js'
