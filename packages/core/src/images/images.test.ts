// Unit tests of the pure parts of images: references, platforms, challenges, manifests, the
// auth file (no registry involved; test/images.test.ts drives a real one).
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterEach, describe, expect, it } from 'vitest'

import { authFilePaths, findCredentials, parseChallenges, removeCredentials, saveCredentials } from './auth.js'
import { mediaTypes, parseManifest } from './media.js'
import { normalizePlatform, parsePlatform, selectManifest } from './platform.js'
import { familiarName, parseReference, parseSource } from './reference.js'
import { RegistryClient, isLoopback } from './registry.js'

const d1 = `sha256:${'a'.repeat(64)}`
const d2 = `sha256:${'b'.repeat(64)}`

function errorOf(fn: () => unknown): { code?: string; message: string; field?: string } {
  try {
    fn()
  } catch (e) {
    return e as { code?: string; message: string }
  }
  throw new Error('expected an error')
}

describe('references', () => {
  it('normalise as docker does: docker.io, library/, latest', () => {
    expect(parseReference('alpine').full).toBe('docker.io/library/alpine:latest')
    expect(parseReference('alpine:3.20').full).toBe('docker.io/library/alpine:3.20')
    expect(parseReference('user/app').full).toBe('docker.io/user/app:latest')
    expect(parseReference('index.docker.io/library/busybox:1').full).toBe('docker.io/library/busybox:1')
    expect(parseReference('docker://alpine').full).toBe('docker.io/library/alpine:latest')
    const r = parseReference('127.0.0.1:5000/library/alpine:3.20')
    expect([r.domain, r.path, r.tag, r.digest]).toEqual(['127.0.0.1:5000', 'library/alpine', '3.20', undefined])
    expect(parseReference('localhost/app').domain).toBe('localhost')
    expect(parseReference('quay.io/org/sub/app:v1').path).toBe('org/sub/app')
    expect(familiarName(parseReference('alpine:3.20'))).toBe('alpine:3.20')
  })

  it('keep a digest, with or without a tag, and then set no default tag', () => {
    const r = parseReference(`host:5000/app@${d1}`)
    expect([r.tag, r.digest, r.full]).toEqual([undefined, d1, `host:5000/app@${d1}`])
    const both = parseReference(`app:1.0@${d1}`)
    expect([both.tag, both.digest]).toEqual(['1.0', d1])
  })

  it('bad references are EINVAL errors naming the reference and the reason', () => {
    for (const [input, reason] of [
      ['Alpine', /lowercase/],
      ['app:bad tag', /tag/],
      ['app@sha256:1234', /64/],
      ['app@md5:0123456789abcdef0123456789abcdef', /sha256/],
      ['', /empty/],
      ['a//b', /component/],
      ['-app', /component/],
    ] as const) {
      const e = errorOf(() => parseReference(input))
      expect(e.code).toBe('EINVAL')
      expect(e.message).toContain(JSON.stringify(input))
      expect(e.message).toMatch(reason)
    }
  })

  it('transports: oci:DIR[:name], oci-archive:FILE[:name], docker-archive:FILE[:ref]', () => {
    expect(parseSource('oci:/tmp/lay:v2')).toEqual({ transport: 'oci', path: '/tmp/lay', tag: 'v2' })
    expect(parseSource('oci:/tmp/lay')).toEqual({ transport: 'oci', path: '/tmp/lay', tag: undefined })
    expect(parseSource('oci-archive:/a.tar')).toEqual({ transport: 'oci-archive', path: '/a.tar', tag: undefined })
    const d = parseSource('docker-archive:/a.tar:app:1')
    expect(d.transport === 'docker-archive' && d.ref?.full).toBe('docker.io/library/app:1')
    const plain = parseSource('alpine')
    expect(plain.transport === 'docker' && plain.ref.full).toBe('docker.io/library/alpine:latest')
    expect(errorOf(() => parseSource('oci:')).code).toBe('EINVAL')
  })
})

describe('platforms', () => {
  const manifests = [
    { mediaType: mediaTypes.ociManifest, digest: d1, size: 1, platform: { os: 'linux', architecture: 'amd64' } },
    {
      mediaType: mediaTypes.ociManifest,
      digest: d2,
      size: 1,
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    },
    {
      mediaType: mediaTypes.ociManifest,
      digest: `sha256:${'c'.repeat(64)}`,
      size: 1,
      platform: { os: 'linux', architecture: 'arm', variant: 'v6' },
    },
    {
      mediaType: mediaTypes.ociManifest,
      digest: `sha256:${'d'.repeat(64)}`,
      size: 1,
      platform: { os: 'unknown', architecture: 'unknown' },
    },
  ]

  it('parse and normalise os/arch/variant with the usual aliases', () => {
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64' })
    expect(parsePlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64' })
    expect(parsePlatform('linux/arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' })
    expect(normalizePlatform({ os: 'linux', architecture: 'x86_64' })).toEqual({ os: 'linux', architecture: 'amd64' })
    expect(errorOf(() => parsePlatform('linux/a/b/c')).code).toBe('EINVAL')
  })

  it('pick the manifest of the platform; arm v7 takes a v6 image; an absent platform is named with those offered', () => {
    expect(selectManifest(manifests, parsePlatform('linux/amd64'), 'r').digest).toBe(d1)
    expect(selectManifest(manifests, parsePlatform('linux/arm64'), 'r').digest).toBe(d2)
    expect(selectManifest(manifests, parsePlatform('linux/arm/v7'), 'r').digest).toBe(`sha256:${'c'.repeat(64)}`)
    const e = errorOf(() => selectManifest(manifests, parsePlatform('linux/s390x'), 'reg/app:1'))
    expect(e.code).toBe('NO_MATCHING_PLATFORM')
    expect(e.message).toContain('reg/app:1')
    expect(e.message).toContain('linux/s390x')
    expect(e.message).toContain('linux/amd64, linux/arm64, linux/arm/v6')
    expect(e.message).not.toContain('unknown')
  })
})

describe('registry basics', () => {
  it('parses WWW-Authenticate challenges, quoted commas included', () => {
    const c = parseChallenges(
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push", Basic realm="x"',
    )
    expect(c).toEqual([
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
      },
      { scheme: 'basic', params: { realm: 'x' } },
    ])
    expect(parseChallenges(null)).toEqual([])
  })

  it('speaks HTTPS unless the registry is on loopback or marked insecure', () => {
    const c = new RegistryClient({ insecureRegistries: ['reg.test:5000'] })
    expect(c.baseUrl('docker.io')).toBe('https://registry-1.docker.io')
    expect(c.baseUrl('quay.io')).toBe('https://quay.io')
    expect(c.baseUrl('reg.test:5000')).toBe('http://reg.test:5000')
    expect(c.baseUrl('127.0.0.1:5000')).toBe('http://127.0.0.1:5000')
    expect(c.baseUrl('localhost')).toBe('http://localhost')
    expect(isLoopback('[::1]:5000')).toBe(true)
    expect(isLoopback('127.0.0.1.example.com')).toBe(false)
  })
})

describe('manifests', () => {
  const config = { mediaType: mediaTypes.ociConfig, digest: d1, size: 2 }
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o))

  it('schema 1 is refused with a clear message', () => {
    const e = errorOf(() =>
      parseManifest(enc({ schemaVersion: 1, name: 'x', fsLayers: [] }), mediaTypes.dockerSchema1Signed, 'reg/app:old'),
    )
    expect(e.code).toBe('UNSUPPORTED_MEDIA_TYPE')
    expect(e.message).toMatch(/reg\/app:old: Docker image manifest schema 1 is deprecated and not supported/)
  })

  it('a malformed manifest names its field; an artifact and an unknown layer type are refused', () => {
    const bad = errorOf(() =>
      parseManifest(
        enc({ schemaVersion: 2, config, layers: [{ mediaType: 'x', digest: 'nope', size: 1 }] }),
        undefined,
        'm',
      ),
    )
    expect(bad.code).toBe('INVALID_MANIFEST')
    expect(bad.message).toContain('m.layers[0].digest')
    const art = errorOf(() =>
      parseManifest(
        enc({ schemaVersion: 2, config: { ...config, mediaType: 'application/vnd.example+json' }, layers: [] }),
        mediaTypes.ociManifest,
        'm',
      ),
    )
    expect(art.code).toBe('UNSUPPORTED_MEDIA_TYPE')
    const layer = errorOf(() =>
      parseManifest(
        enc({ schemaVersion: 2, config, layers: [{ mediaType: 'application/x-unknown', digest: d2, size: 1 }] }),
        mediaTypes.ociManifest,
        'm',
      ),
    )
    expect(layer.message).toContain('application/x-unknown')
  })

  it('tells an index from a manifest by media type or, lacking one, by shape', () => {
    expect(parseManifest(enc({ schemaVersion: 2, manifests: [] }), undefined, 'i').kind).toBe('index')
    expect(parseManifest(enc({ schemaVersion: 2, config, layers: [] }), 'application/json', 'm').kind).toBe('manifest')
    const lie = errorOf(() =>
      parseManifest(
        enc({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [] }),
        mediaTypes.ociManifest,
        'x',
      ),
    )
    expect(lie.code).toBe('INVALID_MANIFEST')
  })
})

describe('auth file', () => {
  let dir: string
  const saved = { ...process.env }
  afterEach(() => {
    process.env = { ...saved }
    rmSync(dir, { recursive: true, force: true })
  })

  it('looks where podman looks, REGISTRY_AUTH_FILE alone when set', () => {
    dir = mkdtempSync(join(tmpdir(), 'ns-auth-'))
    process.env.XDG_RUNTIME_DIR = join(dir, 'run')
    process.env.HOME = join(dir, 'home')
    delete process.env.REGISTRY_AUTH_FILE
    delete process.env.XDG_CONFIG_HOME
    delete process.env.DOCKER_CONFIG
    expect(authFilePaths()).toEqual([
      join(dir, 'run', 'containers', 'auth.json'),
      join(dir, 'home', '.config', 'containers', 'auth.json'),
      join(dir, 'home', '.docker', 'config.json'),
    ])
    process.env.REGISTRY_AUTH_FILE = join(dir, 'a.json')
    expect(authFilePaths()).toEqual([join(dir, 'a.json')])
  })

  it("reads docker's keys and podman's per-repository keys, the most specific first", async () => {
    dir = mkdtempSync(join(tmpdir(), 'ns-auth-'))
    const file = join(dir, 'auth.json')
    const b64 = (s: string) => Buffer.from(s).toString('base64')
    writeFileSync(
      file,
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: b64('hub:pw1') },
          'reg.test:5000': { auth: b64('all:pw2') },
          'reg.test:5000/team': { auth: b64('team:pw3') },
        },
      }),
    )
    expect(await findCredentials('docker.io', 'library/alpine', { authFile: file })).toEqual({
      username: 'hub',
      password: 'pw1',
    })
    expect(await findCredentials('reg.test:5000', 'other/app', { authFile: file })).toEqual({
      username: 'all',
      password: 'pw2',
    })
    expect(await findCredentials('reg.test:5000', 'team/app', { authFile: file })).toEqual({
      username: 'team',
      password: 'pw3',
    })
    expect(await findCredentials('nowhere.test', 'x', { authFile: file })).toBeUndefined()
  })

  it('login writes an entry readable by both (mode 0600); logout removes it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ns-auth-'))
    const file = join(dir, 'containers', 'auth.json')
    writeFileSync(join(dir, 'seed'), '')
    await saveCredentials('reg.test:5000', { username: 'u', password: 'p:w' }, { authFile: file })
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const j = JSON.parse(readFileSync(file, 'utf8')) as { auths: Record<string, { auth: string }> }
    expect(Buffer.from(j.auths['reg.test:5000']!.auth, 'base64').toString()).toBe('u:p:w')
    expect(await findCredentials('reg.test:5000', 'a', { authFile: file })).toEqual({ username: 'u', password: 'p:w' })
    expect(await removeCredentials('reg.test:5000', { authFile: file })).toBe(true)
    expect(await findCredentials('reg.test:5000', 'a', { authFile: file })).toBeUndefined()
  })
})
