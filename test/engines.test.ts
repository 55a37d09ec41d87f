// ns-oci driven by real engines, as their users drive them: podman (through conmon) and
// containerd (through its runc shim, `ctr run --runc-binary`). Root only: both engines keep
// root-owned stores here. Everything they store lives in a temporary folder, removed after.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect } from 'vitest'

import { fixtureRootfs, isRoot, itWhen, repoRoot, usernsSkipReason } from './helpers.js'

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0
const reason = usernsSkipReason ?? (!isRoot ? 'needs root (the engines keep root-owned stores)' : undefined)
const itPodman = itWhen(reason ?? (has('podman') ? undefined : 'needs podman'))
const itCtr = itWhen(
  reason ??
    (has('containerd') && has('ctr') && has('podman')
      ? undefined
      : 'needs containerd, ctr and podman (to make the image archive)'),
)

const bin = join(repoRoot, 'packages', 'native', 'bin', 'ns-oci')
const work = mkdtempSync(join(tmpdir(), 'ns-engines-'))
const conf = join(work, 'containers.conf')
const podmanArgs = ['--root', join(work, 'storage'), '--runroot', join(work, 'run'), '--runtime', bin]
const image = 'localhost/nsfixture:latest'
const env = { ...process.env, CONTAINERS_CONF: conf }

function podman(...args: string[]) {
  const r = spawnSync('podman', [...podmanArgs, ...args], { encoding: 'utf8', env, timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Run a command under a real pseudo-terminal (engines check for one with -t). */
function underTty(cmd: string) {
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env, timeout: 60_000 })
  return { code: r.status, stdout: r.stdout }
}

let containerd: ChildProcess | undefined
const ctrSock = join(work, 'containerd.sock')
const ctr = (...args: string[]) => {
  const r = spawnSync('ctr', ['-a', ctrSock, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

beforeAll(async () => {
  if (reason || !has('podman')) return
  // Per the notes of this machine: cgroupfs, a file event log, no raised ulimits.
  writeFileSync(
    conf,
    '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n',
  )
  const tar = execFileSync('tar', ['-C', fixtureRootfs, '-c', '.'], { maxBuffer: 64 << 20 })
  const imp = spawnSync('podman', [...podmanArgs, 'import', '-', image], { input: tar, env, encoding: 'utf8' })
  expect(imp.status, imp.stderr).toBe(0)
  if (has('containerd') && has('ctr')) {
    const archive = join(work, 'fixture.tar')
    expect(podman('save', '--format', 'oci-archive', '-o', archive, image).code).toBe(0)
    containerd = spawn(
      'containerd',
      ['--root', join(work, 'ctd-root'), '--state', join(work, 'ctd-state'), '--address', ctrSock],
      { stdio: 'ignore' },
    )
    for (let i = 0; i < 100 && !existsSync(ctrSock); i++) await new Promise((r) => setTimeout(r, 50))
    const r = ctr('image', 'import', archive)
    expect(r.code, r.stderr).toBe(0)
  }
}, 120_000)

afterAll(() => {
  if (existsSync(conf)) {
    podman('rm', '--all', '--force')
    podman('rmi', '--all', '--force')
  }
  if (containerd) {
    for (const t of ctr('task', 'ls', '-q').stdout.split('\n').filter(Boolean)) ctr('task', 'kill', '-s', 'SIGKILL', t)
    for (const c of ctr('container', 'ls', '-q').stdout.split('\n').filter(Boolean)) {
      ctr('task', 'delete', '--force', c)
      ctr('container', 'rm', c)
    }
    containerd.kill('SIGTERM')
  }
  const left = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(work))
  for (const l of left.reverse()) spawnSync('umount', ['-l', l.split(' ')[4]!])
  rmSync(work, { recursive: true, force: true })
}, 60_000)

const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers')

/** The host's folder of `pid`'s cgroup for a v1 controller, or its v2 folder. */
function cgroupOf(pid: number, controller: string): string {
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [, names, path] = line.split(':') as [string, string, string]
    if (v2 && names === '') return join('/sys/fs/cgroup', path)
    if (!v2 && names.split(',').includes(controller)) return join('/sys/fs/cgroup', controller, path)
  }
  throw new Error(`no ${controller} cgroup for ${pid}`)
}

/** Whether the kernel says `pid`'s cgroup is frozen. */
function frozen(pid: number): boolean {
  const dir = cgroupOf(pid, 'freezer')
  return v2
    ? /^frozen 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'))
    : readFileSync(join(dir, 'freezer.state'), 'utf8').trim() === 'FROZEN'
}

/** The memory limit of `pid`'s cgroup, in bytes. */
function memoryLimit(pid: number): string {
  const dir = cgroupOf(pid, 'memory')
  return readFileSync(join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), 'utf8').trim()
}

describe('podman --runtime ns-oci', () => {
  itPodman('run: the output and the exit code come back through conmon', () => {
    const r = podman('run', '--rm', image, 'sh', '-c', 'echo hello from podman; cat /proc/1/comm; exit 7')
    expect(r.stdout).toBe('hello from podman\nsh\n')
    expect(r.code).toBe(7)
  })

  itPodman('run -d, ps, exec, stop, rm', () => {
    const run = podman(
      'run',
      '-d',
      '--name',
      'pm1',
      image,
      'sh',
      '-c',
      'trap "exit 0" TERM; while :; do sleep 0.1; done',
    )
    expect(run.code, run.stderr).toBe(0)
    expect(podman('ps', '--format', '{{.Names}} {{.Status}}').stdout).toMatch(/^pm1 Up/m)
    const ex = podman('exec', 'pm1', 'sh', '-c', 'echo exec-ok; cat /proc/1/cmdline | tr "\\0" " "')
    expect(ex.code, ex.stderr).toBe(0)
    expect(ex.stdout).toMatch(/^exec-ok\nsh -c trap/)
    expect(podman('stop', '-t', '5', 'pm1').code).toBe(0)
    expect(podman('ps', '-a', '--format', '{{.Names}} {{.Status}}').stdout).toMatch(/^pm1 Exited \(0\)/m)
    expect(podman('rm', 'pm1').code).toBe(0)
    expect(podman('ps', '-a', '-q').stdout).toBe('')
  })

  itPodman('pause, unpause and update go to ns-oci: the cgroup frozen, then thawed; a new memory limit in it', () => {
    const run = podman('run', '-d', '--name', 'pm2', '-m', '64m', image, 'sh', '-c', 'while :; do sleep 0.1; done')
    expect(run.code, run.stderr).toBe(0)
    const pid = Number(podman('inspect', '--format', '{{.State.Pid}}', 'pm2').stdout.trim())
    expect(pid).toBeGreaterThan(0)
    const paused = podman('pause', 'pm2')
    expect(paused.code, paused.stderr).toBe(0)
    expect(frozen(pid)).toBe(true)
    expect(podman('ps', '-a', '--format', '{{.Names}} {{.Status}}').stdout).toMatch(/^pm2 Paused/m)
    const unpaused = podman('unpause', 'pm2')
    expect(unpaused.code, unpaused.stderr).toBe(0)
    expect(frozen(pid)).toBe(false)
    expect(podman('ps', '--format', '{{.Names}} {{.Status}}').stdout).toMatch(/^pm2 Up/m)
    expect(memoryLimit(pid)).toBe(String(64 << 20))
    const updated = podman('update', '--memory', '128m', 'pm2')
    expect(updated.code, updated.stderr).toBe(0)
    expect(memoryLimit(pid)).toBe(String(128 << 20))
    expect(podman('rm', '-f', '-t', '0', 'pm2').code).toBe(0)
  })

  itPodman('run -t: the container gets a terminal through --console-socket', () => {
    const r = underTty(`podman ${podmanArgs.join(' ')} run --rm -t ${image} sh -c 'tty; echo tty-ok'`)
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+\r*\ntty-ok/)
  })
})

describe('containerd (ctr) with --runc-binary ns-oci', () => {
  itCtr('ctr run: output and exit code through the shim', () => {
    const r = ctr('run', '--rm', '--runc-binary', bin, image, 'c1', 'sh', '-c', 'echo hello from containerd; exit 4')
    expect(r.stdout).toBe('hello from containerd\n')
    expect(r.code).toBe(4)
  })

  itCtr('ctr run -d, task exec, task kill, task delete', async () => {
    expect(ctr('run', '-d', '--runc-binary', bin, image, 'c2', 'sleep', '100').code).toBe(0)
    expect(ctr('task', 'ls').stdout).toMatch(/^c2\s+\d+\s+RUNNING/m)
    const ex = ctr('task', 'exec', '--exec-id', 'e1', 'c2', 'sh', '-c', 'echo exec-in-ctd; cat /proc/1/cmdline')
    expect(ex.stdout).toBe('exec-in-ctd\nsleep\u0000100\u0000')
    expect(ctr('task', 'kill', '-s', 'SIGKILL', 'c2').code).toBe(0)
    for (let i = 0; i < 100 && !/STOPPED/.test(ctr('task', 'ls').stdout); i++)
      await new Promise((r) => setTimeout(r, 50))
    expect(ctr('task', 'ls').stdout).toMatch(/^c2\s+\d+\s+STOPPED/m)
    expect(ctr('task', 'delete', 'c2').code).toBe(0)
    expect(ctr('container', 'rm', 'c2').code).toBe(0)
  })

  itCtr('ctr task pause and resume go to ns-oci: PAUSED with the cgroup frozen, then RUNNING', async () => {
    expect(ctr('run', '-d', '--runc-binary', bin, image, 'c4', 'sleep', '100').code).toBe(0)
    const pid = Number(/^c4\s+(\d+)/m.exec(ctr('task', 'ls').stdout)?.[1])
    expect(pid).toBeGreaterThan(0)
    const paused = ctr('task', 'pause', 'c4')
    expect(paused.code, paused.stderr).toBe(0)
    expect(ctr('task', 'ls').stdout).toMatch(/^c4\s+\d+\s+PAUSED/m)
    expect(frozen(pid)).toBe(true)
    const resumed = ctr('task', 'resume', 'c4')
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(ctr('task', 'ls').stdout).toMatch(/^c4\s+\d+\s+RUNNING/m)
    expect(frozen(pid)).toBe(false)
    expect(ctr('task', 'kill', '-s', 'SIGKILL', 'c4').code).toBe(0)
    for (let i = 0; i < 100 && !/^c4\s+\d+\s+STOPPED/m.test(ctr('task', 'ls').stdout); i++)
      await new Promise((r) => setTimeout(r, 50))
    expect(ctr('task', 'delete', 'c4').code).toBe(0)
    expect(ctr('container', 'rm', 'c4').code).toBe(0)
  })

  itCtr('ctr run -t: a terminal for the container', () => {
    const r = underTty(`ctr -a ${ctrSock} run --rm -t --runc-binary ${bin} ${image} c3 sh -c 'tty; echo ctd-tty'`)
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+\r*\nctd-tty/)
  })
})
