// An image made ready to be a container's root: found in the store (or pulled, as the pull
// policy says), its layers unpacked, its config read, its user's name resolved in its own
// /etc/passwd and /etc/group, its anonymous volumes and the container's own directory made in
// the store. What comes out is what build.ts compiles into the spec, with the options over it.
//
// This is the path of every `ns run IMAGE`: it reads the store's files directly (one name in
// refs.json, one record, one config), takes the store lock once (to record the container), and
// loads the registry client only when it has to pull.
import { readFileSync, writeFileSync } from 'node:fs'
import { release as kernelRelease } from 'node:os'
import { join } from 'node:path'

import native from '@ns/native'

import { NsError } from '../errors.js'
import { defaultIdMappings } from '../host.js'
import type { ParsedRunOptions } from '../options.js'
import { imageRootFacts } from '../generated/facts.js'
import type { PullPolicy } from '../rules.js'
import type { IdMapping, OciMount } from '../spec.js'
import { makeContainerDir, removeContainerDir, type ContainerDir, type ContainerRecord } from './containers.js'
import { imageError } from './errors.js'
import type { Images } from './index.js'
import { parseConfig, type ImageConfig } from './media.js'
import { formatPlatform, parsePlatform } from './platform.js'
import { parseReference } from './reference.js'
import { defaultStore, ImageStore, type ImageInfo } from './store.js'
import { storeIsRootless, unpackImage } from './unpack.js'

/** What the image gives the container, and where its root is. */
export interface PreparedImage {
  /** The reference as the image was found by (its name, or its id). */
  reference: string
  image: ImageInfo
  config: ImageConfig
  /** Entrypoint + Cmd, with `entrypoint` and `command` in their places (empty: none). */
  args: string[]
  /** The image's environment (`KEY=VALUE`). */
  env: string[]
  cwd: string | undefined
  user: { uid: number; gid: number; additionalGids?: number[] }
  /** The user's home, from the image's /etc/passwd (`/root` for root). */
  home: string
  labels: Record<string, string>
  /** The image's ExposedPorts (`80/tcp`), for `-P` once ports are published. */
  exposedPorts: string[]
  /** The annotations that name the root (`io.ns.image.overlay`) and the image (`io.ns.image`). */
  annotations: Record<string, string>
  /** Its anonymous volumes, as bind mounts of directories of the container's own. */
  mounts: OciMount[]
  dir: ContainerDir
  /** Remove the container's directory (the runtime does once the container has been; this is for a container that never was). */
  release(): Promise<void>
}

export interface PrepareContext {
  /** The container's id. */
  id: string
  /** A detached container's state root (its state tells the store it is in use). */
  stateRoot?: string | undefined
  /** The container has a user namespace of its own (an anonymous volume is then idmapped, as the layers are). */
  userns: boolean
  /** The maps of its user namespace when given explicitly. */
  uidMappings?: IdMapping[] | undefined
  gidMappings?: IdMapping[] | undefined
}

function storeOf(images: Images | undefined): ImageStore {
  return new ImageStore(images?.store ?? defaultStore())
}

/** The image in the store by name (the quick way), else by any reference the store takes. */
export async function findImage(store: ImageStore, reference: string): Promise<ImageInfo | undefined> {
  let name: string | undefined
  try {
    const r = parseReference(reference, 'image')
    if (!r.digest) name = r.full
  } catch {
    // not a name: an id, a digest, a transport
  }
  const fast = name ? store.findByName(name) : undefined
  if (fast) return fast
  try {
    return (await store.resolve(reference)).image
  } catch (e) {
    if (e instanceof NsError && e.code === 'IMAGE_NOT_FOUND') return undefined
    throw e
  }
}

/** The image of `o.image`, pulled as `o.pull` says. */
async function imageFor(o: ParsedRunOptions, store: ImageStore): Promise<ImageInfo> {
  const reference = o.image!
  const policy: PullPolicy = o.pull ?? 'missing'
  let found = policy === 'always' ? undefined : await findImage(store, reference)
  if (found && o.platform) {
    const want = parsePlatform(o.platform, 'platform')
    const have = found.platform
    if (have.os !== want.os || have.architecture !== want.architecture) found = undefined
  }
  if (found) return found
  if (policy === 'never') {
    throw imageError('IMAGE_NOT_FOUND', `${reference}: no such image in the store ${store.root} (pull: never)`, {
      hint: `pull it first: ns pull ${reference}`,
      field: 'image',
    })
  }
  // The registry client, only now.
  const { images: defaults } = await import('./index.js')
  const images = o.images ?? defaults
  return images.pull(reference, {
    onProgress: o.onPull,
    ...(o.platform ? { platform: o.platform } : {}),
    signal: o.signal,
  })
}

/**
 * Overlayfs is checked once per store and kernel, for real (a probe mount in a child of its
 * own): a store it cannot stack (a rootless store on a filesystem without user.* attributes,
 * an old kernel) is an error with the way out, never a fallback to copying.
 */
async function ensureOverlay(store: ImageStore, rootless: boolean): Promise<void> {
  const cache = join(store.root, 'overlay.json')
  const kernel = kernelRelease()
  try {
    const c = JSON.parse(readFileSync(cache, 'utf8')) as { kernel?: string; rootless?: boolean; ok?: boolean }
    if (c.ok && c.kernel === kernel && c.rootless === rootless) return
  } catch {
    // not probed yet
  }
  const p = await native.probeOverlay({ dir: store.root, rootless })
  if (!p.ok) {
    throw new NsError({
      code: 'ENOTSUP',
      step: 'probe overlayfs',
      path: store.root,
      message: `cannot run images from the store ${store.root}: overlayfs does not work there${rootless ? ' for a normal user' : ''}: ${p.reason ?? 'the probe mount failed'}`,
      hint: p.hint,
    })
  }
  try {
    writeFileSync(cache, JSON.stringify({ kernel, rootless, ok: true }))
  } catch {
    // probed again next time
  }
}

/** A line of /etc/passwd or /etc/group, split. */
function entries(text: string | undefined): string[][] {
  return (text ?? '')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'))
}

const isNumber = (s: string) => /^\d+$/.test(s)

async function readInImage(layers: string[], path: string, rootless: boolean): Promise<string | undefined> {
  const f = await native.lookupImagePath({ layers, path, rootless, read: 1 << 20 })
  return f.found && f.data ? f.data.toString('utf8') : undefined
}

/**
 * The user of `spec` (`name`, `uid`, `name:group`, `uid:gid`, an object) as the image's own
 * /etc/passwd and /etc/group say, as docker reads them: a name not there is an error; a
 * number not there is that uid with gid 0; the user's groups in /etc/group are its
 * additional groups; its home is its passwd entry's.
 */
export async function resolveUser(
  spec: ParsedRunOptions['user'] | string | undefined,
  layers: string[],
  rootless: boolean,
  reference: string,
): Promise<{ user: PreparedImage['user']; home: string }> {
  if (spec === undefined || spec === '' || spec === 'root' || spec === '0' || spec === '0:0') {
    // The common case, without reading the image: root is 0:0 with its home.
    return { user: { uid: 0, gid: 0, additionalGids: [0] }, home: '/root' }
  }
  if (typeof spec === 'object') {
    return {
      user: {
        uid: spec.uid,
        gid: spec.gid ?? spec.uid,
        ...(spec.additionalGids ? { additionalGids: spec.additionalGids } : {}),
      },
      home: '/',
    }
  }
  const [who, group] = spec.split(':') as [string, string | undefined]
  const passwd = entries(await readInImage(layers, '/etc/passwd', rootless))
  const entry = isNumber(who) ? passwd.find((e) => e[2] === who) : passwd.find((e) => e[0] === who)
  if (!entry && !isNumber(who)) {
    throw imageError(
      'EINVAL',
      `user: unable to find user ${who}: no matching entries in the passwd file of ${reference}`,
      {
        field: 'user',
      },
    )
  }
  const uid = Number(entry ? entry[2] : who)
  let gid = entry ? Number(entry[3]) : 0
  const groups = entries(group !== undefined || entry ? await readInImage(layers, '/etc/group', rootless) : undefined)
  if (group !== undefined) {
    const g = isNumber(group) ? groups.find((e) => e[2] === group) : groups.find((e) => e[0] === group)
    if (!g && !isNumber(group)) {
      throw imageError(
        'EINVAL',
        `user: unable to find group ${group}: no matching entries in the group file of ${reference}`,
        {
          field: 'user',
        },
      )
    }
    gid = Number(g ? g[2] : group)
  }
  // As docker: the primary group, then every group that lists the user.
  const name = entry?.[0]
  const listed = name ? groups.filter((g) => (g[3] ?? '').split(',').includes(name)).map((g) => Number(g[2])) : []
  const additional = [...new Set([gid, ...listed])].filter((g) => Number.isInteger(g))
  const out = { uid, gid, additionalGids: additional }
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw imageError('EINVAL', `user: the passwd or group file of ${reference} has a bad entry for ${spec}`, {
      field: 'user',
    })
  }
  return { user: out, home: entry?.[5] || '/' }
}

/** The process of the image, with what was given over it (docker's rules). */
export function processOf(
  config: ImageConfig,
  o: Pick<ParsedRunOptions, 'entrypoint' | 'command'>,
): { args: string[]; env: string[]; cwd: string | undefined } {
  const c = config.config ?? {}
  const entrypoint = o.entrypoint ?? c.Entrypoint ?? []
  // A new entrypoint drops the image's Cmd (as docker does): the command given is its arguments.
  const cmd = o.command ?? (o.entrypoint !== undefined ? [] : (c.Cmd ?? []))
  return {
    args: [...entrypoint, ...cmd],
    env: (c.Env ?? []).filter((e) => e.indexOf('=') > 0),
    cwd: c.WorkingDir && c.WorkingDir.startsWith('/') ? c.WorkingDir : undefined,
  }
}

/** Targets of a mount or volume the options give (an image volume there is not made). */
function takenTargets(o: ParsedRunOptions): Set<string> {
  const out = new Set<string>()
  for (const v of o.volumes ?? []) out.add(clean(v.split(':')[1] ?? ''))
  for (const m of o.mounts ?? []) out.add(clean(m.target))
  return out
}

const clean = (p: string) => `/${p.split('/').filter(Boolean).join('/')}`

/**
 * Finds (or pulls) the image, unpacks its layers, reads its config and user, and makes the
 * container's directory in the store. The caller compiles the result into the spec
 * (build.ts) and either runs it or calls `release`.
 */
export async function prepareImage(o: ParsedRunOptions, ctx: PrepareContext): Promise<PreparedImage> {
  const store = storeOf(o.images)
  const image = await imageFor(o, store)
  const reference = image.names.includes(safeFull(o.image!) ?? '') ? safeFull(o.image!)! : o.image!
  const rootless = storeIsRootless()
  const maps = rootless ? defaultIdMappings() : undefined
  if (rootless && (o.uidMappings || o.gidMappings) && !sameMaps(o.uidMappings, maps!.uid)) {
    throw NsError.invalid(
      'uidMappings',
      "an image of a rootless store runs with the store's maps (your id and /etc/subuid range): give no uidMappings",
    )
  }
  const config = parseConfig(
    readFileSync(store.blobPath(image.config.digest)),
    image.layers.length,
    `${reference}: config`,
  )
  if (config.os !== 'linux') {
    throw imageError(
      'NO_MATCHING_PLATFORM',
      `${reference}: the image is for ${formatPlatform(image.platform)}, not linux`,
      {
        field: 'platform',
      },
    )
  }
  const layers = await unpackImage(store, image, { rootless, signal: o.signal })
  await ensureOverlay(store, rootless)
  const proc = processOf(config, o)
  const { user, home } = await resolveUser(o.user ?? config.config?.User, layers, rootless, reference)
  // Anonymous volumes: the image's, where the options mount nothing; each a directory of the
  // container's own with the owner and mode of the image's directory there.
  const taken = takenTargets(o)
  const volumeTargets = Object.keys(config.config?.Volumes ?? {})
    .map(clean)
    .filter((t) => t !== '/' && !taken.has(t))
  const owners = await Promise.all(
    volumeTargets.map(async (t) => {
      const f = await native.lookupImagePath({ layers, path: t, rootless })
      const dir = f.found && (f.mode & 0o170000) === 0o040000
      return dir ? { uid: f.uid, gid: f.gid, mode: f.mode } : { uid: 0, gid: 0, mode: 0o755 }
    }),
  )
  const record: Omit<ContainerRecord, 'owner' | 'created'> = {
    id: ctx.id,
    image: image.digest,
    imageId: image.id,
    reference,
    layers: image.layers.map((l) => l.diffId),
    stateRoot: ctx.stateRoot,
    rootless,
    ...(maps ? { uidMappings: maps.uid, gidMappings: maps.gid } : {}),
  }
  const dir = await makeContainerDir(store, record, owners)
  const idmapped = !rootless && ctx.userns
  const mounts: OciMount[] = volumeTargets.map((destination, i) => ({
    destination,
    type: 'bind',
    source: dir.volumes[i]!,
    options: ['rbind', 'rw', ...(idmapped ? ['idmap'] : [])],
  }))
  const labels = Object.fromEntries(
    Object.entries(config.config?.Labels ?? {}).filter(([k]) => /^[A-Za-z0-9._-]+$/.test(k)),
  )
  return {
    reference,
    image,
    config,
    args: proc.args,
    env: proc.env,
    cwd: proc.cwd,
    user,
    home,
    labels,
    exposedPorts: Object.keys(config.config?.ExposedPorts ?? {}),
    annotations: {
      [imageRootFacts.annotation]: JSON.stringify({ layers, dir: dir.dir, rootless }),
      'io.ns.image': reference,
    },
    mounts,
    dir,
    release: () => removeContainerDir(dir.dir),
  }
}

function safeFull(ref: string): string | undefined {
  try {
    return parseReference(ref, 'image').full
  } catch {
    return undefined
  }
}

function sameMaps(a: IdMapping[] | undefined, b: IdMapping[]): boolean {
  return JSON.stringify(a ?? []) === JSON.stringify(b)
}
