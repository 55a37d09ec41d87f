// Images as containers' roots, end to end: images made byte by byte (oci-fixture.ts), pushed to
// a real registry on 127.0.0.1, pulled by @ns/core into a store of the test's own, and run in
// real namespaces; what the container sees is printed from inside and compared with what the
// image holds, and what is left of it on the host (its directory in the store, mounts) is
// looked at from outside. As root the container's ids are a leased range and the layers are
// idmapped; as a normal user (the suite runs as `nsci` too) the store is a rootless one.
import { spawnSync } from 'node:child_process'
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect } from 'vitest'

import native from '@ns/native'

import { create, get, openImages, reconcileContainers, run, ImageStore, type PullEvent } from '@ns/core'

import { hostMountinfo, isRoot, itWhen, repoRoot, usernsSkipReason } from './helpers.js'
import { fixtureTar, push, tarOf, writeLayout } from './oci-fixture.js'
import { registrySkipReason, startRegistry, type TestRegistry } from './registry.js'

const it = itWhen(usernsSkipReason ?? registrySkipReason)
const work = mkdtempSync(join(tmpdir(), 'ns-image-run-'))
const store = join(work, 'store')
const images = openImages({ store })
const stateRoot = join(work, 'state')
let reg: TestRegistry
const ref: Record<string, string> = {}

const passwd = [
  'root:x:0:0:root:/root:/bin/sh',
  'www-data:x:33:33:www-data:/var/www:/bin/sh',
  'app:x:1000:1000:app:/home/app:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  '',
].join('\n')
const group = ['root:x:0:', 'www-data:x:33:', 'staff:x:50:app,www-data', 'app:x:1000:', 'nogroup:x:65534:', ''].join(
  '\n',
)

beforeAll(async () => {
  if (usernsSkipReason ?? registrySkipReason) return
  reg = await startRegistry()
  const base = fixtureTar(work)
  const app = tarOf([
    { name: 'etc/', type: 'dir' },
    { name: 'etc/os-release', data: 'ID=nsimage\nNAME="an image of the ns tests"\n' },
    { name: 'etc/passwd', data: passwd },
    { name: 'etc/group', data: group },
    { name: 'srv/', type: 'dir' },
    { name: 'srv/www/', type: 'dir', uid: 33, gid: 33 },
    { name: 'srv/www/index.html', data: 'hello\n', uid: 33, gid: 33 },
    { name: 'srv/root-only', data: 'secret\n', mode: 0o600 },
    { name: 'data/', type: 'dir', uid: 33, gid: 33, mode: 0o750 },
    { name: 'home/', type: 'dir' },
    { name: 'home/app/', type: 'dir', uid: 1000, gid: 1000 },
  ])
  // Whiteouts: a file deleted, and a directory made opaque (its lower entries hidden).
  const l1 = tarOf([
    { name: 'w/', type: 'dir' },
    { name: 'w/gone.txt', data: 'gone\n' },
    { name: 'w/keep.txt', data: 'keep\n' },
    { name: 'o/', type: 'dir' },
    { name: 'o/old.txt', data: 'old\n' },
    { name: 'o/sub/', type: 'dir' },
    { name: 'o/sub/deep.txt', data: 'deep\n' },
  ])
  const l2 = tarOf([
    { name: 'w/', type: 'dir' },
    { name: 'w/.wh.gone.txt', data: '' },
    { name: 'o/', type: 'dir' },
    { name: 'o/.wh..wh..opq', data: '' },
    { name: 'o/new.txt', data: 'new\n' },
  ])
  const layout = join(work, 'layout')
  writeLayout(layout, [
    { tag: 'plain', layers: [base] },
    {
      tag: 'app',
      layers: [base, app],
      config: {
        Entrypoint: ['/bin/sh', '-c'],
        Cmd: ['echo default-cmd; id -u'],
        Env: ['IMG=from-image', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
        WorkingDir: '/srv',
        Labels: { 'org.example.k': 'v' },
        Volumes: { '/data': {} },
        ExposedPorts: { '80/tcp': {} },
      },
    },
    { tag: 'web', layers: [base, app], config: { User: 'www-data', Cmd: ['id'] } },
    { tag: 'wh', layers: [base, l1, l2], config: { Cmd: ['sh'] } },
    { tag: 'nocmd', layers: [base], config: { Env: ['NOCMD=1'] } },
  ])
  for (const tag of ['plain', 'app', 'web', 'wh', 'nocmd']) ref[tag] = push(layout, tag, reg.host, 'ns/test')
}, 120_000)

afterAll(async () => {
  await reg?.stop()
  // A rootless store holds files of subordinate ids: its layers go through their namespace.
  for (const d of existsSync(join(store, 'layers', 'sha256')) ? readdirSync(join(store, 'layers', 'sha256')) : [])
    await native.removeLayer({ path: join(store, 'layers', 'sha256', d) }).catch(() => {})
  await reconcileContainers(new ImageStore(store))
  rmSync(work, { recursive: true, force: true })
})

/** The store's container directories (the upper layers of containers that are not gone). */
const containerDirs = () => (existsSync(join(store, 'containers')) ? readdirSync(join(store, 'containers')) : [])

const sh = (image: string, script: string, more: Record<string, unknown> = {}) =>
  run({ image, images, entrypoint: ['sh', '-c'], command: [script], ...more })

describe('an image as the root filesystem', () => {
  it('the container sees the image: a file only the image has, and none of the host', async () => {
    const r = await sh(ref.app!, 'cat /etc/os-release; ls /usr/lib/os-release 2>&1; cat /srv/www/index.html')
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toContain('ID=nsimage')
    expect(r.stdout).toContain('/usr/lib/os-release: No such file or directory')
    expect(r.stdout).toContain('hello')
    expect(readFileSync('/etc/os-release', 'utf8')).not.toContain('nsimage')
  })

  it("the image's config is the spec: Entrypoint + Cmd, Env under env, WorkingDir, a command in place of Cmd", async () => {
    const d = await run({ image: ref.app!, images })
    expect(d.exitCode, d.stderr).toBe(0)
    expect(d.stdout).toBe('default-cmd\n0\n')
    // The command replaces Cmd and goes to the Entrypoint (sh -c).
    const c = await run({ image: ref.app!, images, command: ['echo $IMG $A $PATH; pwd'], env: { A: 'given' } })
    expect(c.stdout).toBe('from-image given /usr/sbin:/usr/bin:/sbin:/bin\n/srv\n')
    // -e over the image's Env; -w over its WorkingDir.
    const o = await run({ image: ref.app!, images, command: ['echo $IMG; pwd'], env: ['IMG=mine'], cwd: '/tmp' })
    expect(o.stdout).toBe('mine\n/tmp\n')
    // A new entrypoint drops the image's Cmd too (as docker does).
    const e = await run({ image: ref.app!, images, entrypoint: ['/bin/echo'], command: ['replaced'] })
    expect(e.stdout).toBe('replaced\n')
    const bare = await run({ image: ref.app!, images, entrypoint: ['/bin/echo'] })
    expect(bare.stdout).toBe('\n')
    // An image without Entrypoint and Cmd needs a command.
    await expect(run({ image: ref.nocmd!, images })).rejects.toMatchObject({
      code: 'EINVAL',
      field: 'command',
      message: expect.stringContaining('has neither Entrypoint nor Cmd'),
    })
  })

  it("a user by name, looked up in the image's /etc/passwd and /etc/group, with its groups and home", async () => {
    const web = await run({ image: ref.web!, images })
    expect(web.stdout).toBe('uid=33(www-data) gid=33(www-data) groups=33(www-data),50(staff)\n')
    const app = await run({ image: ref.app!, images, user: 'app:staff', command: ['id; echo $HOME'] })
    expect(app.stdout).toBe('uid=1000(app) gid=50(staff) groups=50(staff)\n/home/app\n')
    const root = await run({ image: ref.app!, images, command: ['id; echo $HOME'] })
    expect(root.stdout).toBe('uid=0(root) gid=0(root) groups=0(root)\n/root\n')
    const num = await run({ image: ref.app!, images, user: '33', command: ['id -u; id -g'] })
    expect(num.stdout).toBe('33\n33\n')
    await expect(run({ image: ref.app!, images, user: 'nosuch', command: ['id'] })).rejects.toMatchObject({
      code: 'EINVAL',
      field: 'user',
      message: expect.stringContaining('unable to find user nosuch'),
    })
  })

  it("owners are seen through the container's user namespace: the image's 33 is 33, its root is root, and root writes where it could", async () => {
    const r = await sh(
      ref.app!,
      [
        'stat -c "%u:%g %n" /srv/www/index.html /srv/root-only /etc/passwd',
        'cat /srv/root-only',
        'echo w > /srv/by-root && stat -c "%u:%g %n" /srv/by-root',
        'echo x >> /etc/passwd && echo appended',
      ].join('; '),
    )
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toBe(
      '33:33 /srv/www/index.html\n0:0 /srv/root-only\n0:0 /etc/passwd\nsecret\n0:0 /srv/by-root\nappended\n',
    )
    // uid 33 writes where 33 may, and nowhere else.
    const www = await sh(
      ref.app!,
      'echo y > /srv/www/mine && stat -c %u /srv/www/mine; echo z > /srv/nope || echo refused',
      {
        user: 'www-data',
      },
    )
    expect(www.stdout).toBe('33\nrefused\n')
    expect(www.stderr).toContain('Permission denied')
  })

  it('what a container writes lands in its own upper layer, with the owners the image would give it', async () => {
    const c = await create({
      image: ref.app!,
      images,
      root: stateRoot,
      command: [
        'echo a > /srv/new; echo b > /srv/www/new; chown 33:33 /srv/www/new; rm /srv/root-only; touch /done; sleep 60',
      ],
    })
    try {
      await c.start()
      const upper = join(store, 'containers', c.id, 'upper')
      for (let i = 0; i < 250 && !existsSync(join(upper, 'done')); i++) await new Promise((r) => setTimeout(r, 20))
      expect(readFileSync(join(upper, 'srv', 'new'), 'utf8')).toBe('a\n')
      // As root: the idmapped upper layer keeps the image's own ids (0, 33); rootless: the
      // host ids the store's maps give them.
      expect(lstatSync(join(upper, 'srv', 'new')).uid).toBe(expectedHostUid(0))
      expect(lstatSync(join(upper, 'srv', 'www', 'new')).uid).toBe(expectedHostUid(33))
      // The deleted file is a whiteout in the upper layer; the image's layer is untouched.
      const wh = lstatSync(join(upper, 'srv', 'root-only'))
      expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true)
      const rec = await images.inspect(ref.app!)
      const appLayer = join(store, 'layers', 'sha256', rec.layers[1]!.diffId.slice(7), 'diff')
      expect(readFileSync(join(appLayer, 'srv', 'root-only'), 'utf8')).toBe('secret\n')
      // The overlay is mounted in the container's mount namespace only.
      expect(hostMountinfo()).not.toContain(store)
    } finally {
      await c.delete({ force: true })
    }
    expect(containerDirs()).toEqual([])
  })

  it('two images sharing a base store one copy of its layer', async () => {
    const plain = await images.pull(ref.plain!)
    const app = await images.inspect(ref.app!)
    expect(app.layers[0]!.diffId).toBe(plain.layers[0]!.diffId)
    await run({ image: ref.plain!, images, command: ['true'] })
    await run({ image: ref.app!, images, command: ['true'] })
    const layers = readdirSync(join(store, 'layers', 'sha256'))
    expect(layers).toContain(plain.layers[0]!.diffId.slice(7))
    // One directory per distinct layer, whatever number of images use it.
    const distinct = new Set((await images.list()).flatMap((i) => i.layers.map((l) => l.diffId.slice(7))))
    expect(layers.sort()).toEqual([...distinct].sort())
    // du counts the base layer once: the store's layers weigh the sum of the distinct layers.
    const du = (p: string) => Number(spawnSync('du', ['-sk', p], { encoding: 'utf8' }).stdout.split('\t')[0])
    const base = du(join(store, 'layers', 'sha256', plain.layers[0]!.diffId.slice(7)))
    expect(base).toBeGreaterThan(500)
    expect(du(join(store, 'layers'))).toBeLessThan(base * 1.5)
  })

  it("the image's whiteouts and opaque directory are seen as the image says", async () => {
    const r = await sh(ref.wh!, 'ls -a /w; echo --; ls -a /o; echo --; cat /w/gone.txt 2>&1; ls /o/sub 2>&1')
    expect(r.exitCode).not.toBe(0)
    expect(r.stdout).toBe(
      ".\n..\nkeep.txt\n--\n.\n..\nnew.txt\n--\ncat: can't open '/w/gone.txt': No such file or directory\nls: /o/sub: No such file or directory\n",
    )
  })

  it("the image's labels are the container's, its anonymous volume is a directory of its own, gone with it", async () => {
    const c = await create({
      image: ref.app!,
      images,
      root: stateRoot,
      command: ['stat -c "%u:%g %a" /data; sleep 60'],
    })
    try {
      expect(c.state().annotations['io.ns.label/org.example.k']).toBe('v')
      expect(c.state().annotations['io.ns.image']).toBe(ref.app)
      const vol = join(store, 'containers', c.id, 'volumes', '0')
      expect(statSync(vol).isDirectory()).toBe(true)
      await c.start()
      let out = ''
      for (let i = 0; i < 200 && !out; i++) {
        out = c
          .logs()
          .map((l) => l.log)
          .join('')
        await new Promise((r) => setTimeout(r, 20))
      }
      expect(out).toBe(isRoot ? '33:33 750\n' : '0:0 750\n')
    } finally {
      await c.delete({ force: true })
    }
    expect(containerDirs()).toEqual([])
  })
})

/** The host uid of an image's uid as the store keeps it: itself for root, through the maps otherwise. */
function expectedHostUid(uid: number): number {
  if (isRoot) return uid
  const euid = process.geteuid!()
  if (uid === 0) return euid
  const line = readFileSync('/etc/subuid', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${process.env.USER ?? 'nsci'}:`) || l.startsWith(`${euid}:`))
  return Number(line!.split(':')[1]) + uid - 1
}

describe("a container's overlay is given back", () => {
  it('nothing of it is left after a foreground run: no directory in the store, no mount on the host', async () => {
    const before = hostMountinfo()
    const r = await sh(ref.app!, 'echo data > /srv/f; grep -c " / / " /proc/self/mountinfo')
    expect(r.exitCode, r.stderr).toBe(0)
    expect(containerDirs()).toEqual([])
    expect(
      hostMountinfo()
        .split('\n')
        .filter((l) => l.includes(store)),
    ).toEqual([])
    expect(before.includes(store)).toBe(false)
  })

  it('a detached container keeps its upper layer until rm; one made with remove goes by itself', async () => {
    const c = await create({ image: ref.app!, images, root: stateRoot, command: ['true'] })
    expect(containerDirs()).toEqual([c.id])
    await c.start()
    await c.wait()
    expect(containerDirs()).toEqual([c.id])
    await c.delete()
    expect(containerDirs()).toEqual([])
    const r = await create({ image: ref.app!, images, root: stateRoot, command: ['true'], remove: true })
    await r.start()
    for (let i = 0; i < 250 && containerDirs().length; i++) await new Promise((res) => setTimeout(res, 20))
    expect(containerDirs()).toEqual([])
    expect(() => get(r.id, stateRoot)).toThrow()
  })

  it('after a crash (the process running it killed), the store reconciles what it left', async () => {
    // A process that runs a container and is killed while it runs: its helper dies with it.
    const script = `import { run, openImages } from '@ns/core'
      run({ image: ${JSON.stringify(ref.app)}, images: openImages({ store: ${JSON.stringify(store)} }), command: ['sleep 60'] })
      setInterval(() => {}, 1000)`
    const child = spawnSync(
      'sh',
      [
        '-c',
        `node --input-type=module -e "$1" & pid=$!; for i in $(seq 100); do ls ${store}/containers 2>/dev/null | grep -q . && break; sleep 0.1; done; sleep 0.3; kill -9 $pid; wait $pid`,
        'sh',
        script,
      ],
      { cwd: join(repoRoot, 'test'), encoding: 'utf8', timeout: 30_000 },
    )
    expect(child.status, child.stderr).toBe(137)
    for (let i = 0; i < 100 && !containerDirs().length; i++) await new Promise((r) => setTimeout(r, 20))
    expect(containerDirs().filter((d) => !d.startsWith('.')).length).toBe(1)
    const p = await images.prune()
    expect(p.containersRemoved).toBe(1)
    expect(containerDirs()).toEqual([])
  })
})

describe('images in use, pulls and their errors', () => {
  it('an image a container uses cannot be removed (IMAGE_IN_USE) until the container is gone', async () => {
    const name = `${reg.host}/ns/test:in-use`
    const image = await images.tag(ref.plain!, name)
    const c = await create({ image: name, images, root: stateRoot, command: ['sh', '-c', 'sleep 60'] })
    try {
      // A name of several goes (the image stays); the last one, or the image by id, cannot.
      expect((await images.remove(name)).untagged).toEqual([name])
      await expect(images.remove(ref.plain!)).rejects.toMatchObject({
        code: 'IMAGE_IN_USE',
        message: expect.stringContaining(c.id),
      })
      await expect(images.remove(image.id, { force: true })).rejects.toMatchObject({ code: 'IMAGE_IN_USE' })
      // prune keeps an image without a name that a container uses.
      await images.tag(ref.plain!, name)
      expect((await images.prune()).inUse).toEqual([])
      expect((await images.list()).some((i) => i.digest === image.digest)).toBe(true)
    } finally {
      await c.delete({ force: true })
    }
    await images.remove(name)
    await images.remove(ref.plain!)
    expect((await images.list()).some((i) => i.digest === image.digest)).toBe(false)
    await images.pull(ref.plain!)
  })

  it('pull policies: never refuses an image the store lacks, missing pulls it once (with progress)', async () => {
    const own = openImages({ store: join(work, 'store-pulls') })
    await expect(run({ image: ref.plain!, images: own, pull: 'never', command: ['true'] })).rejects.toMatchObject({
      code: 'IMAGE_NOT_FOUND',
      message: expect.stringContaining(ref.plain!),
    })
    const events: PullEvent[] = []
    const r = await run({ image: ref.plain!, images: own, command: ['true'], onPull: (e) => events.push(e) })
    expect(r.exitCode).toBe(0)
    expect(events.map((e) => e.type)).toContain('complete')
    expect(events.some((e) => e.type === 'layer' && e.status === 'complete')).toBe(true)
    const again: PullEvent[] = []
    await run({ image: ref.plain!, images: own, command: ['true'], onPull: (e) => again.push(e) })
    expect(again).toEqual([])
    await run({ image: ref.plain!, images: own, command: ['true'], pull: 'always', onPull: (e) => again.push(e) })
    expect(again.map((e) => e.type)).toContain('complete')
    for (const l of readdirSync(join(work, 'store-pulls', 'layers', 'sha256')))
      await native.removeLayer({ path: join(work, 'store-pulls', 'layers', 'sha256', l) })
  })

  it('an unknown image or tag is an error naming the reference', async () => {
    for (const r of [`${reg.host}/ns/nosuch:1`, `${reg.host}/ns/test:nosuchtag`]) {
      const e = await run({ image: r, images, command: ['true'] }).catch(
        (x: unknown) => x as { code: string; message: string },
      )
      expect(['NAME_UNKNOWN', 'MANIFEST_UNKNOWN', 'IMAGE_NOT_FOUND']).toContain((e as { code: string }).code)
      expect((e as { message: string }).message).toContain(r)
    }
    expect(containerDirs()).toEqual([])
  })
})
