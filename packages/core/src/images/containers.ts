// The containers of an image store: each container run from an image has a directory of its
// own in the store, which holds its writable layer and the store's record of it, so that the
// store knows which images and layers are in use:
//
//   <store>/containers/<id>/container.json   the record: id, image, layers, who made it, where its state is
//   <store>/containers/<id>/upper/           its writable layer (the overlay's upperdir)
//   <store>/containers/<id>/work/            overlayfs' work directory
//   <store>/containers/<id>/volumes/<n>/     the image's anonymous volumes
//
// A directory is made whole under a temp name and renamed into place under the store lock
// (after checking that its image and layers are there), so the store never sees half of one,
// and an image cannot be removed between the check and the record. The runtime removes it
// with the container (end of a foreground run, delete, a container that removes itself); what
// a crash leaves, `reconcile` removes: a record whose maker is dead and whose container has no
// state left. Nothing of a container's overlay is ever mounted in the host's mount namespace
// (it is mounted inside the container's own), so a directory is all there is to remove.
import { randomBytes } from 'node:crypto'
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'

import native from '@ns/native'

import { imageRootFacts } from '../generated/facts.js'
import type { IdMapping } from '../spec.js'
import { imageError, storeWriteError } from './errors.js'
import { ownerAlive, self, type Owner } from './lock.js'
import type { ImageStore } from './store.js'
import { isUnpacked, layerDir } from './unpack.js'

/** What the store keeps of a container of one of its images. */
export interface ContainerRecord {
  id: string
  /** The image's manifest digest (its record's key) and its id (the config's digest). */
  image: string
  imageId: string
  /** The reference it was run by. */
  reference: string
  /** The diff ids of its layers, base first. */
  layers: string[]
  /** The process that made it: while it lives, the container is in use. */
  owner: Owner
  /** A detached container's state root: while `<stateRoot>/<id>` exists, it is in use. */
  stateRoot?: string | undefined
  rootless: boolean
  /** The maps its files were written with (a rootless one is removed through them). */
  uidMappings?: IdMapping[] | undefined
  gidMappings?: IdMapping[] | undefined
  created: string
}

/** A container's directory in the store. */
export interface ContainerDir {
  dir: string
  upper: string
  work: string
  /** One directory per anonymous volume, in the order asked for. */
  volumes: string[]
}

export function containersDir(store: ImageStore): string {
  return join(store.root, 'containers')
}

export function containerDir(store: ImageStore, id: string): string {
  return join(containersDir(store), id)
}

function readRecord(dir: string): ContainerRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(join(dir, imageRootFacts.record), 'utf8')) as ContainerRecord
    return typeof r?.id === 'string' && typeof r.image === 'string' ? r : undefined
  } catch {
    return undefined
  }
}

/** Is the container of this record still there (made by a living process, or with state)? */
export function recordLive(r: ContainerRecord): boolean {
  if (r.stateRoot && existsSync(join(r.stateRoot, r.id))) return true
  return ownerAlive(r.owner)
}

/**
 * Makes a container's directory for `record`, with `volumes` anonymous volume directories
 * (their owner and mode given), under the store lock: its image must still be in the store,
 * with every layer unpacked.
 */
export async function makeContainerDir(
  store: ImageStore,
  record: Omit<ContainerRecord, 'owner' | 'created'>,
  volumes: { uid: number; gid: number; mode: number }[] = [],
): Promise<ContainerDir> {
  const base = containersDir(store)
  const dir = join(base, record.id)
  const tmp = join(base, `.${record.id}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  const full: ContainerRecord = { ...record, owner: self(), created: new Date().toISOString() }
  const made: ContainerDir = {
    dir,
    upper: join(dir, imageRootFacts.upper),
    work: join(dir, imageRootFacts.work),
    volumes: volumes.map((_, i) => join(dir, 'volumes', String(i))),
  }
  try {
    mkdirSync(base, { recursive: true, mode: 0o700 })
    mkdirSync(tmp, { mode: 0o700 })
    mkdirSync(join(tmp, imageRootFacts.upper), { mode: 0o755 })
    mkdirSync(join(tmp, imageRootFacts.work), { mode: 0o700 })
    volumes.forEach((v, i) => {
      const p = join(tmp, 'volumes', String(i))
      mkdirSync(p, { recursive: true, mode: v.mode & 0o7777 })
      // A root store's volume has the owner of the image's directory (seen through the id
      // maps, as the image's files are); a rootless one's is the user's (root inside).
      if (!record.rootless) {
        chownSync(p, v.uid, v.gid)
        chmodSync(p, v.mode & 0o7777)
      }
    })
    writeFileSync(join(tmp, imageRootFacts.record), `${JSON.stringify(full, null, 2)}\n`)
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true })
    throw storeWriteError(e, `cannot make the root of container ${record.id}`, store.root)
  }
  try {
    await store.withStoreLock(async () => {
      if (!store.hasRecord(record.image)) {
        throw imageError('IMAGE_NOT_FOUND', `${record.reference}: the image was removed meanwhile`, {
          hint: 'pull it again',
          field: 'image',
        })
      }
      for (const l of record.layers) {
        if (!isUnpacked(layerDir(store, l)))
          throw imageError('IMAGE_NOT_FOUND', `${record.reference}: layer ${l} was removed meanwhile`, {
            hint: 'run it again (its layers are unpacked again)',
            field: 'image',
          })
      }
      try {
        renameSync(tmp, dir)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw e
        // One of that name is there: a dead container's leftover goes, a live one's stays.
        const old = readRecord(dir)
        if (old && recordLive(old)) {
          throw imageError('EINVAL', `name: a container named ${record.id} uses the image store ${store.root}`, {
            field: 'name',
            hint: 'choose another name',
          })
        }
        await removeContainerDir(dir, old)
        renameSync(tmp, dir)
      }
    })
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true })
    throw storeWriteError(e, `cannot make the root of container ${record.id}`, store.root)
  }
  return made
}

/**
 * Removes a container's directory (moved aside first): root's directly, a rootless one from
 * inside a user namespace of the maps its files were written with.
 */
export async function removeContainerDir(dir: string, record = readRecord(dir)): Promise<void> {
  if (!existsSync(dir)) return
  const aside = join(dir, '..', `.${dir.split('/').pop()}.${process.pid}.${randomBytes(4).toString('hex')}.gone`)
  try {
    renameSync(dir, aside)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return
    throw e
  }
  await removeAside(aside, record)
}

async function removeAside(path: string, record: ContainerRecord | undefined): Promise<void> {
  const rootless = record?.rootless ?? (process.geteuid?.() ?? 0) !== 0
  if (!rootless) {
    rmSync(path, { recursive: true, force: true })
    return
  }
  await native.removeLayer({
    path,
    rootless: true,
    ...(record?.uidMappings ? { uidMappings: record.uidMappings, gidMappings: record.gidMappings } : {}),
  })
}

export interface StoreContainers {
  /** The containers in use, by id. */
  live: ContainerRecord[]
  /** Directories of containers that were gone, removed now. */
  removed: number
}

/**
 * The containers of the store's images: those in use, after removing what gone ones left
 * (their directories, and what a removal or a creation cut short left aside).
 */
export async function reconcileContainers(store: ImageStore): Promise<StoreContainers> {
  const base = containersDir(store)
  let names: string[]
  try {
    names = readdirSync(base)
  } catch {
    return { live: [], removed: 0 }
  }
  const live: ContainerRecord[] = []
  let removed = 0
  for (const name of names) {
    const path = join(base, name)
    if (name.startsWith('.')) {
      // `.ID.PID.NONCE.tmp` being made (while its maker lives), `.ID.PID(.NONCE).gone` being removed.
      const m = /^\.(.+)\.(\d+)(?:\.[a-f0-9]+)?\.(tmp|gone)$/.exec(name)
      if (!m) continue
      const pid = Number(m[2])
      if (m[3] === 'tmp' && pidAlive(pid)) continue
      if (m[3] === 'gone' && pidAlive(pid) && ageMs(path) < 60_000) continue
      await removeAside(path, readRecord(path)).catch(() => {})
      removed++
      continue
    }
    const rec = readRecord(path)
    if (rec && recordLive(rec)) {
      live.push(rec)
      continue
    }
    // No record (not one of ours), or its container is gone.
    if (!rec) continue
    await removeContainerDir(path, rec).catch(() => {})
    removed++
  }
  return { live, removed }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs
  } catch {
    return Infinity
  }
}
