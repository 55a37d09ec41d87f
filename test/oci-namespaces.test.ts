// Namespaces a container does not create: the caller's mount namespace shared (the container
// chrooted into its root, as runc and crun do), and every kind of namespace joined by path
// from a running container — seen from the host, where /proc/PID/ns names each one, and from
// inside, by what the joiner finds there.
import { readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, describe, expect } from 'vitest'

import { fixtureRootfs, isRoot, itNs } from './helpers.js'
import { ociWork, until } from './oci-bundle.js'

const o = ociWork('oci-ns')
afterAll(() => o.cleanUp())

const nsOf = (pid: number, kind: string) => readlinkSync(`/proc/${pid}/ns/${kind}`)

/** Start a container that waits (its command sleeps) and return its host pid. */
function running(id: string, dir: string): number {
  const r = o.run(['run', '--detach', '--bundle', dir, id])
  expect(r.code, r.stderr).toBe(0)
  return o.state(id).pid
}

describe('a mount namespace not created', () => {
  itNs("shared with the caller: the container is chrooted into its root, in the caller's mount namespace", () => {
    const id = `shared-mnt-${process.pid}`
    const dir = o.bundle(['sh', '-c', 'cat /.ns-rootfs; ls /etc; exec sleep 30'], (c) => {
      c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'mount')
      c.mounts = []
      delete c.linux.maskedPaths
      delete c.linux.readonlyPaths
      c.root.readonly = false
    })
    const pid = running(id, dir)
    expect(nsOf(pid, 'mnt')).toBe(nsOf(process.pid, 'mnt'))
    // Its root is the fixture's folder: the host sees it through /proc/PID/root.
    expect(readlinkSync(`/proc/${pid}/root`)).toBe(fixtureRootfs)
    expect(readFileSync(`/proc/${pid}/root/.ns-rootfs`, 'utf8')).toBe(
      readFileSync(join(fixtureRootfs, '.ns-rootfs'), 'utf8'),
    )
    // exec runs in the same root.
    const ex = o.run(['exec', id, 'cat', '/etc/hostname'])
    expect(ex.code, ex.stderr).toBe(0)
    expect(ex.stdout).toBe(readFileSync(join(fixtureRootfs, 'etc', 'hostname'), 'utf8'))
    expect(o.run(['delete', '--force', id]).code).toBe(0)
  })

  itNs('what would change a shared mount namespace is refused, naming the field', () => {
    for (const [field, edit] of [
      ['mounts', () => {}],
      ['linux.maskedPaths', (c: any) => (c.mounts = [])],
      ['root.readonly', (c: any) => ((c.mounts = []), delete c.linux.maskedPaths, delete c.linux.readonlyPaths)],
    ] as const) {
      const dir = o.bundle(['true'], (c) => {
        c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'mount')
        edit(c)
      })
      const r = o.run(['run', '--bundle', dir, `refused-${process.pid}`])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`${field}: needs a mount namespace of its own`)
    }
  })
})

describe('namespaces joined by path', () => {
  itNs("a mount namespace joined by path: the joiner sees the other container's files", async () => {
    const a = `mnt-a-${process.pid}`
    const aPid = running(
      a,
      o.bundle(['sh', '-c', 'echo from-a > /tmp/marker; exec sleep 30'], (c) =>
        c.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid'] }),
      ),
    )
    await until(() => o.run(['exec', a, 'cat', '/tmp/marker']).stdout === 'from-a\n')
    const b = `mnt-b-${process.pid}`
    const dir = o.bundle(['sh', '-c', 'cat /tmp/marker; exec sleep 30'], (c) => {
      c.root = { path: '/' }
      c.mounts = []
      delete c.linux.maskedPaths
      delete c.linux.readonlyPaths
      c.linux.namespaces = c.linux.namespaces.map((n: any) =>
        n.type === 'mount' ? { type: 'mount', path: `/proc/${aPid}/ns/mnt` } : n,
      )
      // Rootless, A's mount namespace is owned by its user namespace: join that too.
      if (!isRoot) {
        c.linux.namespaces = c.linux.namespaces.map((n: any) =>
          n.type === 'user' ? { type: 'user', path: `/proc/${aPid}/ns/user` } : n,
        )
        delete c.linux.uidMappings
        delete c.linux.gidMappings
      }
    })
    const bPid = running(b, dir)
    expect(nsOf(bPid, 'mnt')).toBe(nsOf(aPid, 'mnt'))
    expect(await until(() => o.run(['exec', b, 'cat', '/tmp/marker']).stdout === 'from-a\n')).toBe(true)
    o.run(['delete', '--force', b])
    o.run(['delete', '--force', a])
  })

  itNs(
    'network, ipc, uts, pid, cgroup and time namespaces (and user, rootless) joined by path are the other container’s',
    () => {
      const a = `all-a-${process.pid}`
      const aPid = running(
        a,
        o.bundle(['sleep', '30'], (c) => {
          c.hostname = 'box-a'
          c.linux.namespaces.push({ type: 'time' })
        }),
      )
      const kinds = ['net', 'ipc', 'uts', 'pid', 'cgroup', 'time', ...(isRoot ? [] : ['user'])]
      const oci: Record<string, string> = {
        net: 'network',
        ipc: 'ipc',
        uts: 'uts',
        pid: 'pid',
        cgroup: 'cgroup',
        time: 'time',
        user: 'user',
      }
      const b = `all-b-${process.pid}`
      const dir = o.bundle(['sh', '-c', 'hostname; exec sleep 30'], (c) => {
        delete c.hostname
        const joined = kinds.map((k) => ({ type: oci[k], path: `/proc/${aPid}/ns/${k}` }))
        c.linux.namespaces = [
          ...c.linux.namespaces.filter((n: any) => !kinds.some((k) => oci[k] === n.type)),
          ...joined,
        ]
        if (!isRoot) {
          delete c.linux.uidMappings
          delete c.linux.gidMappings
        }
      })
      const bPid = running(b, dir)
      for (const k of kinds) expect(nsOf(bPid, k), k).toBe(nsOf(aPid, k))
      // Its own mount namespace still.
      expect(nsOf(bPid, 'mnt')).not.toBe(nsOf(aPid, 'mnt'))
      expect(o.run(['exec', b, 'hostname']).stdout).toBe('box-a\n')
      // In A's pid namespace, B's processes are seen by A.
      const ps = o.run(['exec', a, 'ps', '-o', 'comm'])
      expect(ps.stdout.split('\n').filter((l) => l.trim() === 'sleep').length).toBeGreaterThanOrEqual(2)
      o.run(['delete', '--force', b])
      o.run(['delete', '--force', a])
    },
  )
})
