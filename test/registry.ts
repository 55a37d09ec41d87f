// Test registries on loopback: Debian's docker-registry started with a config of the test's
// own (127.0.0.1:<free port>, storage in a temp dir, optionally htpasswd Basic auth), images
// built from the fixture rootfs with umoci and pushed with skopeo, and small HTTP proxies that
// stand between ns and the registry to corrupt, cut, redirect or demand a token.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { fixtureRootfs } from './helpers.js'

const registryBin = '/usr/bin/docker-registry'

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

/** Why the registry tests cannot run here, if they cannot. */
export const registrySkipReason = !have(registryBin)
  ? 'docker-registry is not installed (apt-get install docker-registry)'
  : !have('skopeo')
    ? 'skopeo is not installed'
    : !have('umoci')
      ? 'umoci is not installed'
      : undefined

/** A bcrypt (cost 4) hash of `s3cret`, for the htpasswd variant. */
export const testUser = { username: 'tester', password: 's3cret' }
const testHash = '$2b$04$fgqqjj4hgfxjqbN885O3Wujc3Q48PuJrpzktDigFS7Bh6jehBpJ6e'

export async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}

export interface TestRegistry {
  host: string
  url: string
  dir: string
  stop(): Promise<void>
}

/** Starts docker-registry on 127.0.0.1 with storage in a temp dir (and htpasswd auth if asked). */
export async function startRegistry(opts: { htpasswd?: boolean } = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'ns-registry-'))
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const auth = opts.htpasswd ? `auth:\n  htpasswd:\n    realm: ns-test\n    path: ${join(dir, 'htpasswd')}\n` : ''
    if (opts.htpasswd) writeFileSync(join(dir, 'htpasswd'), `${testUser.username}:${testHash}\n`)
    const config = [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      auth,
    ].join('\n')
    writeFileSync(join(dir, 'config.yml'), config)
    const child = spawn(registryBin, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
    const url = `http://127.0.0.1:${port}`
    const up = await waitUp(url, child)
    if (up) {
      return {
        host: `127.0.0.1:${port}`,
        url,
        dir,
        stop: async () => {
          await stopChild(child)
          rmSync(dir, { recursive: true, force: true })
        },
      }
    }
    await stopChild(child)
    if (attempt >= 3) throw new Error(`docker-registry did not start: ${err}`)
  }
}

async function waitUp(url: string, child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) return false
    try {
      const r = await fetch(`${url}/v2/`)
      await r.body?.cancel()
      return true
    } catch {
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return false
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const done = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  const t = setTimeout(() => child.kill('SIGKILL'), 5000)
  await done
  clearTimeout(t)
}

export function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`)
  return r.stdout
}

export function skopeo(...args: string[]): string {
  return run('skopeo', ['--insecure-policy', ...args])
}

/** `sha256:` of a file, computed by sha256sum (independently of ns). */
export function sha256sum(path: string): string {
  return `sha256:${run('sha256sum', [path]).split(' ')[0]}`
}

/**
 * An OCI layout built with umoci from the fixture rootfs: `base` (one layer, the rootfs),
 * `v2` (base plus a layer that adds /etc/added.txt and deletes /etc/hostname), and
 * `v2-arm64` (v2's layers, a config for linux/arm64).
 */
export function buildLayout(work: string): string {
  const layout = join(work, 'layout')
  mkdirSync(join(work, 'l2', 'etc'), { recursive: true })
  writeFileSync(join(work, 'l2', 'etc', 'added.txt'), 'layer two\n')
  writeFileSync(join(work, 'l2', 'etc', '.wh.hostname'), '')
  const tarArgs = ['--numeric-owner', '--owner=0', '--group=0', '--sort=name', '--mtime=@0']
  run('tar', [...tarArgs, '-C', fixtureRootfs, '-cf', join(work, 'base.tar'), '.'])
  run('tar', [...tarArgs, '-C', join(work, 'l2'), '-cf', join(work, 'l2.tar'), '.'])
  run('umoci', ['init', '--layout', layout])
  run('umoci', ['new', '--image', `${layout}:base`])
  run('umoci', ['raw', 'add-layer', '--image', `${layout}:base`, join(work, 'base.tar')])
  run('umoci', [
    'config',
    '--image',
    `${layout}:base`,
    '--config.cmd',
    '/bin/sh',
    '--os',
    'linux',
    '--architecture',
    'amd64',
  ])
  run('umoci', ['raw', 'add-layer', '--image', `${layout}:base`, '--tag', 'v2', join(work, 'l2.tar')])
  run('umoci', ['config', '--image', `${layout}:v2`, '--tag', 'v2-arm64', '--architecture', 'arm64'])
  return layout
}

/** The digests of an image in a layout: its manifest, its config and its layers, in order. */
export interface BuiltImage {
  manifest: string
  config: string
  layers: string[]
}

/** Each image of the OCI layout `layout` by its tag (`org.opencontainers.image.ref.name`), read from its files. */
export function builtImages(layout: string): Record<string, BuiltImage> {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations: Record<string, string> }[]
  }
  const built: Record<string, BuiltImage> = {}
  for (const m of index.manifests) {
    const man = JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', m.digest.slice(7)), 'utf8')) as {
      config: { digest: string }
      layers: { digest: string }[]
    }
    built[m.annotations['org.opencontainers.image.ref.name']!] = {
      manifest: m.digest,
      config: man.config.digest,
      layers: man.layers.map((l) => l.digest),
    }
  }
  return built
}

export interface ProxyHooks {
  /** Answers the request itself (return true) or lets it through (false). */
  intercept?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>
  /** Changes a response body from the registry (the whole body, buffered). */
  rewrite?: (req: IncomingMessage, body: Buffer) => Buffer
  /** Sends only this many bytes of a response's body, then drops the connection. */
  cutAfter?: (req: IncomingMessage) => number | undefined
}

export interface TestProxy {
  url: string
  host: string
  requests: { method: string; url: string; headers: IncomingMessage['headers'] }[]
  close(): Promise<void>
}

/** An HTTP proxy on 127.0.0.1 in front of a registry, with hooks to misbehave. */
export async function startProxy(target: string, hooks: ProxyHooks = {}): Promise<TestProxy> {
  const t = new URL(target)
  const requests: TestProxy['requests'] = []
  const server: Server = createServer(async (req, res) => {
    requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers })
    if (hooks.intercept && (await hooks.intercept(req, res))) return
    const headers = { ...req.headers, host: t.host }
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers }, (ures) => {
      const cut = hooks.cutAfter?.(req)
      const rewrite = hooks.rewrite
      if (cut === undefined && !rewrite) {
        res.writeHead(ures.statusCode ?? 502, ures.headers)
        ures.pipe(res)
        return
      }
      const chunks: Buffer[] = []
      ures.on('data', (c: Buffer) => chunks.push(c))
      ures.on('end', () => {
        let body: Buffer = Buffer.concat(chunks)
        if (rewrite) body = rewrite(req, body)
        res.writeHead(ures.statusCode ?? 502, { ...ures.headers, 'content-length': String(body.length) })
        if (cut !== undefined && cut < body.length) {
          res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20))
        } else {
          res.end(body)
        }
      })
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}
