// `ns serve --pool N`: warm sandboxes behind POST /v1/run. A request with the pool's options
// runs in one of them and gets the answer a cold start would give; any other starts cold; the
// pool's options are judged by the policy as a request's are, before the server starts; and a
// server that closes leaves nothing of its sandboxes behind.
import { spawn, spawnSync } from 'node:child_process'
import { request } from 'node:http'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect } from 'vitest'

import { serve, type RunningServer } from '@ns/server'

import { childPids, cli, fixtureRootfs, hostMountinfo, itNs } from './helpers.js'

const tmp = mkdtempSync(join(tmpdir(), 'ns-server-pool-'))
chmodSync(tmp, 0o755)
const servers: RunningServer[] = []
afterAll(async () => {
  for (const s of servers) await s.close()
  rmSync(tmp, { recursive: true, force: true })
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function call(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const payload = body === undefined ? undefined : JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, method, path, headers: payload ? { 'content-type': 'application/json' } : {}, timeout: 20_000 },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (text += d))
        res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }))
      },
    )
    req.on('error', reject)
    req.end(payload)
  })
}

/** Until the pool has `n` sandboxes ready (or 10 s have passed): its state. */
async function ready(socket: string, n: number): Promise<any> {
  let state
  for (const until = Date.now() + 10_000; Date.now() < until; await sleep(20)) {
    state = (await call(socket, 'GET', '/v1/pool')).body
    if (state.ready >= n) break
  }
  return state
}

let next = 0
async function start(
  pool: number,
  poolOptions?: Record<string, unknown>,
): Promise<{ server: RunningServer; socket: string }> {
  const socket = join(tmp, `s${next++}.sock`)
  const server = await serve({
    socket,
    root: join(tmp, 'state'),
    allowBind: [fixtureRootfs],
    pool,
    ...(poolOptions ? { poolOptions } : {}),
  })
  servers.push(server)
  return { server, socket }
}

describe('ns serve --pool: warm sandboxes for POST /v1/run', () => {
  itNs(
    "a request with the pool's options runs in a warm sandbox with its own command, env, cwd and input; one with others starts cold",
    async () => {
      const { server, socket } = await start(2, { rootfs: fixtureRootfs })
      const state = await ready(socket, 2)
      expect(state).toMatchObject({ size: 2, ready: 2, warm: 0, cold: 0, options: { rootfs: fixtureRootfs } })
      const body = {
        command: ['sh', '-c', 'read x; echo "$x $MINE"; pwd; hostname | wc -c; echo err >&2; exit 5'],
        rootfs: fixtureRootfs,
        env: { MINE: 'mine' },
        cwd: '/tmp',
        input: 'in\n',
      }
      const warm = await call(socket, 'POST', '/v1/run', body)
      expect(warm.status).toBe(200)
      // The hostname is the sandbox's id: 12 hex digits and a newline, as a cold container's.
      expect(warm.body).toMatchObject({ exitCode: 5, stdout: 'in mine\n/tmp\n13\n', stderr: 'err\n', timedOut: false })
      expect((await call(socket, 'GET', '/v1/pool')).body).toMatchObject({ warm: 1, cold: 0 })
      // Options of its own: cold, the same answer but for the name.
      const cold = await call(socket, 'POST', '/v1/run', { ...body, hostname: 'box' })
      expect(cold.body).toMatchObject({ exitCode: 5, stdout: 'in mine\n/tmp\n4\n', stderr: 'err\n' })
      expect((await call(socket, 'GET', '/v1/pool')).body).toMatchObject({ warm: 1, cold: 0 })
      // A bad command is the same error either way.
      const missing = await call(socket, 'POST', '/v1/run', { command: ['no-such-command'], rootfs: fixtureRootfs })
      expect(missing.status).toBe(400)
      expect(missing.body.error).toMatchObject({ field: 'command', code: 'ENOENT' })
      await server.close()
      servers.splice(servers.indexOf(server), 1)
    },
  )

  itNs(
    "the pool's options are judged as a request's are: a refused or bad one stops the server, the field named",
    async () => {
      await expect(start(1, { rootfs: '/' })).rejects.toThrow(/^poolOptions\.rootfs: /)
      await expect(start(1, { command: ['true'] })).rejects.toThrow(/^poolOptions\.command: is a field of each request/)
      await expect(start(1, { memory: 'lots' })).rejects.toThrow(/^poolOptions\.memory: /)
      await expect(start(1, { capAdd: ['SYS_ADMIN'] })).rejects.toThrow(/^poolOptions\.capAdd/)
      await expect(start(0)).rejects.toThrow(/^pool: must be a whole number from 1 to 64$/)
    },
  )

  itNs('a server that closes ends its sandboxes: no process or mount of them is left', async () => {
    const mounts = hostMountinfo()
    const { server, socket } = await start(3, { rootfs: fixtureRootfs })
    await ready(socket, 3)
    expect(childPids().length).toBeGreaterThanOrEqual(3)
    await server.close()
    servers.splice(servers.indexOf(server), 1)
    for (const until = Date.now() + 3000; childPids().length && Date.now() < until;) await sleep(20)
    expect(childPids()).toEqual([])
    expect(hostMountinfo()).toBe(mounts)
  })

  itNs('ns serve --pool N --pool-options JSON serves them; a bad count or options are usage errors', async () => {
    const socket = join(tmp, 'cli.sock')
    const child = spawn(process.execPath, [
      cli,
      '--root',
      join(tmp, 'state'),
      'serve',
      '--socket',
      socket,
      '--allow-bind',
      fixtureRootfs,
      '--pool',
      '2',
      '--pool-options',
      JSON.stringify({ rootfs: fixtureRootfs }),
    ])
    try {
      let up = false
      for (const until = Date.now() + 10_000; !up && Date.now() < until; await sleep(50)) {
        up = await call(socket, 'GET', '/v1/health').then(
          (r) => r.status === 200,
          () => false,
        )
      }
      expect(up).toBe(true)
      expect((await ready(socket, 2)).size).toBe(2)
      const r = await call(socket, 'POST', '/v1/run', { command: ['echo', 'hi'], rootfs: fixtureRootfs })
      expect(r.body).toMatchObject({ exitCode: 0, stdout: 'hi\n' })
      expect((await call(socket, 'GET', '/v1/pool')).body.warm).toBe(1)
    } finally {
      child.kill('SIGTERM')
      await new Promise((res) => child.once('exit', res))
    }
    const bad = (args: string[]) =>
      spawnSync(process.execPath, [cli, 'serve', '--socket', join(tmp, 'x.sock'), ...args], { encoding: 'utf8' })
    const zero = bad(['--pool', '0'])
    expect(zero.status).toBe(125)
    expect(zero.stderr).toMatch(/--pool: "0" must be a whole number >= 1/)
    const alone = bad(['--pool-options', '{}'])
    expect(alone.status).toBe(125)
    expect(alone.stderr).toMatch(/--pool-options: needs --pool/)
    const notJson = bad(['--pool', '1', '--pool-options', '{rootfs'])
    expect(notJson.stderr).toMatch(/--pool-options: is not JSON/)
  })
})
