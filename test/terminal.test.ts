// Terminals: a pty from the container's own devpts, made its controlling terminal, relayed to
// the caller in raw mode (ns run -it), or handed to an engine through --console-socket.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect } from 'vitest'

import { create, get, list, run, spawn as nsSpawn } from '@ns/core'

import { cli, fixtureRootfs, isRoot, itNs, itWhen, repoRoot, usernsSkipReason } from './helpers.js'

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0
const itTmux = itWhen(usernsSkipReason ?? (has('tmux') ? undefined : 'needs tmux (a real terminal to drive)'))
const itPython = itWhen(
  usernsSkipReason ?? (has('python3') ? undefined : 'needs python3 (to receive a descriptor over a unix socket)'),
)

const work = mkdtempSync(join(tmpdir(), 'ns-tty-'))
const socket = `ns-test-${process.pid}`
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' })
afterAll(async () => {
  spawnSync('tmux', ['-L', socket, 'kill-server'])
  // Containers a failed test left running under its state roots go first, then the folders.
  for (const dir of readdirSync(work).filter((d) => d.includes('state'))) {
    for (const s of list(join(work, dir)))
      await get(s.id, join(work, dir))
        .delete({ force: true })
        .catch(() => {})
  }
  rmSync(work, { recursive: true, force: true })
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The exit code a shell in tmux wrote to `file` once its command ended. */
async function codeIn(file: string): Promise<string> {
  for (let i = 0; i < 100 && !existsSync(file); i++) await sleep(50)
  return readFileSync(file, 'utf8').trim()
}

async function screenShows(pane: string, text: string, ms = 5000): Promise<string> {
  let screen = ''
  for (const t0 = Date.now(); Date.now() - t0 < ms; await sleep(50)) {
    screen = tmux('capture-pane', '-p', '-t', pane)
    if (screen.includes(text)) return screen
  }
  throw new Error(`${JSON.stringify(text)} never showed; the screen was:\n${screen}`)
}

describe('terminals', () => {
  itTmux(
    'ns run -it gives a real interactive shell: line editing, ^C reaches the container, resizes propagate',
    async () => {
      const done = join(work, 'exit-code')
      tmux(
        'new-session',
        '-d',
        '-s',
        'it',
        '-x',
        '90',
        '-y',
        '25',
        `node ${cli} run -it --hostname ttybox -- sh; echo $? > ${done}`,
      )
      await screenShows('it', '#')
      tmux('send-keys', '-t', 'it', 'echo $((6*7)); tty; hostname; stty size', 'Enter')
      const s1 = await screenShows('it', '25 90')
      expect(s1).toMatch(/^42$/m)
      expect(s1).toMatch(/^\/dev\/pts\/\d+$/m)
      expect(s1).toMatch(/^ttybox$/m)
      // ^C interrupts the foreground command inside; the shell (and the container) live on.
      tmux('send-keys', '-t', 'it', 'sleep 100', 'Enter')
      await sleep(200)
      tmux('send-keys', '-t', 'it', 'C-c')
      tmux('send-keys', '-t', 'it', 'echo still-$((1+1))', 'Enter')
      await screenShows('it', 'still-2')
      // Line editing: the terminal's erase works (type a wrong word, rub it out).
      tmux('send-keys', '-t', 'it', 'echo abcX', 'BSpace', 'd', 'Enter')
      await screenShows('it', 'abcd')
      tmux('resize-window', '-t', 'it', '-x', '120', '-y', '40')
      await sleep(200)
      tmux('send-keys', '-t', 'it', 'stty size', 'Enter')
      await screenShows('it', '40 120')
      tmux('send-keys', '-t', 'it', 'exit 3', 'Enter')
      expect(await codeIn(done)).toBe('3')
    },
  )

  itTmux('ns exec -it gives a terminal inside a running container', async () => {
    const root = join(work, 'state')
    execFileSync(process.execPath, [cli, '--root', root, 'run', '-d', '--name', 'ttyd', '--', 'sleep', '30'])
    // PID 2 is the container's command (`sleep`): the init at PID 1 is undumpable, and its
    // /proc/1/ns links are not readable from inside.
    tmux(
      'new-session',
      '-d',
      '-s',
      'ex',
      '-x',
      '80',
      '-y',
      '20',
      `node ${cli} --root ${root} exec -it ttyd -- sh -c 'tty; stty size; readlink /proc/2/ns/pid; readlink /proc/self/ns/pid; echo end-of-probe; sleep 30'`,
    )
    const s = await screenShows('ex', 'end-of-probe')
    expect(s).toMatch(/^20 80$/m)
    expect(s).toMatch(/^\/dev\/pts\/\d+$/m)
    const ns = s.split('\n').filter((l) => l.startsWith('pid:['))
    expect(ns.length).toBe(2)
    expect(ns[0]).toBe(ns[1])
    execFileSync(process.execPath, [cli, '--root', root, 'rm', '-f', 'ttyd'])
  })

  itTmux(
    'ns run -dt keeps a terminal in the background: ns attach types into it, resizes it, ctrl-p ctrl-q detaches, and its exit code comes back',
    async () => {
      const root = join(work, 'state-attach')
      execFileSync(process.execPath, [cli, '--root', root, 'run', '-d', '-t', '--name', 'bg', '--', 'sh'])
      const done = join(work, 'attach-code')
      tmux(
        'new-session',
        '-d',
        '-s',
        'at',
        '-x',
        '85',
        '-y',
        '22',
        `node ${cli} --root ${root} attach bg; echo "attach-ended $?"; sleep 30`,
      )
      await sleep(300)
      tmux('send-keys', '-t', 'at', 'echo first-$((2*3)); stty size', 'Enter')
      await screenShows('at', '22 85')
      await screenShows('at', 'first-6')
      tmux('send-keys', '-t', 'at', 'C-p', 'C-q')
      await screenShows('at', 'attach-ended 0')
      const ps = spawnSync(process.execPath, [cli, '--root', root, 'ps', '--format', 'json'], { encoding: 'utf8' })
      expect(JSON.parse(ps.stdout)).toEqual([expect.objectContaining({ id: 'bg', status: 'running' })])
      // Attached again, in a window of another size; the container ends: attach returns its code.
      tmux(
        'new-session',
        '-d',
        '-s',
        'at2',
        '-x',
        '100',
        '-y',
        '30',
        `node ${cli} --root ${root} attach bg; echo $? > ${done}`,
      )
      await sleep(300)
      tmux('send-keys', '-t', 'at2', 'stty size', 'Enter')
      await screenShows('at2', '30 100')
      tmux('send-keys', '-t', 'at2', 'exit 9', 'Enter')
      expect(await codeIn(done)).toBe('9')
      // What the terminal showed is in the log.
      const logs = spawnSync(process.execPath, [cli, '--root', root, 'logs', 'bg'], { encoding: 'utf8' })
      expect(logs.stdout).toContain('first-6')
      execFileSync(process.execPath, [cli, '--root', root, 'rm', 'bg'])
    },
  )

  itNs(
    "the API: a detached container's terminal through attach(); a relayed one resized through resize()",
    async () => {
      const root = join(work, 'state-api')
      const c = await create({ command: ['sh'], tty: true, root, name: 'apitty' })
      await c.start()
      const a = await c.attach()
      let out = ''
      a.output.on('data', (d: Buffer) => (out += d.toString()))
      const until = async (text: string) => {
        for (let i = 0; i < 100 && !out.includes(text); i++) await sleep(50)
        expect(out).toContain(text)
      }
      a.resize(111, 33)
      a.write('stty size; echo "in $(cat /proc/1/comm)"\n')
      await until('33 111')
      await until('in ')
      a.write('exit 4\n')
      await a.closed
      expect(await c.wait()).toMatchObject({ exitCode: 4 })
      await expect(c.attach()).rejects.toThrow(/has stopped/)
      await c.delete()
      const notty = await create({ command: ['true'], root, name: 'plain' })
      await expect(notty.attach()).rejects.toThrow(/has no terminal/)
      await notty.delete()

      // With a terminal, `started` comes when the command runs, not when it ends: through exec,
      // and without init.
      const host = await create({ command: ['sleep', '30'], root, name: 'exectty' })
      await host.start()
      const ex = host.exec({ command: ['sh'], tty: true, stdin: 'pipe' })
      const noInit = nsSpawn({ command: ['sh'], tty: true, stdin: 'pipe', init: false })
      const soon = () => sleep(5000).then(() => -2)
      expect(await Promise.race([ex.started, soon()])).toBeGreaterThan(0)
      expect(await Promise.race([noInit.started, soon()])).toBeGreaterThan(0)
      ex.stdin!.end('exit 5\n')
      noInit.stdin!.end('exit 6\n')
      expect((await ex.exited).exitCode).toBe(5)
      expect((await noInit.exited).exitCode).toBe(6)
      await host.delete({ force: true })

      const p = nsSpawn({ command: ['sh'], tty: true, stdin: 'pipe' })
      let pout = ''
      p.stdout!.on('data', (d: Buffer) => (pout += d.toString()))
      p.resize(70, 21)
      p.stdin!.write('stty size; exit 2\n')
      expect((await p.exited).exitCode).toBe(2)
      expect(pout).toContain('21 70')
      expect(() => p.resize(0, 10)).toThrow(/cols: must be a whole number/)
    },
  )

  itNs('the API: tty: true gives the process a terminal, relayed over the pipes', async () => {
    const r = await run({
      command: ['sh', '-c', 'tty; test -t 0 && test -t 1 && echo both-ttys; ls -l /dev/console'],
      tty: true,
    })
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toMatch(/^\/dev\/pts\/\d+\r\nboth-ttys\r\n/)
    expect(r.stdout).toMatch(/^c.* 136, +\d+ .* \/dev\/console/m)
  })

  itPython("ns-oci create --console-socket hands the terminal's master to the engine (SCM_RIGHTS)", async () => {
    const sock = join(work, 'console.sock')
    const out = join(work, 'console.out')
    const receiver = join(work, 'receive.py')
    writeFileSync(
      receiver,
      `import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(c, 1024, 1)
out = open(sys.argv[2], "wb")
out.write(b"payload=" + msg + b"\\n"); out.flush()
while True:
    try:
        d = os.read(fds[0], 4096)
    except OSError:
        break
    if not d:
        break
    out.write(d); out.flush()
`,
    )
    const py = spawn('python3', [receiver, sock, out], { stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise((res) => py.stdout.once('data', res))
    const bundle = join(work, 'bundle')
    execFileSync('mkdir', ['-p', bundle])
    const bin = join(repoRoot, 'packages', 'native', 'bin', 'ns-oci')
    execFileSync(bin, ['spec', '--bundle', bundle, ...(isRoot ? [] : ['--rootless'])])
    const c = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'))
    c.root = { path: fixtureRootfs, readonly: true }
    c.process.terminal = true
    c.process.consoleSize = { height: 24, width: 77 }
    c.process.args = ['sh', '-c', 'tty; stty size; echo via-console']
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(c))
    const root = join(work, 'oci-state')
    const oci = (...a: string[]) =>
      spawnSync(bin, ['--root', root, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    const created = oci('create', '--console-socket', sock, '--bundle', bundle, 'tty1')
    expect(created.status, created.stderr).toBe(0)
    expect(oci('start', 'tty1').status).toBe(0)
    await new Promise((res) => py.on('exit', res))
    const text = readFileSync(out, 'utf8')
    expect(text).toMatch(/^payload=\/dev\/ptmx\n/)
    expect(text).toMatch(/\/dev\/pts\/\d+\r\n24 77\r\nvia-console\r\n/)
    oci('delete', '--force', 'tty1')
  })
})
