// ns-oci driven the way engines drive runc: create, state, start, kill, delete, run, list,
// spec, features, with the exit codes, pid files and --log lines they read.
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { validateSpec } from '@ns/core'

import { alive, fixtureRootfs, isRoot, itNs, repoRoot } from './helpers.js'

const bin = join(repoRoot, 'packages', 'native', 'bin', 'ns-oci')
const work = mkdtempSync(join(tmpdir(), 'ns-oci-test-'))
const root = join(work, 'state')
let n = 0

afterAll(() => {
  for (const id of listIds()) oci('delete', '--force', id)
  rmSync(work, { recursive: true, force: true })
})

function oci(...args: string[]) {
  // Output goes through files: a created container inherits them and keeps them open, and
  // spawnSync would wait for pipes to close.
  const out = join(work, `out-${++n}`)
  const err = join(work, `err-${n}`)
  const fo = openSync(out, 'w')
  const fe = openSync(err, 'w')
  const r = spawnSync(bin, ['--root', root, ...args], { stdio: ['ignore', fo, fe], timeout: 20_000 })
  closeSync(fo)
  closeSync(fe)
  return { code: r.status, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') }
}

function listIds(): string[] {
  const r = oci('list', '--format', 'json')
  return r.code === 0 ? (JSON.parse(r.stdout) as Array<{ id: string }>).map((c) => c.id) : []
}

/** A bundle made with `ns-oci spec` (rootless when we are not root) whose root is the fixture. */
function bundle(args: string[], edit: (c: any) => void = () => {}): string {
  const dir = join(work, `bundle-${++n}`)
  spawnSync('mkdir', ['-p', dir])
  const r = spawnSync(bin, ['spec', '--bundle', dir, ...(isRoot ? [] : ['--rootless'])], { encoding: 'utf8' })
  expect(r.status, r.stderr).toBe(0)
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))
  c.root = { path: fixtureRootfs, readonly: true }
  c.process.args = args
  edit(c)
  writeFileSync(join(dir, 'config.json'), JSON.stringify(c))
  return dir
}

function state(id: string) {
  const r = oci('state', id)
  return r.code === 0 ? JSON.parse(r.stdout) : { error: r.stderr }
}

describe('ns-oci for engines', () => {
  it('--version prints three lines as runc does', () => {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8' })
    expect(r.stdout).toMatch(/^ns-oci version \d+\.\d+\.\d+\ncommit: .+\nspec: 1\.2\.0\n$/)
  })

  it('spec writes a config.json that the runtime-spec schema accepts; features says what is supported', () => {
    const dir = bundle(['true'])
    expect(() => validateSpec(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')))).not.toThrow()
    const again = spawnSync(bin, ['spec', '--bundle', dir], { encoding: 'utf8' })
    expect(again.status).toBe(1)
    expect(again.stderr).toContain('already exists')
    const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))
    expect(spec.process.capabilities.bounding).toEqual(['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'])
    const f = JSON.parse(spawnSync(bin, ['features'], { encoding: 'utf8' }).stdout)
    expect(f.linux.capabilities).toContain('CAP_SYS_ADMIN')
    expect(f.ociVersionMax).toBe('1.2.0')
    expect(f.linux.namespaces).toEqual(expect.arrayContaining(['user', 'pid', 'network', 'mount', 'time']))
  })

  itNs('create waits, start releases, kill stops, delete removes: the states in between are right', async () => {
    const id = `life-${process.pid}`
    const dir = bundle(['sh', '-c', 'echo started as $$; exec sleep 30'])
    const pidFile = join(work, `${id}.pid`)
    // The container inherits create's stdio, as engines expect; read it from a pipe.
    const create = spawn(bin, ['--root', root, 'create', '--bundle', dir, '--pid-file', pidFile, id], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    create.stdout.on('data', (d: Buffer) => (out += d.toString()))
    let err = ''
    create.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const code = await new Promise<number | null>((res) => create.on('exit', res))
    expect(code, err).toBe(0)

    const s1 = state(id)
    expect(s1.status).toBe('created')
    expect(s1.id).toBe(id)
    expect(s1.bundle).toBe(dir)
    expect(Number(readFileSync(pidFile, 'utf8'))).toBe(s1.pid)
    expect(alive(s1.pid)).toBe(true)
    expect(out).toBe('') // nothing ran yet

    expect(oci('start', id).code).toBe(0)
    for (let i = 0; i < 100 && !out; i++) await new Promise((r) => setTimeout(r, 20))
    expect(out).toBe('started as 1\n')
    expect(state(id).status).toBe('running')
    const again = oci('start', id)
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('cannot start container')

    expect(oci('kill', id, 'KILL').code).toBe(0)
    for (let i = 0; i < 100 && alive(s1.pid); i++) await new Promise((r) => setTimeout(r, 20))
    expect(state(id).status).toBe('stopped')
    expect(oci('kill', id, 'KILL').stderr).toContain('is not running')

    expect(oci('delete', id).code).toBe(0)
    expect(existsSync(join(root, id))).toBe(false)
    expect(state(id).error).toContain(`container "${id}" does not exist`)
  })

  itNs('delete refuses a running container without --force; --force kills every process and removes it', async () => {
    const id = `force-${process.pid}`
    const dir = bundle(['sh', '-c', 'sleep 30 & sleep 30'])
    expect(oci('run', '--detach', '--bundle', dir, id).code).toBe(0)
    const s = state(id)
    expect(s.status).toBe('running')
    const refused = oci('delete', id)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain('it is running')
    expect(oci('delete', '--force', id).code).toBe(0)
    expect(alive(s.pid)).toBe(false)
    expect(listIds()).not.toContain(id)
  })

  itNs("run in the foreground exits with the container's status and leaves no state behind", () => {
    const id = `fg-${process.pid}`
    const r = oci('run', '--bundle', bundle(['sh', '-c', 'echo hi; exit 7']), id)
    expect(r.stdout).toBe('hi\n')
    expect(r.code).toBe(7)
    expect(listIds()).not.toContain(id)
  })

  itNs('no descriptor of the caller leaks into the container, unless --preserve-fds keeps it', async () => {
    const fds = async (extra: string[]) => {
      const id = `fds-${process.pid}-${++n}`
      const c = spawn(
        bin,
        ['--root', root, 'run', ...extra, '--bundle', bundle(['sh', '-c', 'ls /proc/$$/fd; true']), id],
        {
          stdio: ['ignore', 'pipe', 'inherit', 'pipe', 'pipe'],
        },
      )
      let out = ''
      c.stdout!.on('data', (d: Buffer) => (out += d.toString()))
      await new Promise((res) => c.on('close', res))
      // No pipeline in the script: a shell holds a pipeline's descriptors while it runs.
      return out.trim().split('\n').join(' ')
    }
    expect(await fds([])).toBe('0 1 2')
    expect(await fds(['--preserve-fds', '1'])).toBe('0 1 2 3')
  })

  itNs(
    'exec: in the foreground with its exit code, or detached with a pid file on the host, or from --process',
    async () => {
      const id = `exec-${process.pid}`
      expect(oci('run', '--detach', '--bundle', bundle(['sleep', '30']), id).code).toBe(0)
      const fg = oci('exec', '--env', 'X=1', '--cwd', '/tmp', id, 'sh', '-c', 'echo "$X $(pwd) $$"; exit 3')
      expect(fg.stdout).toMatch(/^1 \/tmp \d+\n$/)
      expect(fg.code).toBe(3)
      const pidFile = join(work, `${id}-exec.pid`)
      expect(oci('exec', '--detach', '--pid-file', pidFile, id, 'sleep', '30').code).toBe(0)
      const pid = Number(readFileSync(pidFile, 'utf8'))
      expect(alive(pid)).toBe(true)
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/NSpid:\s+\d+\s+\d+/) // a pid in the container's namespace too
      const proc = join(work, 'process.json')
      writeFileSync(
        proc,
        JSON.stringify({
          args: ['sh', '-c', 'echo from-process-json'],
          cwd: '/',
          env: ['PATH=/bin'],
          user: { uid: 0, gid: 0 },
        }),
      )
      expect(oci('exec', '--process', proc, id).stdout).toBe('from-process-json\n')
      const ps = JSON.parse(oci('ps', '--format', 'json', id).stdout) as number[]
      expect(ps).toContain(pid)
      expect(ps).toContain(state(id).pid)
      expect(oci('ps', id).stdout).toMatch(/^PID\s+CMD\n/)
      expect(oci('delete', '--force', id).code).toBe(0)
      for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20))
      expect(alive(pid)).toBe(false) // the exec'd process died with its container
    },
  )

  itNs('the capability sets of the spec are applied: bounding, effective, permitted', () => {
    const r = oci(
      'run',
      '--bundle',
      bundle(['sh', '-c', 'grep -E "^Cap(Prm|Eff|Bnd)" /proc/self/status']),
      `caps-${process.pid}`,
    )
    // CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10), as `spec` writes them.
    expect(r.stdout).toBe('CapPrm:\t0000000020000420\nCapEff:\t0000000020000420\nCapBnd:\t0000000020000420\n')
    const bad = oci(
      'run',
      '--bundle',
      bundle(['true'], (c) => c.process.capabilities.effective.push('CAP_NOPE')),
      `badcaps-${process.pid}`,
    )
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('process.capabilities.effective[3]: unknown capability "CAP_NOPE"')
  })

  itNs('a cgroup mount, as runc spec writes one, shows the cgroup tree read-only', () => {
    const dir = bundle(
      ['sh', '-c', 'grep -c " /sys/fs/cgroup" /proc/self/mountinfo; mkdir /sys/fs/cgroup/x 2>&1; true'],
      (c) =>
        c.mounts.push({
          destination: '/sys/fs/cgroup',
          type: 'cgroup',
          source: 'cgroup',
          options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
        }),
    )
    const r = oci('run', '--bundle', dir, `cg-${process.pid}`)
    expect(r.code, r.stderr).toBe(0)
    expect(Number(r.stdout.split('\n')[0])).toBeGreaterThan(0)
    expect(r.stdout).toMatch(/Read-only file system/)
  })

  itNs('hooks run at their points of the lifecycle, each with the state on stdin', async () => {
    const id = `hooks-${process.pid}`
    const logDir = mkdtempSync(join(work, 'hooklog-'))
    spawnSync('chmod', ['777', logDir])
    const hook = (name: string, file: string) => ({
      path: '/bin/sh',
      args: ['sh', '-c', `s=$(cat); echo "${name} $s" >> ${file}`],
    })
    const host = join(logDir, 'log')
    const dir = bundle(['sh', '-c', 'echo run >> /hooklog/log'], (c) => {
      c.mounts.push({ destination: '/hooklog', type: 'bind', source: logDir, options: ['rbind', 'rw'] })
      c.hooks = {
        prestart: [hook('prestart', host)],
        createRuntime: [hook('createRuntime', host)],
        createContainer: [hook('createContainer', host)],
        startContainer: [hook('startContainer', '/hooklog/log')], // runs inside the container
        poststart: [hook('poststart', host)],
        poststop: [hook('poststop', host)],
      }
    })
    expect(oci('create', '--bundle', dir, id).code).toBe(0)
    const pid = state(id).pid
    expect(oci('start', id).code).toBe(0)
    for (let i = 0; i < 100 && state(id).status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 20))
    expect(oci('delete', id).code).toBe(0)
    const lines = readFileSync(host, 'utf8').trim().split('\n')
    const names = lines.map((l) => l.split(' ')[0])
    // In order up to start; then the command and poststart race; poststop comes last.
    expect(names.slice(0, 4)).toEqual(['prestart', 'createRuntime', 'createContainer', 'startContainer'])
    expect(names.slice(4, 6).sort()).toEqual(['poststart', 'run'])
    expect(names[6]).toBe('poststop')
    const byName = Object.fromEntries(
      lines.filter((l) => l.includes('{')).map((l) => [l.split(' ')[0], JSON.parse(l.slice(l.indexOf(' ') + 1))]),
    )
    expect(byName.createRuntime).toMatchObject({ id, status: 'created', pid, bundle: dir })
    expect(byName.poststart).toMatchObject({ id, status: 'running', pid })
    expect(byName.poststop).toMatchObject({ id, status: 'stopped' })
    expect(lines).toContain('run')

    const failing = bundle(
      ['true'],
      (c) => (c.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', 'exit 3'] }] }),
    )
    const r = oci('create', '--bundle', failing, `${id}-fail`)
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('hook hooks.createRuntime[0] (/bin/sh) failed')
    expect(listIds()).not.toContain(`${id}-fail`)
  })

  itNs('list shows each container with its status, as a table or JSON', () => {
    const id = `list-${process.pid}`
    expect(oci('create', '--bundle', bundle(['true']), id).code).toBe(0)
    const all = JSON.parse(oci('list', '--format', 'json').stdout) as Array<{ id: string; status: string }>
    expect(all.find((c) => c.id === id)?.status).toBe('created')
    expect(oci('list').stdout).toMatch(new RegExp(`^${id}\\s+\\d+\\s+created`, 'm'))
    expect(oci('list', '--quiet').stdout.split('\n')).toContain(id)
    expect(oci('delete', id).code).toBe(0) // a created container is deleted without --force
  })

  it('a global flag with a value it does not take is a usage error: exit 1, the flag named, nothing done', () => {
    for (const [args, message] of [
      [['--log-format', 'xml', 'list'], 'ns-oci: --log-format: "xml" is not one of text, json\n'],
      [['--rootless', 'maybe', 'list'], 'ns-oci: --rootless: "maybe" is not one of true, false, auto\n'],
      [['--root'], 'ns-oci: flag --root needs a value\n'],
    ] as const) {
      const r = spawnSync(bin, args, { encoding: 'utf8' })
      expect(r.status, args.join(' ')).toBe(1)
      expect(r.stderr, args.join(' ')).toBe(`${message}\`ns-oci --help\` lists the global flags\n`)
      expect(r.stdout, args.join(' ')).toBe('')
    }
  })

  itNs('errors: a one-line message on stderr, exit 1, and a JSON line in --log for the engine', () => {
    const log = join(work, 'log.json')
    const dir = bundle(['true'], (c) => (c.ociVersion = '2.0.0'))
    const r = spawnSync(bin, ['--root', root, '--log', log, '--log-format', 'json', 'create', '--bundle', dir, 'bad'], {
      encoding: 'utf8',
    })
    expect(r.status).toBe(1)
    expect(r.stderr).toBe('ns-oci: ociVersion: "2.0.0" is not a 1.x version\n')
    const last = JSON.parse(readFileSync(log, 'utf8').trim().split('\n').at(-1)!)
    expect(last).toMatchObject({ level: 'error', msg: 'ociVersion: "2.0.0" is not a 1.x version' })

    const missing = bundle(['/no/such/program'])
    const m = oci('create', '--bundle', missing, 'missing-cmd')
    expect(m.code).toBe(1)
    expect(m.stderr).toContain('exec "/no/such/program": no such file or directory')
    expect(listIds()).not.toContain('missing-cmd')

    const id = `dup-${process.pid}`
    expect(oci('create', '--bundle', bundle(['true']), id).code).toBe(0)
    expect(oci('create', '--bundle', bundle(['true']), id).stderr).toContain(`container "${id}" already exists`)
    expect(oci('delete', id).code).toBe(0)
    expect(oci('kill', 'nope').stderr).toContain('container "nope" does not exist')
    expect(oci('create', '--bundle', bundle(['true']), '../evil').stderr).toContain('is not a valid container id')
  })
})
