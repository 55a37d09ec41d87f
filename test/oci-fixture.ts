// Images made for the tests, byte by byte: layers written as tar streams here (any owner, OCI
// whiteouts and opaque markers, as a normal user too), the fixture rootfs tarred by the host's
// tar, and an OCI layout written around them (gzip layers, config, manifest, index.json), which
// skopeo then pushes to a test registry. Nothing of ns makes them.
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

import { fixtureRootfs } from './helpers.js'
import { run, skopeo } from './registry.js'

export interface TarEntry {
  name: string
  type?: 'file' | 'dir' | 'symlink' | 'chardev'
  mode?: number
  uid?: number
  gid?: number
  data?: string
  link?: string
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`
}

/** A tar stream (ustar) of these entries, in this order. */
export function tarOf(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = []
  for (const e of entries) {
    const type = e.type ?? (e.name.endsWith('/') ? 'dir' : 'file')
    const body = Buffer.from(type === 'file' ? (e.data ?? '') : '')
    const h = Buffer.alloc(512)
    let name = e.name
    let prefix = ''
    if (name.length > 99) {
      const cut = name.lastIndexOf('/', 154)
      prefix = name.slice(0, cut)
      name = name.slice(cut + 1)
    }
    h.write(name, 0, 100, 'utf8')
    h.write(octal(e.mode ?? (type === 'dir' ? 0o755 : 0o644), 8), 100, 'ascii')
    h.write(octal(e.uid ?? 0, 8), 108, 'ascii')
    h.write(octal(e.gid ?? 0, 8), 116, 'ascii')
    h.write(octal(body.length, 12), 124, 'ascii')
    h.write(octal(0, 12), 136, 'ascii')
    h.write('        ', 148, 'ascii')
    h.write({ file: '0', dir: '5', symlink: '2', chardev: '3' }[type], 156, 'ascii')
    if (e.link) h.write(e.link, 157, 100, 'utf8')
    h.write('ustar\u000000', 257, 'ascii')
    h.write(octal(0, 8), 329, 'ascii')
    h.write(octal(0, 8), 337, 'ascii')
    h.write(prefix, 345, 155, 'utf8')
    let sum = 0
    for (const b of h) sum += b
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii')
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512))
  }
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

/** The fixture rootfs as one layer, every entry root's (as the registry tests make it). */
export function fixtureTar(work: string): Buffer {
  const out = join(work, 'fixture.tar')
  run('tar', [
    '--numeric-owner',
    '--owner=0',
    '--group=0',
    '--sort=name',
    '--mtime=@0',
    '-C',
    fixtureRootfs,
    '-cf',
    out,
    '.',
  ])
  return readFileSync(out)
}

export interface TestImage {
  tag: string
  /** Uncompressed layers, base first. */
  layers: Buffer[]
  /** The image config's `config` (Entrypoint, Cmd, Env, User, ...). */
  config?: Record<string, unknown>
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** Writes an OCI layout at `dir` with these images, each under its tag. */
export function writeLayout(dir: string, images: TestImage[]): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true })
  const put = (b: Buffer) => {
    const d = sha(b)
    writeFileSync(join(dir, 'blobs', 'sha256', d.slice(7)), b)
    return { digest: d, size: b.length }
  }
  const manifests = images.map((img) => {
    const layers = img.layers.map((t) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      ...put(gzipSync(t)),
    }))
    const config = put(
      Buffer.from(
        JSON.stringify({
          created: '2024-01-01T00:00:00Z',
          architecture: 'amd64',
          os: 'linux',
          config: img.config ?? {},
          rootfs: { type: 'layers', diff_ids: img.layers.map(sha) },
          history: img.layers.map(() => ({ created_by: 'ns tests' })),
        }),
      ),
    )
    const manifest = put(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers,
        }),
      ),
    )
    return {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...manifest,
      annotations: { 'org.opencontainers.image.ref.name': img.tag },
    }
  })
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }))
}

/** Pushes `layout:tag` to `host/repo:tag` (a registry on loopback, plain HTTP). */
export function push(layout: string, tag: string, host: string, repo: string): string {
  const ref = `${host}/${repo}:${tag}`
  skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${ref}`)
  return ref
}
