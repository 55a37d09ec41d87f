// Layer blobs made with the host's tar (gzip and zstd), unpacked through the addon's
// unpackLayer, and what lands on disk compared with what went in; the errors a caller gets
// (a wrong digest, a bad option, an entry that escapes) as JS errors with a code and a step.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  linkSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'

import { afterAll, describe, expect, it } from 'vitest'

import native from '@ns/native'

import { isRoot } from './helpers.js'

const work = mkdtempSync(join(tmpdir(), 'ns-image-unpack-'))
afterAll(async () => {
  // A rootless layer holds files of subordinate ids: removeLayer goes through its namespace.
  for (const d of readdirSync(work)) {
    if (d.startsWith('layer') && lstatSync(join(work, d)).isDirectory())
      await native.removeLayer({ path: join(work, d) })
  }
  rmSync(work, { recursive: true, force: true })
})

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { cwd: work })

/** A source tree with the kinds of entries a layer has. */
function makeTree(dir: string) {
  mkdirSync(join(dir, 'etc'), { recursive: true })
  mkdirSync(join(dir, 'usr', 'bin'), { recursive: true })
  writeFileSync(join(dir, 'etc', 'os-release'), 'ID=hosttar\n')
  writeFileSync(join(dir, 'usr', 'bin', 'tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 })
  linkSync(join(dir, 'usr', 'bin', 'tool'), join(dir, 'usr', 'bin', 'tool-alias'))
  symlinkSync('../usr/bin/tool', join(dir, 'etc', 'tool-link'))
  writeFileSync(join(dir, 'etc', '.wh.motd'), '')
  // A sparse file: 64 MiB with 5 bytes of data at its end.
  sh(
    `truncate -s 64M ${join(dir, 'sparse')} && printf 'tail!' | dd of=${join(dir, 'sparse')} bs=1 seek=67108859 conv=notrunc 2>/dev/null`,
  )
  const long = 'n'.repeat(120)
  mkdirSync(join(dir, long))
  writeFileSync(join(dir, long, 'f'.repeat(200)), 'long')
}

describe('unpackLayer', () => {
  const src = join(work, 'src')
  makeTree(src)
  sh(
    `tar --sparse --numeric-owner -C src -cf layer.tar . && gzip -1 -c layer.tar > layer.tar.gz && zstd -q -3 -c layer.tar > layer.tar.zst`,
  )
  const tar = readFileSync(join(work, 'layer.tar'))

  for (const [kind, file, mediaType] of [
    ['tar+gzip', 'layer.tar.gz', 'application/vnd.oci.image.layer.v1.tar+gzip'],
    ['tar+zstd', 'layer.tar.zst', 'application/vnd.oci.image.layer.v1.tar+zstd'],
  ] as const) {
    it(`unpacks a ${kind} layer made by the host's tar, verified, with files, links, a sparse file and a whiteout`, async () => {
      const blob = join(work, file)
      const bytes = readFileSync(blob)
      expect(sha256(kind === 'tar+gzip' ? gunzipSync(bytes) : tar)).toBe(sha256(tar))
      const dest = join(work, `layer-${kind}`)
      const r = await native.unpackLayer({ blob, mediaType, dest, digest: sha256(bytes), diffId: sha256(tar) })
      expect(r).toMatchObject({
        digest: sha256(bytes),
        diffId: sha256(tar),
        size: tar.length,
        compression: kind,
        reused: false,
        rootless: !isRoot,
      })
      expect(r.root).toBe(join(dest, 'diff'))
      expect(r.files).toBeGreaterThanOrEqual(10)
      const root = r.root
      expect(readFileSync(join(root, 'etc', 'os-release'), 'utf8')).toBe('ID=hosttar\n')
      expect(lstatSync(join(root, 'usr', 'bin', 'tool')).mode & 0o7777).toBe(0o755)
      expect(lstatSync(join(root, 'usr', 'bin', 'tool-alias')).ino).toBe(
        lstatSync(join(root, 'usr', 'bin', 'tool')).ino,
      )
      expect(readlinkSync(join(root, 'etc', 'tool-link'))).toBe('../usr/bin/tool')
      const wh = lstatSync(join(root, 'etc', 'motd'))
      expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true)
      const sparse = lstatSync(join(root, 'sparse'))
      expect(sparse.size).toBe(64 * 1024 * 1024)
      expect(sparse.blocks * 512).toBeLessThan(1024 * 1024) // holes stay holes
      const fd = readFileSync(join(root, 'sparse'))
      expect(fd.subarray(-5).toString()).toBe('tail!')
      expect(readFileSync(join(root, 'n'.repeat(120), 'f'.repeat(200)), 'utf8')).toBe('long')
      expect(JSON.parse(readFileSync(join(dest, 'layer.json'), 'utf8'))).toMatchObject({ diffId: sha256(tar) })
      // Once unpacked, it is reused.
      const again = await native.unpackLayer({ blob, mediaType, dest, digest: sha256(bytes) })
      expect(again.reused).toBe(true)
    })
  }

  it('runs off the event loop: timers fire while a layer unpacks', async () => {
    sh(
      `mkdir -p big && for i in $(seq 1 16); do head -c 1048576 /dev/urandom > big/f$i; done && tar -C big -cf - . | gzip -1 > big.tar.gz`,
    )
    const blob = join(work, 'big.tar.gz')
    let ticks = 0
    const t = setInterval(() => ticks++, 1)
    const r = await native.unpackLayer({ blob, dest: join(work, 'layer-big'), digest: sha256(readFileSync(blob)) })
    clearInterval(t)
    expect(r.files).toBe(17)
    expect(ticks).toBeGreaterThan(0)
  })

  it('rejects a blob whose digest differs with EDIGEST naming both digests, leaving nothing', async () => {
    const blob = join(work, 'layer.tar.gz')
    const wrong = sha256(Buffer.from('another blob'))
    const dest = join(work, 'layer-wrong')
    const e = await native.unpackLayer({ blob, dest, digest: wrong }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(Error)
    expect(e).toMatchObject({
      code: 'EDIGEST',
      step: 'verify blob digest',
      expected: wrong,
      got: sha256(readFileSync(blob)),
    })
    expect((e as Error).message).toContain(wrong)
    expect(readdirSync(work).filter((n) => n.includes('layer-wrong'))).toEqual([])
  })

  it('rejects a bad option naming the field', async () => {
    const e = await native
      .unpackLayer({ blob: join(work, 'layer.tar.gz'), dest: join(work, 'layer-x'), digest: 'sha256:xyz' })
      .catch((x: unknown) => x)
    expect(e).toMatchObject({ code: 'EINVAL', path: 'digest' })
    expect((e as Error).message).toMatch(/^digest: /)
    const m = await native
      .unpackLayer({
        blob: join(work, 'layer.tar.gz'),
        dest: join(work, 'layer-x'),
        digest: sha256(tar),
        mediaType: 'application/vnd.oci.image.config.v1+json',
      })
      .catch((x: unknown) => x)
    expect(m).toMatchObject({ code: 'EINVAL', path: 'mediaType' })
  })

  it('refuses an entry written through a symlink that points out of the layer (EUNSAFE, by name)', async () => {
    // Two archives joined: the first has `x -> <outside>`, the second a file `x/evil`.
    const outside = join(work, 'outside')
    mkdirSync(outside)
    sh(
      `mkdir -p e1 e2/x && ln -s ${outside} e1/x && echo evil > e2/x/evil && tar -C e1 -cf esc.tar x && tar -C e2 -cf esc2.tar x/evil && tar -Af esc.tar esc2.tar`,
    )
    const blob = join(work, 'esc.tar')
    const e = await native
      .unpackLayer({ blob, dest: join(work, 'layer-esc'), digest: sha256(readFileSync(blob)) })
      .catch((x: unknown) => x)
    expect(e).toMatchObject({ code: 'EUNSAFE', step: 'extract entry', entry: 'x/evil' })
    expect(readdirSync(outside)).toEqual([])
    expect(readdirSync(work).filter((n) => n.includes('layer-esc'))).toEqual([])
  })

  it('removes a layer directory', async () => {
    const dest = join(work, 'layer-tar+gzip')
    await native.removeLayer({ path: dest })
    expect(() => lstatSync(dest)).toThrow()
  })
})

describe('overlay helpers', () => {
  it('probes overlayfs for this caller with a real mount', async () => {
    const p = await native.probeOverlay({ dir: work })
    expect(p).toMatchObject({ ok: true, userns: !isRoot })
  })

  it('builds mount options top layer first, and refuses what mount(2) cannot take', () => {
    expect(
      native.overlayMountOptions({ layers: ['/s/a/diff', '/s/b/diff'], upper: '/c/u', work: '/c/w', userxattr: true }),
    ).toBe('lowerdir=/s/b/diff:/s/a/diff,upperdir=/c/u,workdir=/c/w,userxattr')
    let e: unknown
    try {
      native.overlayMountOptions({
        layers: Array.from({ length: 100 }, (_, i) => `/var/lib/ns/layers/${'x'.repeat(60)}${i}/diff`),
      })
    } catch (x) {
      e = x
    }
    expect(e).toMatchObject({ code: 'EINVAL', path: 'layers' })
  })
})
