// `ns pull`, `ns images`, `ns rmi`, `ns load`, `ns tag` and `ns run IMAGE` as a person types
// them: an image made byte by byte (oci-fixture.ts), pushed to a registry on 127.0.0.1 and also
// written as an oci-archive; the CLI's store is the test's own (`ns --store`). What runs is seen
// from inside (its files, its config's Entrypoint, Cmd, Env and WorkingDir), and what is left of
// a container on the host (its directory in the store, its overlay mount) from outside.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect } from 'vitest'

import native from '@ns/native'

import { ImageStore, reconcileContainers } from '@ns/core'

import { cli, hostMountinfo, itWhen, usernsSkipReason } from './helpers.js'
import { fixtureTar, push, tarOf, writeLayout } from './oci-fixture.js'
import { registrySkipReason, skopeo, startRegistry, type TestRegistry } from './registry.js'

const it = itWhen(usernsSkipReason ?? registrySkipReason)
const work = mkdtempSync(join(tmpdir(), 'ns-image-cli-'))
const store = join(work, 'store')
const state = join(work, 'state')
const archive = join(work, 'app.tar')
let reg: TestRegistry
let ref = ''

/** `ns --store S --root R ARGS`, without blocking the test's event loop. */
function ns(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cli, '--store', store, '--root', state, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    p.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

const containerDirs = () => (existsSync(join(store, 'containers')) ? readdirSync(join(store, 'containers')) : [])
const storeMounts = () =>
  hostMountinfo()
    .split('\n')
    .filter((l) => l.includes(store))

beforeAll(async () => {
  if (usernsSkipReason ?? registrySkipReason) return
  reg = await startRegistry()
  const app = tarOf([
    { name: 'etc/', type: 'dir' },
    { name: 'etc/os-release', data: 'ID=nscli\n' },
    { name: 'srv/', type: 'dir' },
    { name: 'srv/hello.txt', data: 'hello from the image\n' },
  ])
  const layout = join(work, 'layout')
  writeLayout(layout, [
    {
      tag: 'app',
      layers: [fixtureTar(work), app],
      config: {
        Cmd: ['/bin/sh', '-c', 'echo "default: $IMG in $(pwd) as $(id -u)"'],
        Env: ['IMG=from-image', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
        WorkingDir: '/srv',
      },
    },
  ])
  ref = push(layout, 'app', reg.host, 'ns/cli')
  skopeo('copy', `oci:${layout}:app`, `oci-archive:${archive}:localhost/ns/archived:1`)
}, 120_000)

afterAll(async () => {
  await reg?.stop()
  for (const d of existsSync(join(store, 'layers', 'sha256')) ? readdirSync(join(store, 'layers', 'sha256')) : [])
    await native.removeLayer({ path: join(store, 'layers', 'sha256', d) }).catch(() => {})
  await reconcileContainers(new ImageStore(store))
  rmSync(work, { recursive: true, force: true })
})

describe('ns pull, ns images, ns rmi', () => {
  it('ns pull fetches the image into --store (progress on stderr, its id on stdout); ns images lists it by name', async () => {
    const p = await ns('pull', ref)
    expect(p.code, p.stderr).toBe(0)
    expect(p.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/)
    expect(p.stderr).toContain('resolved sha256:')
    expect(p.stderr).toMatch(/[0-9a-f]{12}: pulled /)
    expect(existsSync(join(store, 'blobs', 'sha256', p.stdout.trim().slice('sha256:'.length)))).toBe(true)

    const l = await ns('images')
    expect(l.code, l.stderr).toBe(0)
    const [head, ...rows] = l.stdout.trim().split('\n')
    expect(head).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/)
    expect(rows).toHaveLength(1)
    expect(rows[0]!.split(/\s+/).slice(0, 3)).toEqual([`${reg.host}/ns/cli`, 'app', p.stdout.slice(7, 19)])
    const q = await ns('images', '-q')
    expect(q.stdout).toBe(p.stdout)
    const j = await ns('images', '--format', 'json')
    expect((JSON.parse(j.stdout) as { names: string[] }[])[0]!.names).toEqual([ref])
  })

  it('ns image inspect gives the record and the config as JSON; ns image history a row per layer', async () => {
    expect((await ns('pull', '-q', ref)).code).toBe(0)
    const i = await ns('image', 'inspect', ref)
    expect(i.code, i.stderr).toBe(0)
    const [d] = JSON.parse(i.stdout) as {
      names: string[]
      layers: unknown[]
      imageConfig: { config: { Cmd: string[]; WorkingDir: string } }
    }[]
    expect(d!.names).toEqual([ref])
    expect(d!.imageConfig.config.WorkingDir).toBe('/srv')
    expect(d!.imageConfig.config.Cmd[0]).toBe('/bin/sh')
    const h = await ns('image', 'history', ref)
    expect(h.code, h.stderr).toBe(0)
    expect(h.stdout.trim().split('\n')).toHaveLength(1 + d!.layers.length)
    const bad = await ns('image', 'frobnicate', ref)
    expect(bad.code).toBe(125)
    expect(bad.stderr).toContain("unknown action 'frobnicate'")
  })

  it('ns tag names it twice; ns rmi untags one name, then removes the image with its last', async () => {
    expect((await ns('pull', '-q', ref)).code).toBe(0)
    const t = await ns('tag', ref, 'localhost/other:2')
    expect(t.code, t.stderr).toBe(0)
    expect((await ns('images', '-q')).stdout.trim().split('\n')).toHaveLength(1)
    expect((await ns('images')).stdout).toContain('localhost/other')

    const r1 = await ns('rmi', 'localhost/other:2')
    expect(r1.code, r1.stderr).toBe(0)
    expect(r1.stdout).toBe('Untagged: localhost/other:2\n')
    const r2 = await ns('rmi', ref)
    expect(r2.code, r2.stderr).toBe(0)
    expect(r2.stdout).toMatch(new RegExp(`^Untagged: ${ref.replace(/[.]/g, '\\.')}\nDeleted: sha256:[0-9a-f]{64}\n$`))
    expect((await ns('images', '-q')).stdout).toBe('')
    // Nothing of it is left for prune: rmi kept no blob of it.
    const p = await ns('image', 'prune')
    expect(p.code, p.stderr).toBe(0)
    expect(p.stdout).toMatch(/^Total reclaimed space: /m)
    expect(readdirSync(join(store, 'blobs', 'sha256'))).toEqual([])
  })

  it('ns rmi of a name the store lacks: an error naming it, status 125, the other names still removed', async () => {
    expect((await ns('pull', '-q', ref)).code).toBe(0)
    const r = await ns('rmi', 'localhost/none:1', ref)
    expect(r.code).toBe(125)
    expect(r.stderr).toContain('localhost/none:1')
    expect(r.stdout).toContain(`Untagged: ${ref}`)
    expect((await ns('images', '-q')).stdout).toBe('')
  })

  it('ns load reads an oci-archive into the store, by the name it holds; ns run runs it; ns save writes it back', async () => {
    const r = await ns('load', '-i', archive)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('Loaded image: localhost/ns/archived:1\n')
    const run = await ns('run', 'localhost/ns/archived:1', 'cat', '/srv/hello.txt')
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toBe('hello from the image\n')
    // ns save writes it back: an oci-archive skopeo reads, of the same manifest.
    const out = join(work, 'saved.tar')
    const sv = await ns('save', '-o', out, 'localhost/ns/archived:1')
    expect(sv.code, sv.stderr).toBe(0)
    const inspected = JSON.parse(skopeo('inspect', '--raw', `oci-archive:${out}`)) as { layers: unknown[] }
    expect(inspected.layers).toHaveLength(2)
    expect((await ns('rmi', 'localhost/ns/archived:1')).code).toBe(0)
  })
})

describe('ns run IMAGE', () => {
  it('ns run IMAGE runs its Cmd with its Env and WorkingDir (Entrypoint + Cmd: image-run.test.ts), pulling it when the store lacks it', async () => {
    const r = await ns('run', ref)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('default: from-image in /srv as 0\n')
    // The pull was the run's: its progress on stderr.
    expect(r.stderr).toContain('resolved sha256:')
  })

  it("ns run IMAGE CMD (and IMAGE -- CMD) runs CMD in place of Cmd, on the image's files, not the host's", async () => {
    for (const sep of [[], ['--']]) {
      const r = await ns('run', '--pull', 'never', ref, ...sep, 'cat', '/etc/os-release', '/srv/hello.txt')
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toBe('ID=nscli\nhello from the image\n')
    }
    // ns's options end at the image: what follows is the program's, its -h included.
    const p = await ns('run', ref, 'sh', '-c', 'echo "$@"', 'sh', '-h', '--help', '-e', 'X=1')
    expect(p.code, p.stderr).toBe(0)
    expect(p.stdout).toBe('-h --help -e X=1\n')
    const h = await ns('run', ref, 'hostname')
    expect(h.stdout.trim()).not.toBe(hostname())
    const e = await ns('run', '-e', 'IMG=mine', '-w', '/', '--entrypoint', '/bin/sh', ref, '-c', 'echo $IMG $(pwd)')
    expect(e.code, e.stderr).toBe(0)
    expect(e.stdout).toBe('mine /\n')
  })

  it('what a run writes is its own: the next run of the image does not see it, and nothing of it is left on the host', async () => {
    const before = storeMounts()
    const w = await ns(
      'run',
      ref,
      'sh',
      '-c',
      'echo x > /srv/new; grep -c " / / .* overlay " /proc/self/mountinfo; cat /srv/new',
    )
    expect(w.code, w.stderr).toBe(0)
    expect(w.stdout).toBe('1\nx\n')
    const r = await ns('run', ref, 'ls', '/srv')
    expect(r.stdout).toBe('hello.txt\n')
    expect(containerDirs()).toEqual([])
    expect(storeMounts()).toEqual(before)
    expect(before).toEqual([])
  })

  it('ns run -d IMAGE keeps its writable layer until ns rm; the image cannot be removed meanwhile', async () => {
    const d = await ns('run', '-d', ref, 'sh', '-c', 'echo kept > /srv/k; sleep 30')
    expect(d.code, d.stderr).toBe(0)
    const id = d.stdout.trim()
    expect(containerDirs()).toHaveLength(1)
    const busy = await ns('rmi', ref)
    expect(busy.code, JSON.stringify(busy)).toBe(125)
    expect(busy.stderr).toMatch(/in use|IMAGE_IN_USE|used by/i)
    expect((await ns('kill', id)).code).toBe(0)
    expect((await ns('wait', id)).code).toBe(0)
    const rm = await ns('rm', id)
    expect(rm.code, rm.stderr).toBe(0)
    expect(containerDirs()).toEqual([])
    expect(storeMounts()).toEqual([])
    // One that has ended still holds its image until it is removed.
    const ended = (await ns('run', '-d', ref, 'true')).stdout.trim()
    expect((await ns('wait', ended)).stdout).toBe('0\n')
    expect((await ns('rmi', ref)).code).toBe(125)
    expect((await ns('rm', ended)).code).toBe(0)
    expect(containerDirs()).toEqual([])
    const gone = await ns('rmi', ref)
    expect(gone.code, gone.stderr).toBe(0)
    // The layers it unpacked go with it (or with the next prune): none is left on disk.
    expect((await ns('image', 'prune')).code).toBe(0)
    expect(readdirSync(join(store, 'layers', 'sha256'))).toEqual([])
    expect(readdirSync(join(store, 'blobs', 'sha256'))).toEqual([])
  })

  it('bad input is a usage error naming the flag: --pull of no policy, --rootfs with an image, --pull without one', async () => {
    const cases: Array<[string[], string]> = [
      [['run', '--pull', 'sometimes', ref], "option '--pull <policy>' argument 'sometimes' is invalid"],
      [['run', '--rootfs', work, ref], '--rootfs'],
      [['run', '--pull', 'never', '--', 'true'], '--pull'],
      [['run', '--pull', 'never', 'localhost/ns/absent:1'], 'localhost/ns/absent:1'],
    ]
    for (const [args, message] of cases) {
      const r = await ns(...args)
      expect(r.code, args.join(' ')).toBe(125)
      expect(r.stderr, args.join(' ')).toContain(message)
    }
    expect(containerDirs()).toEqual([])
  })
})
