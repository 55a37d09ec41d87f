// ns-oci's root filesystem and mounts as the runtime spec words them: linux.rootfsPropagation
// seen in the container's mountinfo and by mount events crossing (or not) from the host, the
// forms root.path may take, and the mount options of binds (recursive forms, refusals).
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, describe, expect } from 'vitest'

import { fixtureRootfs, itNs, itRoot } from './helpers.js'
import { ociBin, ociWork, until } from './oci-bundle.js'

const o = ociWork('oci-mounts')
const mounted: string[] = []

afterAll(() => {
  for (const m of mounted.reverse()) spawnSync('umount', ['-l', m])
  o.cleanUp()
})

function sh(cmd: string) {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' })
  expect(r.status, r.stderr).toBe(0)
  return r.stdout
}

/** The optional fields of the mount at `/` in a mountinfo (shared:N, master:N, unbindable). */
function rootPropagation(mountinfo: string): string {
  const line = mountinfo.split('\n').find((l) => l.split(' ')[4] === '/')!
  const fields = line.split(' ')
  return fields
    .slice(6, fields.indexOf('-'))
    .map((f) => f.replace(/:\d+$/, ''))
    .join(' ')
}

/** A copy of the fixture's tree on the host, as a mount of its own that is shared. */
function sharedRoot(): string {
  const dir = join(o.work, `root-${mounted.length}`)
  mkdirSync(dir)
  sh(`mount --bind ${fixtureRootfs} ${dir} && mount --make-shared ${dir}`)
  mounted.push(dir)
  return dir
}

describe('linux.rootfsPropagation', () => {
  itNs('each value is what the container sees at / once it runs: private, slave, shared, unbindable', () => {
    const seen = (value: string | undefined) => {
      const dir = o.bundle(['cat', '/proc/self/mountinfo'], (c) => {
        if (value) c.linux.rootfsPropagation = value
      })
      const r = o.run(['run', '--bundle', dir, `prop-${value ?? 'default'}-${process.pid}`])
      expect(r.code, r.stderr).toBe(0)
      return rootPropagation(r.stdout)
    }
    expect(seen(undefined)).toBe('')
    expect(seen('private')).toBe('')
    expect(seen('rprivate')).toBe('')
    expect(seen('unbindable')).toBe('unbindable')
    expect(seen('runbindable')).toBe('unbindable')
    // A slave of the host's own mount (of its root's filesystem), and a peer group of its own.
    // On a host whose mounts are private, the slave has no master to name.
    const hostShared = /shared:/.test(readFileSync('/proc/self/mountinfo', 'utf8').split('\n')[0]!)
    expect(seen('rslave')).toBe(hostShared ? 'master' : '')
    expect(seen('shared').split(' ')).toContain('shared')
    expect(seen('rshared').split(' ')).toContain('shared')
    const bad = o.run(['run', '--bundle', o.bundle(['true'], (c) => (c.linux.rootfsPropagation = 'sideways')), 'x'])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('linux.rootfsPropagation: unknown propagation "sideways"')
  })

  itRoot('slave: a mount the host makes under the root later shows up inside; private: it does not', async () => {
    for (const [value, expected] of [
      ['rslave', 'tmpfs'],
      ['rprivate', 'none'],
    ] as const) {
      const root = sharedRoot()
      const id = `prop-host-${value}-${process.pid}`
      const dir = o.bundle(
        [
          'sh',
          '-c',
          'while [ ! -e /tmp/go ]; do sleep 0.05; done; grep -q " /root " /proc/self/mountinfo && echo tmpfs || echo none',
        ],
        (c) => {
          c.root = { path: root, readonly: false }
          c.linux.rootfsPropagation = value
          // The container's /tmp is the host's folder of the test, where the go-ahead lands.
          c.mounts.push({ destination: '/tmp', type: 'bind', source: o.work, options: ['rbind'] })
        },
      )
      const log = join(o.work, `${id}.out`)
      // Started detached, its output goes where its stdout is: a file of ours.
      const r = spawnSync(
        'sh',
        ['-c', `exec "$0" --root "$1" run --detach --bundle "$2" "$3" > "$4" 2>&1`, ociBin, o.root, dir, id, log],
        { encoding: 'utf8', timeout: 20_000 },
      )
      expect(r.status, readFileSync(log, 'utf8')).toBe(0)
      sh(`mount -t tmpfs probe ${root}/root`)
      mounted.push(`${root}/root`)
      writeFileSync(join(o.work, 'go'), '')
      await until(() => o.state(id).status === 'stopped')
      expect(readFileSync(log, 'utf8').trim()).toBe(expected)
      o.run(['delete', id])
      sh(`umount ${root}/root`)
      mounted.pop()
      spawnSync('rm', ['-f', join(o.work, 'go')])
    }
  })

  itNs('shared: a mount made in the container reaches a mount namespace made from it (private: not)', () => {
    for (const [value, count] of [
      ['rshared', '1'],
      ['rprivate', '0'],
    ] as const) {
      const dir = o.bundle(
        [
          'sh',
          '-c',
          // A child in a copy of the container's mount namespace (a slave of its peers) waits;
          // the container mounts a tmpfs on /root; the child sees it there, or not.
          'unshare -m --propagation slave sh -c "while [ ! -e /dev/shm/go ]; do sleep 0.05; done; grep -c \\" /root \\" /proc/self/mountinfo" & sleep 0.3; mount -t tmpfs probe /root; touch /dev/shm/go; wait',
        ],
        (c) => {
          c.linux.rootfsPropagation = value
          for (const set of ['bounding', 'effective', 'permitted']) c.process.capabilities[set].push('CAP_SYS_ADMIN')
          c.mounts.push({ destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid'] })
        },
      )
      const r = o.run(['run', '--bundle', dir, `prop-shared-${process.pid}`])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout.trim(), value).toBe(count)
    }
  })
})

describe('root.path', () => {
  itNs('a trailing /. and a path relative to the bundle both name the root', () => {
    for (const path of [`${fixtureRootfs}/.`, 'rootfs/.', 'rootfs', './rootfs/']) {
      const dir = o.bundle(['cat', '/etc/passwd'], (c) => (c.root = { path, readonly: true }))
      symlinkSync(fixtureRootfs, join(dir, 'rootfs'))
      const r = o.run(['run', '--bundle', dir, `rootpath-${process.pid}`])
      expect(r.code, `${path}: ${r.stderr}`).toBe(0)
      expect(r.stdout).toBe(readFileSync(join(fixtureRootfs, 'etc', 'passwd'), 'utf8'))
    }
  })
})

describe('mount options of binds', () => {
  itRoot('ro makes the bound mount read-only and rro every mount below it too; nosymfollow stops symlinks', () => {
    const src = join(o.work, 'src')
    mkdirSync(join(src, 'sub'), { recursive: true })
    sh(`mount -t tmpfs sub ${src}/sub`)
    mounted.push(`${src}/sub`)
    symlinkSync('/etc/passwd', join(src, 'link'))
    const probe =
      'for d in /data /root; do touch $d/f 2>/dev/null && echo "$d rw" || echo "$d ro"; touch $d/sub/f 2>/dev/null && echo "$d/sub rw" || echo "$d/sub ro"; done; cat /hooklog/link >/dev/null 2>&1 && echo follows || echo stops; cat /data/link > /dev/null && echo follows'
    const dir = o.bundle(['sh', '-c', probe], (c) => {
      c.mounts.push(
        // Folders the fixture has: a mount point made in a bind of it would be made in it.
        { destination: '/data', type: 'bind', source: src, options: ['rbind', 'ro'] },
        { destination: '/root', type: 'bind', source: src, options: ['rbind', 'rro'] },
        { destination: '/hooklog', type: 'bind', source: src, options: ['rbind', 'nosymfollow'] },
      )
    })
    const r = o.run(['run', '--bundle', dir, `opts-${process.pid}`])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('/data ro\n/data/sub rw\n/root ro\n/root/sub ro\nstops\nfollows\n')
  })

  itNs('an option a bind cannot apply is refused, naming the mount and the option', () => {
    for (const opt of ['mode=0755', 'lazytime', 'sync']) {
      const dir = o.bundle(['true'], (c) =>
        c.mounts.push({ destination: '/data', type: 'bind', source: fixtureRootfs, options: ['rbind', opt] }),
      )
      const r = o.run(['run', '--bundle', dir, `badopt-${process.pid}`])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`options: "${opt}" cannot be applied to a bind mount`)
    }
  })
})
