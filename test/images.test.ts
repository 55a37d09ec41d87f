// Images end to end, on loopback: a real registry (Debian's docker-registry on 127.0.0.1),
// images built with umoci from the fixture rootfs and pushed with skopeo in each form, pulled
// by @ns/core into stores in temp dirs; what lands on disk is checked with sha256sum, zstd and
// skopeo, independently of ns. Proxies on 127.0.0.1 corrupt, cut, redirect and demand tokens.
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect } from 'vitest'

import {
  defaultStore,
  hostPlatform,
  openImages,
  unpackImage,
  ImageStore,
  type ImageInfo,
  type PullEvent,
} from '@ns/core'

import { fixtureRootfs, isRoot, itWhen, repoRoot, usernsSkipReason } from './helpers.js'
import {
  buildLayout,
  builtImages,
  freePort,
  registrySkipReason,
  run,
  sha256sum,
  skopeo,
  startProxy,
  startRegistry,
  testUser,
  type BuiltImage,
  type TestRegistry,
} from './registry.js'

const itReg = itWhen(registrySkipReason)
const work = mkdtempSync(join(tmpdir(), 'ns-images-'))
let reg: TestRegistry
let layout: string
/** The layout's manifests and configs, as umoci wrote them. */
const built: Record<string, BuiltImage> = {}

const stores: string[] = []
function newStore(): string {
  const s = join(work, `store-${stores.length}`)
  stores.push(s)
  return s
}
const blobFiles = (store: string) => {
  const d = join(store, 'blobs', 'sha256')
  return existsSync(d) ? readdirSync(d).sort() : []
}
const hexes = (img: ImageInfo) =>
  [
    img.digest,
    img.config.digest,
    ...img.layers.map((l) => l.digest),
    ...(img.indexDigest ? [img.indexDigest] : []),
  ].map((d) => d.slice(7))
const errorOf = async (p: Promise<unknown>) => {
  try {
    await p
  } catch (e) {
    return e as Error & { code: string }
  }
  throw new Error('expected a failure')
}

/** The registry's own answer for a manifest: its digest (Docker-Content-Digest) and type. */
async function registryManifest(repo: string, ref: string, accept: string) {
  const r = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { headers: { Accept: accept } })
  const body = Buffer.from(await r.arrayBuffer())
  if (!r.ok) throw new Error(`${repo}:${ref}: ${r.status} ${body.toString()}`)
  return { digest: r.headers.get('docker-content-digest')!, type: r.headers.get('content-type')!, body }
}

const ociManifest = 'application/vnd.oci.image.manifest.v1+json'
const dockerManifest = 'application/vnd.docker.distribution.manifest.v2+json'
const ociIndex = 'application/vnd.oci.image.index.v1+json'

function checkBlobsOnDisk(store: string, img: ImageInfo) {
  for (const h of hexes(img)) {
    expect(sha256sum(join(store, 'blobs', 'sha256', h))).toBe(`sha256:${h}`)
  }
}

beforeAll(async () => {
  if (registrySkipReason) return
  reg = await startRegistry()
  layout = buildLayout(work)
  Object.assign(built, builtImages(layout))
  const push = (src: string, dst: string, ...flags: string[]) =>
    skopeo('copy', '--dest-tls-verify=false', ...flags, `oci:${layout}:${src}`, `docker://${reg.host}/${dst}`)
  push('v2', 'test/app:v2s2', '--format', 'v2s2')
  push('v2', 'test/app:oci', '--format', 'oci')
  // zstd: recompressed into a layout of its own first (pushed straight, skopeo would reuse the
  // gzip blobs the registry already has).
  skopeo('copy', '--dest-compress-format', 'zstd', `oci:${layout}:v2`, `oci:${join(work, 'zstd-layout')}:v2`)
  skopeo(
    'copy',
    '--dest-tls-verify=false',
    '--format',
    'oci',
    '--dest-compress-format',
    'zstd',
    `oci:${join(work, 'zstd-layout')}:v2`,
    `docker://${reg.host}/test/app:zstd`,
  )
  push('base', 'test/base:v1', '--format', 'oci')
  push('v2', 'test/multi:amd64', '--format', 'oci')
  push('v2-arm64', 'test/multi:arm64', '--format', 'oci')
  // The multi-arch index, PUT by hand (skopeo has no command to assemble one).
  const amd = await registryManifest('test/multi', 'amd64', ociManifest)
  const arm = await registryManifest('test/multi', 'arm64', ociManifest)
  const idx = {
    schemaVersion: 2,
    mediaType: ociIndex,
    manifests: [
      {
        mediaType: ociManifest,
        digest: amd.digest,
        size: amd.body.length,
        platform: { os: 'linux', architecture: 'amd64' },
      },
      {
        mediaType: ociManifest,
        digest: arm.digest,
        size: arm.body.length,
        platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
      },
    ],
  }
  const put = await fetch(`${reg.url}/v2/test/multi/manifests/latest`, {
    method: 'PUT',
    headers: { 'Content-Type': ociIndex },
    body: JSON.stringify(idx),
  })
  if (put.status !== 201) throw new Error(`index PUT: ${put.status} ${await put.text()}`)
  skopeo('copy', `oci:${layout}:v2`, `docker-archive:${join(work, 'app.docker.tar')}:test/app:v2`)
  skopeo('copy', `oci:${layout}:v2`, `oci-archive:${join(work, 'app.oci.tar')}:v2`)
}, 120_000)

afterAll(async () => {
  await reg?.stop()
  rmSync(work, { recursive: true, force: true })
})

describe('pull from a registry on 127.0.0.1', () => {
  itReg(
    'a Docker v2s2 image: every blob stored under the sha256 that sha256sum computes, the name pointing at it',
    async () => {
      const store = newStore()
      const im = openImages({ store })
      const events: PullEvent[] = []
      const img = await im.pull(`${reg.host}/test/app:v2s2`, { onProgress: (e) => events.push(e) })
      const want = await registryManifest('test/app', 'v2s2', dockerManifest)
      expect(img.digest).toBe(want.digest)
      expect(img.manifestMediaType).toBe(dockerManifest)
      expect(img.config.mediaType).toBe('application/vnd.docker.container.image.v1+json')
      expect(img.layers.map((l) => l.mediaType)).toEqual(
        Array(2).fill('application/vnd.docker.image.rootfs.diff.tar.gzip'),
      )
      expect(img.layers.map((l) => l.compression)).toEqual(['gzip', 'gzip'])
      expect(img.names).toEqual([`${reg.host}/test/app:v2s2`])
      expect(img.repoDigests).toEqual([`${reg.host}/test/app@${want.digest}`])
      expect(img.id).toBe(built.v2!.config)
      checkBlobsOnDisk(store, img)
      expect(blobFiles(store)).toEqual(hexes(img).sort())
      expect(readdirSync(join(store, 'tmp'))).toEqual([])
      // Progress: per layer resolved, downloading (bytes up to the total), verified, complete.
      const big = img.layers[0]!
      const of = events.filter((e) => e.type === 'layer' && e.digest === big.digest) as Extract<
        PullEvent,
        { type: 'layer' }
      >[]
      expect(of.map((e) => e.status).filter((s, i, a) => s !== a[i - 1])).toEqual([
        'resolved',
        'downloading',
        'verified',
        'complete',
      ])
      const dl = of.filter((e) => e.status === 'downloading')
      expect(dl.at(-1)!.bytes).toBe(big.size)
      expect(dl.every((e) => e.total === big.size && e.bytes <= e.total && e.elapsedMs >= 0)).toBe(true)
      expect(events[0]!.type).toBe('resolving')
      expect(events.at(-1)!.type).toBe('complete')
      expect((await im.list()).map((i) => i.digest)).toEqual([img.digest])
      const inspected = await im.inspect(`${reg.host}/test/app:v2s2`)
      expect(inspected.imageConfig.config?.Cmd).toEqual(['/bin/sh'])
      expect(inspected.imageConfig.rootfs.diff_ids).toEqual(img.layers.map((l) => l.diffId))
    },
  )

  itReg('an OCI image keeps its OCI media types and the digest the registry serves', async () => {
    const store = newStore()
    const img = await openImages({ store }).pull(`${reg.host}/test/app:oci`)
    const want = await registryManifest('test/app', 'oci', ociManifest)
    expect(img.digest).toBe(want.digest)
    expect(img.manifestMediaType).toBe(ociManifest)
    expect(img.config.mediaType).toBe('application/vnd.oci.image.config.v1+json')
    expect(img.layers.map((l) => l.mediaType)).toEqual(Array(2).fill('application/vnd.oci.image.layer.v1.tar+gzip'))
    expect(img.layers.map((l) => l.digest)).toEqual(built.v2!.layers)
    checkBlobsOnDisk(store, img)
  })

  itReg('zstd layers are recorded as zstd for the unpacker, and zstd itself finds them whole', async () => {
    const store = newStore()
    const img = await openImages({ store }).pull(`${reg.host}/test/app:zstd`)
    expect(img.layers.map((l) => [l.mediaType, l.compression])).toEqual(
      Array(2).fill(['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd']),
    )
    expect(img.id).toBe(built.v2!.config)
    checkBlobsOnDisk(store, img)
    for (const l of img.layers) run('zstd', ['-t', '-q', join(store, 'blobs', 'sha256', l.digest.slice(7))])
  })

  itReg(
    'a multi-arch index: the host platform and an asked one pick their manifest; an absent one is a clear error storing nothing',
    async () => {
      const store = newStore()
      const im = openImages({ store })
      const amd = await registryManifest('test/multi', 'amd64', ociManifest)
      const arm = await registryManifest('test/multi', 'arm64', ociManifest)
      const index = await registryManifest('test/multi', 'latest', ociIndex)
      const a = await im.pull(`${reg.host}/test/multi:latest`, { platform: 'linux/arm64/v8' })
      expect(a.digest).toBe(arm.digest)
      expect(a.platform).toEqual({ os: 'linux', architecture: 'arm64' })
      expect(a.indexDigest).toBe(index.digest)
      expect(a.repoDigests).toContain(`${reg.host}/test/multi@${index.digest}`)
      checkBlobsOnDisk(store, a)
      const host = hostPlatform()
      if (host.architecture === 'amd64' || host.architecture === 'arm64') {
        const h = await openImages({ store: newStore() }).pull(`${reg.host}/test/multi:latest`)
        expect(h.digest).toBe(host.architecture === 'amd64' ? amd.digest : arm.digest)
      } else {
        console.warn(`SKIP the default-platform half: this host is ${host.architecture}`)
      }
      const empty = newStore()
      const e = await errorOf(
        openImages({ store: empty }).pull(`${reg.host}/test/multi:latest`, { platform: 'linux/s390x' }),
      )
      expect(e.code).toBe('NO_MATCHING_PLATFORM')
      expect(e.message).toContain(`${reg.host}/test/multi:latest`)
      expect(e.message).toContain('linux/s390x')
      expect(e.message).toContain('linux/amd64, linux/arm64')
      expect(blobFiles(empty)).toEqual([])
      // A single-platform image asked for another platform says so too.
      const single = await errorOf(
        openImages({ store: empty }).pull(`${reg.host}/test/app:oci`, { platform: 'linux/arm64' }),
      )
      expect(single.code).toBe('NO_MATCHING_PLATFORM')
      expect((await openImages({ store: empty }).list()).length).toBe(0)
    },
  )

  itReg('two images sharing a base layer store it once', async () => {
    const store = newStore()
    const im = openImages({ store })
    const base = await im.pull(`${reg.host}/test/base:v1`)
    const app = await im.pull(`${reg.host}/test/app:oci`)
    expect(app.layers[0]!.digest).toBe(base.layers[0]!.digest)
    const union = new Set([...hexes(base), ...hexes(app)])
    expect(blobFiles(store)).toEqual([...union].sort())
    expect(blobFiles(store).filter((f) => f === base.layers[0]!.digest.slice(7))).toHaveLength(1)
  })

  itReg(
    'unknown tag, unknown repository, an unreachable registry and a bad reference: one message each, with a code',
    async () => {
      const im = openImages({ store: newStore(), retries: 1, retryDelayMs: 10 })
      const tag = await errorOf(im.pull(`${reg.host}/test/app:nope`))
      expect([tag.code, tag.message]).toEqual([
        'MANIFEST_UNKNOWN',
        expect.stringContaining(`${reg.host}/test/app:nope: tag nope not found`),
      ])
      // docker-registry 2.8 answers MANIFEST_UNKNOWN for a repository it lacks; others NAME_UNKNOWN.
      const repo = await errorOf(im.pull(`${reg.host}/test/none:1`))
      expect(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']).toContain(repo.code)
      expect(repo.message).toContain(`${reg.host}/test/none:1`)
      const port = await freePort()
      const down = await errorOf(im.pull(`127.0.0.1:${port}/x:1`))
      expect(down.code).toBe('REGISTRY_UNREACHABLE')
      expect(down.message).toContain(`127.0.0.1:${port}/x:1`)
      expect(down.message).toContain('ECONNREFUSED')
      const bad = await errorOf(im.pull('Bad/Name'))
      expect([bad.code, bad.message]).toEqual(['EINVAL', expect.stringContaining('"Bad/Name"')])
      const local = await errorOf(im.inspect('nothing:here'))
      expect([local.code, local.message]).toEqual([
        'IMAGE_NOT_FOUND',
        expect.stringContaining('no such image: nothing:here'),
      ])
    },
  )
})

describe('integrity and resumption through a proxy on 127.0.0.1', () => {
  itReg(
    'a blob with one byte flipped is refused, naming its digest, and nothing half-written is left or recorded',
    async () => {
      const big = built.v2!.layers[0]!
      const proxy = await startProxy(reg.url, {
        rewrite: (req, body) => {
          if (req.url?.endsWith(`/blobs/${big}`) && body.length > 1000) body[500] = body[500]! ^ 0xff
          return body
        },
      })
      try {
        const store = newStore()
        const im = openImages({ store })
        const e = await errorOf(im.pull(`${proxy.host}/test/app:oci`))
        expect(e.code).toBe('DIGEST_MISMATCH')
        expect(e.message).toContain(big)
        expect(blobFiles(store)).not.toContain(big.slice(7))
        expect(readdirSync(join(store, 'tmp'))).toEqual([])
        expect(await im.list()).toEqual([])
        await im.prune()
        expect(blobFiles(store)).toEqual([])
      } finally {
        await proxy.close()
      }
    },
  )

  itReg('a download cut mid-blob is resumed with Range from where it broke, and the blob verifies', async () => {
    const big = built.v2!.layers[0]!
    let cuts = 0
    const proxy = await startProxy(reg.url, {
      cutAfter: (req) =>
        req.url?.endsWith(`/blobs/${big}`) && !req.headers.range && cuts++ === 0 ? 300_000 : undefined,
    })
    try {
      const store = newStore()
      const events: PullEvent[] = []
      const img = await openImages({ store, retryDelayMs: 10 }).pull(`${proxy.host}/test/app:oci`, {
        onProgress: (e) => events.push(e),
      })
      const gets = proxy.requests.filter((r) => r.url.endsWith(`/blobs/${big}`))
      expect(gets).toHaveLength(2)
      expect(gets[0]!.headers.range).toBeUndefined()
      const m = /^bytes=(\d+)-$/.exec(String(gets[1]!.headers.range))
      expect(m).not.toBeNull()
      expect(Number(m![1])).toBeGreaterThan(0)
      expect(Number(m![1])).toBeLessThanOrEqual(300_000)
      const retry = events.find((e) => e.type === 'layer' && e.status === 'retrying')
      expect(retry).toMatchObject({ digest: big, attempt: 1 })
      checkBlobsOnDisk(store, img)
    } finally {
      await proxy.close()
    }
  })

  itReg('layers download side by side; an abort mid-blob stops the pull, keeping nothing half-written', async () => {
    const big = built.v2!.layers[0]!
    const small = built.v2!.layers[1]!
    const proxy = await startProxy(reg.url, {
      intercept: async (req, res) => {
        if (!req.url?.endsWith(`/blobs/${big}`)) return false
        // The big layer sends a little, then nothing more: the pull is aborted while it waits.
        const r = await fetch(`${reg.url}${req.url}`)
        const body = Buffer.from(await r.arrayBuffer())
        res.writeHead(200, { 'Content-Length': String(body.length) })
        res.write(body.subarray(0, 10_000))
        return true
      },
    })
    try {
      const store = newStore()
      const ac = new AbortController()
      let smallDone = false
      let bigStarted = false
      const e = await errorOf(
        openImages({ store }).pull(`${proxy.host}/test/app:oci`, {
          signal: ac.signal,
          concurrency: 2,
          onProgress: (ev) => {
            if (ev.type !== 'layer') return
            if (ev.digest === small && ev.status === 'complete') smallDone = true
            if (ev.digest === big && ev.status === 'downloading' && ev.bytes > 0) bigStarted = true
            if (smallDone && bigStarted) ac.abort(new Error('stop'))
          },
        }),
      )
      expect(e.code).toBe('ABORTED')
      expect(e.message).toContain(`${proxy.host}/test/app:oci`)
      expect(smallDone && bigStarted).toBe(true)
      expect(blobFiles(store)).not.toContain(big.slice(7))
      expect(readdirSync(join(store, 'tmp'))).toEqual([])
      expect(await openImages({ store }).list()).toEqual([])
    } finally {
      await proxy.close()
    }
  })

  itReg('a body that stalls past timeoutMs is given up and resumed with Range', async () => {
    const big = built.v2!.layers[0]!
    let first = true
    const proxy = await startProxy(reg.url, {
      intercept: async (req, res) => {
        if (!req.url?.endsWith(`/blobs/${big}`) || !first) return false
        first = false
        const r = await fetch(`${reg.url}${req.url}`)
        const body = Buffer.from(await r.arrayBuffer())
        res.writeHead(200, { 'Content-Length': String(body.length) })
        res.write(body.subarray(0, 200_000))
        return true
      },
    })
    try {
      const store = newStore()
      const img = await openImages({ store, timeoutMs: 300, retryDelayMs: 10 }).pull(`${proxy.host}/test/app:oci`)
      const gets = proxy.requests.filter((r) => r.url.endsWith(`/blobs/${big}`))
      expect(gets.map((g) => g.headers.range)).toEqual([undefined, expect.stringMatching(/^bytes=\d+-$/)])
      expect(Number(/\d+/.exec(String(gets[1]!.headers.range))![0])).toBeGreaterThan(0)
      checkBlobsOnDisk(store, img)
    } finally {
      await proxy.close()
    }
  })

  itReg('two pulls of one image at once both succeed and fetch each blob once (a lock per digest)', async () => {
    const proxy = await startProxy(reg.url)
    try {
      const store = newStore()
      const [a, b] = await Promise.all([
        openImages({ store }).pull(`${proxy.host}/test/app:oci`),
        openImages({ store }).pull(`${proxy.host}/test/app:oci`),
      ])
      expect(a.digest).toBe(b.digest)
      for (const l of a.layers) {
        expect(proxy.requests.filter((r) => r.method === 'GET' && r.url.endsWith(`/blobs/${l.digest}`))).toHaveLength(1)
      }
      expect(blobFiles(store)).toEqual(hexes(a).sort())
      expect(await openImages({ store }).list()).toHaveLength(1)
      expect(readdirSync(join(store, 'locks')).filter((f) => !f.startsWith('.'))).toEqual([])
    } finally {
      await proxy.close()
    }
  })

  itReg('a pull in another process at the same time: one record, one copy of each blob', async () => {
    const store = newStore()
    const script = `import { openImages } from '@ns/core'
const img = await openImages({ store: process.argv[1] }).pull(process.argv[2])
console.log(img.digest)`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, store, `${reg.host}/test/app:v2s2`], {
      cwd: join(repoRoot, 'test'),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const exited = new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)))
    const mine = await openImages({ store }).pull(`${reg.host}/test/app:v2s2`)
    expect(await exited, err).toBe(0)
    expect(out.trim()).toBe(mine.digest)
    expect(blobFiles(store)).toEqual(hexes(mine).sort())
    expect(await openImages({ store }).list()).toHaveLength(1)
  })

  itReg('schema 1 from a registry is refused with a message naming the reference', async () => {
    const proxy = await startProxy(reg.url, {
      intercept: (req: IncomingMessage, res: ServerResponse) => {
        if (!req.url?.includes('/manifests/')) return false
        res.writeHead(200, { 'Content-Type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' })
        res.end(JSON.stringify({ schemaVersion: 1, name: 'test/app', tag: 'old', fsLayers: [], history: [] }))
        return true
      },
    })
    try {
      const e = await errorOf(openImages({ store: newStore() }).pull(`${proxy.host}/test/app:old`))
      expect(e.code).toBe('UNSUPPORTED_MEDIA_TYPE')
      expect(e.message).toContain(`${proxy.host}/test/app:old`)
      expect(e.message).toContain('schema 1')
    } finally {
      await proxy.close()
    }
  })
})

describe('authentication', () => {
  /** A token server on 127.0.0.1: Basic credentials in, a token for the asked scope out. */
  async function tokenServer() {
    const issued = new Map<string, string>()
    const asked: URLSearchParams[] = []
    const server = createServer((req, res) => {
      const q = new URL(req.url ?? '/', 'http://x').searchParams
      asked.push(q)
      const want = `Basic ${Buffer.from(`${testUser.username}:${testUser.password}`).toString('base64')}`
      if (req.headers.authorization !== want) {
        res.writeHead(401).end()
        return
      }
      const token = randomBytes(12).toString('hex')
      issued.set(token, q.getAll('scope').join(' '))
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`
    return { url, issued, asked, close: () => new Promise((r) => server.close(r)) }
  }

  function authFile(creds = testUser, host: string) {
    const f = join(work, `auth-${randomBytes(4).toString('hex')}.json`)
    writeFileSync(
      f,
      JSON.stringify({
        auths: { [host]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } },
      }),
    )
    return f
  }

  itReg(
    'Bearer: the challenge sends ns to the token server with the scope; blobs redirected to storage get no Authorization',
    async () => {
      const tokens = await tokenServer()
      // Blob storage on another origin, serving what the registry holds.
      const storageSeen: (string | undefined)[] = []
      const storage = createServer(async (req, res) => {
        storageSeen.push(req.headers.authorization)
        const r = await fetch(`${reg.url}${req.url}`, {
          headers: req.headers.range ? { Range: String(req.headers.range) } : {},
        })
        res.writeHead(r.status, { 'Content-Length': r.headers.get('content-length') ?? undefined })
        res.end(Buffer.from(await r.arrayBuffer()))
      })
      await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r))
      const storageUrl = `http://127.0.0.1:${(storage.address() as AddressInfo).port}`
      const proxy = await startProxy(reg.url, {
        intercept: (req, res) => {
          const m = /^Bearer (\w+)$/.exec(req.headers.authorization ?? '')
          const scope = m ? tokens.issued.get(m[1]!) : undefined
          if (!scope?.split(' ').includes('repository:test/app:pull')) {
            res.writeHead(401, {
              'WWW-Authenticate': `Bearer realm="${tokens.url}",service="ns-test",scope="repository:test/app:pull"`,
              'Content-Type': 'application/json',
            })
            res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }))
            return true
          }
          if (req.url?.includes('/blobs/')) {
            res.writeHead(307, { Location: `${storageUrl}${req.url}` }).end()
            return true
          }
          return false
        },
      })
      try {
        const anon = await errorOf(openImages({ store: newStore() }).pull(`${proxy.host}/test/app:oci`))
        expect(anon.code).toBe('UNAUTHORIZED')
        expect(anon.message).toContain(`${proxy.host}/test/app:oci`)
        const store = newStore()
        const img = await openImages({ store, authFile: authFile(testUser, proxy.host) }).pull(
          `${proxy.host}/test/app:oci`,
        )
        checkBlobsOnDisk(store, img)
        const ok = tokens.asked.at(-1)!
        expect(ok.get('service')).toBe('ns-test')
        expect(ok.getAll('scope')).toEqual(['repository:test/app:pull'])
        expect(storageSeen.length).toBeGreaterThanOrEqual(3)
        expect(storageSeen.every((a) => a === undefined)).toBe(true)
        expect(
          proxy.requests.some(
            (r) => r.url.includes('/blobs/') && String(r.headers.authorization).startsWith('Bearer '),
          ),
        ).toBe(true)
      } finally {
        await proxy.close()
        await tokens.close()
        await new Promise((r) => storage.close(r))
      }
    },
  )

  itReg(
    'htpasswd Basic: refused without a login, pulled with one from the auth file; login checks the password first',
    async () => {
      const secured = await startRegistry({ htpasswd: true })
      try {
        skopeo(
          'copy',
          '--dest-tls-verify=false',
          '--dest-creds',
          `${testUser.username}:${testUser.password}`,
          `oci:${layout}:base`,
          `docker://${secured.host}/test/base:v1`,
        )
        const ref = `${secured.host}/test/base:v1`
        const file = join(work, `login-${randomBytes(4).toString('hex')}`, 'auth.json')
        const e = await errorOf(openImages({ store: newStore(), authFile: file }).pull(ref))
        expect(e.code).toBe('UNAUTHORIZED')
        expect(e.message).toContain(ref)
        const im = openImages({ store: newStore(), authFile: file })
        const wrong = await errorOf(im.login(secured.host, { username: testUser.username, password: 'wrong' }))
        expect(wrong.code).toBe('UNAUTHORIZED')
        expect(existsSync(file)).toBe(false)
        expect(await im.login(secured.host, testUser)).toBe(file)
        expect(statSync(file).mode & 0o777).toBe(0o600)
        const img = await im.pull(ref)
        expect(img.layers.map((l) => l.digest)).toEqual(built.base!.layers)
        expect(await im.logout(secured.host)).toBe(true)
        expect((await errorOf(openImages({ store: newStore(), authFile: file }).pull(ref))).code).toBe('UNAUTHORIZED')
      } finally {
        await secured.stop()
      }
    },
  )
})

describe('the store', () => {
  itReg('remove keeps the blobs another image uses; prune leaves no blob that no image uses', async () => {
    const store = newStore()
    const im = openImages({ store })
    const base = await im.pull(`${reg.host}/test/base:v1`)
    const app = await im.pull(`${reg.host}/test/app:oci`)
    await im.tag(`${reg.host}/test/app:oci`, 'localhost/mine:1')
    // Removing one of two names only untags.
    const r1 = await im.remove('localhost/mine:1')
    expect(r1).toMatchObject({ untagged: ['localhost/mine:1'], deleted: [] })
    expect(blobFiles(store)).toEqual([...new Set([...hexes(base), ...hexes(app)])].sort())
    // By id with two names it asks for force.
    await im.tag(app.id, 'localhost/mine:2')
    expect((await errorOf(im.remove(app.id.slice(7, 19)))).code).toBe('IMAGE_IN_USE')
    const r2 = await im.remove(app.id.slice(7, 19), { force: true })
    expect(r2.deleted).toEqual([app.digest])
    expect(r2.untagged.sort()).toEqual([`${reg.host}/test/app:oci`, 'localhost/mine:2'])
    expect(blobFiles(store)).toEqual(hexes(base).sort())
    expect(existsSync(join(store, 'blobs', 'sha256', base.layers[0]!.digest.slice(7)))).toBe(true)
    // An image whose name moved is dangling: prune removes it and every blob only it used.
    const zstd = await im.pull(`${reg.host}/test/app:zstd`)
    await im.tag(base.id, `${reg.host}/test/app:zstd`)
    const p = await im.prune()
    expect(p.deleted).toEqual([zstd.digest])
    const left = await im.list()
    expect(left.map((i) => i.digest)).toEqual([base.digest])
    expect(blobFiles(store)).toEqual(hexes(base).sort())
    await im.remove(`${reg.host}/test/base:v1`)
    await im.remove(`${reg.host}/test/app:zstd`)
    expect(await im.list()).toEqual([])
    expect(blobFiles(store)).toEqual([])
  })

  itReg('a lock whose holder was killed is broken by the next taker; while the holder lives it waits', async () => {
    const store = newStore()
    await openImages({ store }).pull(`${reg.host}/test/base:v1`)
    const lockFile = join(store, 'locks', 'store.lock')
    const script = `import { acquireLock } from '@ns/core'
await acquireLock(process.argv[1]); await acquireLock(process.argv[2]); console.log('held'); setInterval(() => {}, 1000)`
    const blobLock = join(store, 'locks', `blob-${'e'.repeat(64)}.lock`)
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, lockFile, blobLock], {
      cwd: join(repoRoot, 'test'),
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (d: Buffer) => d.toString().includes('held') && resolve()),
    )
    const holder = JSON.parse(readFileSync(lockFile, 'utf8')) as { pid: number }
    expect(holder.pid).toBe(child.pid)
    const st = new ImageStore(store)
    const waited = await errorOf(st.withStoreLock(async () => 'got it', { signal: AbortSignal.timeout(300) }))
    expect(waited.code).toBe('ABORTED')
    child.kill('SIGKILL')
    await new Promise((r) => child.on('exit', r))
    expect(await st.withStoreLock(async () => 'got it', { signal: AbortSignal.timeout(5000) })).toBe('got it')
    expect(existsSync(lockFile)).toBe(false)
    // prune sweeps the other locks the dead process left.
    expect(existsSync(blobLock)).toBe(true)
    await openImages({ store }).prune()
    expect(existsSync(blobLock)).toBe(false)
  })

  const rootlessReason = isRoot ? 'root: the default store is /var/lib/ns, which a test must not fill' : undefined
  itWhen(registrySkipReason ?? rootlessReason)(
    'rootless: the default store is $XDG_DATA_HOME/ns, owned by the user, and a pull lands there',
    async () => {
      const saved = process.env.XDG_DATA_HOME
      process.env.XDG_DATA_HOME = join(work, 'xdg-data')
      try {
        expect(defaultStore()).toBe(join(work, 'xdg-data', 'ns'))
        const im = openImages()
        expect(im.store).toBe(join(work, 'xdg-data', 'ns'))
        const img = await im.pull(`${reg.host}/test/base:v1`)
        checkBlobsOnDisk(im.store, img)
        expect(statSync(im.store).uid).toBe(process.getuid!())
        expect(statSync(im.store).mode & 0o777).toBe(0o700)
      } finally {
        if (saved === undefined) delete process.env.XDG_DATA_HOME
        else process.env.XDG_DATA_HOME = saved
      }
    },
  )

  itWhen(registrySkipReason ?? (isRoot ? undefined : 'needs root'))('root: the default store is /var/lib/ns', () => {
    expect(defaultStore()).toBe('/var/lib/ns')
  })

  itWhen(registrySkipReason ?? usernsSkipReason)(
    'a full disk is ENOSPC naming the reference and the store, and leaves no partial blob',
    async () => {
      // A 256 KiB tmpfs as the store, in a mount namespace of a child of its own (nothing leaks).
      const dir = join(work, `full-${randomBytes(4).toString('hex')}`)
      mkdirSync(dir)
      const script = `import { openImages } from '@ns/core'
import { readdirSync } from 'node:fs'
const store = process.argv[1]
try { await openImages({ store }).pull(process.argv[2]); console.log(JSON.stringify({ ok: true })) }
catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, blobs: readdirSync(store + '/blobs/sha256'), tmp: readdirSync(store + '/tmp') })) }`
      const unshare = isRoot ? ['-m', '--propagation', 'private'] : ['-Urm']
      const r = spawnSync(
        'unshare',
        [
          ...unshare,
          'sh',
          '-c',
          'mount -t tmpfs -o size=256k tmpfs "$1" && exec "$2" --input-type=module -e "$3" "$1" "$4"',
          'sh',
          dir,
          process.execPath,
          script,
          `${reg.host}/test/app:oci`,
        ],
        { encoding: 'utf8', cwd: join(repoRoot, 'test') },
      )
      expect(r.status, r.stderr).toBe(0)
      const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
        code: string
        message: string
        blobs: string[]
        tmp: string[]
      }
      expect(out.code).toBe('ENOSPC')
      expect(out.message).toContain(`${reg.host}/test/app:oci`)
      expect(out.message).toContain(dir)
      expect(out.blobs).not.toContain(built.v2!.layers[0]!.slice(7))
      expect(out.tmp).toEqual([])
      expect(readdirSync(dir)).toEqual([])
    },
  )

  itReg('unpacking goes through unpackLayer per layer, bottom up, once, checked against the diff ids', async () => {
    const store = newStore()
    const img = await openImages({ store }).pull(`${reg.host}/test/app:zstd`)
    const st = new ImageStore(store)
    const calls: { mediaType: string; diffId: string; blob: string }[] = []
    const dirs = await unpackImage(st, img, {
      unpacker: async (req) => {
        calls.push({ mediaType: req.mediaType, diffId: req.diffId, blob: req.blob })
        mkdirSync(join(req.dest, 'diff'), { recursive: true })
        writeFileSync(join(req.dest, 'layer.json'), '{}')
        writeFileSync(join(req.dest, 'marker'), req.diffId)
        return { diffId: req.diffId, size: 1 }
      },
    })
    expect(calls.map((c) => c.diffId)).toEqual(img.layers.map((l) => l.diffId))
    expect(calls.every((c) => c.mediaType.endsWith('+zstd'))).toBe(true)
    expect(dirs).toEqual(img.layers.map((l) => join(store, 'layers', 'sha256', l.diffId.slice(7), 'diff')))
    expect(readFileSync(join(dirs[1]!, '..', 'marker'), 'utf8')).toBe(img.layers[1]!.diffId)
    await unpackImage(st, img, { unpacker: async () => Promise.reject(new Error('must not be called again')) })
    // The same layers compressed otherwise share the unpacked directories (keyed by diff id).
    const gz = await openImages({ store }).pull(`${reg.host}/test/app:oci`)
    expect(await unpackImage(st, gz, { unpacker: async () => Promise.reject(new Error('shared')) })).toEqual(dirs)
    // An unpacker that finds another diff id is refused.
    const other = newStore()
    const base = await openImages({ store: other }).pull(`${reg.host}/test/base:v1`)
    const e = await errorOf(
      unpackImage(new ImageStore(other), base, {
        unpacker: async () => ({ diffId: `sha256:${'0'.repeat(64)}`, size: 0 }),
      }),
    )
    expect(e.code).toBe('DIGEST_MISMATCH')
    expect(e.message).toContain(base.layers[0]!.diffId)
    expect(readdirSync(join(other, 'layers', 'sha256'))).toEqual([])
    // The default is the native unpacker: the layer's files, checked against its diff id.
    const [root] = await unpackImage(new ImageStore(other), base)
    expect(readFileSync(join(root!, 'etc', 'passwd'), 'utf8')).toBe(
      readFileSync(join(fixtureRootfs, 'etc', 'passwd'), 'utf8'),
    )
    expect(readdirSync(join(other, 'layers', 'sha256'))).toEqual([base.layers[0]!.diffId.slice(7)])
    // prune drops unpacked layers no image uses.
    await openImages({ store }).remove(`${reg.host}/test/app:oci`)
    await openImages({ store }).remove(`${reg.host}/test/app:zstd`)
    await openImages({ store }).prune()
    expect(readdirSync(join(store, 'layers', 'sha256'))).toEqual([])
    await openImages({ store: other }).remove(`${reg.host}/test/base:v1`)
    await openImages({ store: other }).prune()
    expect(readdirSync(join(other, 'layers', 'sha256'))).toEqual([])
  })
})

describe('archives and layouts', () => {
  itReg("a skopeo docker-archive loads with its tag; layers uncompressed, each one's digest its diff id", async () => {
    const store = newStore()
    const [img] = await openImages({ store }).load(join(work, 'app.docker.tar'))
    expect(img!.names).toEqual(['docker.io/test/app:v2'])
    expect(img!.id).toBe(built.v2!.config)
    expect(img!.layers.map((l) => l.compression)).toEqual(['none', 'none'])
    expect(img!.layers.map((l) => l.digest)).toEqual(img!.layers.map((l) => l.diffId))
    checkBlobsOnDisk(store, img!)
    const again = await openImages({ store: newStore() }).pull(
      `docker-archive:${join(work, 'app.docker.tar')}:test/app:v2`,
    )
    expect(again.id).toBe(img!.id)
  })

  itReg('a skopeo oci-archive and an umoci layout load with their digests unchanged', async () => {
    const a = await openImages({ store: newStore() }).pull(`oci-archive:${join(work, 'app.oci.tar')}:v2`)
    expect(a.id).toBe(built.v2!.config)
    expect(a.layers.map((l) => l.digest)).toEqual(built.v2!.layers)
    const store = newStore()
    const b = await openImages({ store }).pull(`oci:${layout}:v2`)
    expect(b.digest).toBe(built.v2!.manifest)
    expect(b.names).toEqual(['localhost/layout:v2'])
    checkBlobsOnDisk(store, b)
    const all = await openImages({ store: newStore() }).load(layout)
    expect(all.map((i) => i.digest).sort()).toEqual(
      Object.values(built)
        .map((x) => x.manifest)
        .sort(),
    )
  })

  itReg(
    'save as oci-archive, docker-archive and oci-dir: skopeo reads each, and loading it back gives the same image',
    async () => {
      const store = newStore()
      const im = openImages({ store })
      const img = await im.pull(`${reg.host}/test/app:zstd`)
      const ref = `${reg.host}/test/app:zstd`
      const ociTar = join(work, 'saved.oci.tar')
      await im.save(ref, ociTar)
      const raw = skopeo('inspect', '--raw', `oci-archive:${ociTar}:${ref}`)
      expect(`sha256:${run('sh', ['-c', 'printf %s "$1" | sha256sum', 'sh', raw]).split(' ')[0]}`).toBe(img.digest)
      const back = await openImages({ store: newStore() }).load(ociTar)
      expect(back.map((i) => [i.digest, i.names])).toEqual([[img.digest, [ref]]])

      const dockerTar = join(work, 'saved.docker.tar')
      await im.save(ref, dockerTar, 'docker-archive')
      const viaSkopeo = join(work, 'from-docker-archive')
      skopeo('copy', `docker-archive:${dockerTar}`, `oci:${viaSkopeo}:x`)
      const cfg = JSON.parse(skopeo('inspect', '--config', '--raw', `oci:${viaSkopeo}:x`)) as {
        rootfs: { diff_ids: string[] }
      }
      expect(cfg.rootfs.diff_ids).toEqual(img.layers.map((l) => l.diffId))
      const dback = await openImages({ store: newStore() }).pull(`docker-archive:${dockerTar}`)
      expect([dback.id, dback.names]).toEqual([img.id, [ref]])

      const dir = join(work, 'saved-layout')
      await im.save(ref, `oci:${dir}:zstd`)
      expect(JSON.parse(skopeo('inspect', '--raw', `oci:${dir}:zstd`)).layers).toHaveLength(2)
      const lback = await openImages({ store: newStore() }).pull(`oci:${dir}:zstd`)
      expect(lback.digest).toBe(img.digest)
      const e = await errorOf(im.save('no/such:image', join(work, 'x.tar')))
      expect(e.code).toBe('IMAGE_NOT_FOUND')
      expect(existsSync(join(work, 'x.tar'))).toBe(false)
    },
  )

  itReg('a damaged archive is refused naming the blob, and leaves nothing in the store', async () => {
    const src = join(work, 'app.oci.tar')
    const bytes = readFileSync(src)
    // Flip a byte deep inside the big layer's data (past the first entries' headers).
    const damaged = Buffer.from(bytes)
    const at = Math.floor(damaged.length / 2)
    damaged[at] = damaged[at]! ^ 0xff
    const file = join(work, 'damaged.oci.tar')
    writeFileSync(file, damaged)
    const store = newStore()
    const e = await errorOf(openImages({ store }).load(file))
    expect(['DIGEST_MISMATCH', 'INVALID_ARCHIVE']).toContain(e.code)
    expect(e.message).toMatch(/sha256:[a-f0-9]{64}|tar/)
    await openImages({ store }).prune()
    expect(blobFiles(store)).toEqual([])
    expect(readdirSync(join(store, 'tmp'))).toEqual([])
  })
})
