// Devices: the nodes linux.devices asks for, made in the container's /dev with their type,
// numbers, mode and owner (bound from the host's where a user namespace may not make them),
// and the allow/deny rules of linux.resources.devices, enforced by the device controller (v1)
// or a BPF program (v2) — seen by opening the nodes from inside.
import { existsSync, statSync } from 'node:fs'

import { afterAll, describe, expect } from 'vitest'

import { isRoot, itNs, itRoot } from './helpers.js'
import { ociWork } from './oci-bundle.js'

const o = ociWork('oci-devices')
afterAll(() => o.cleanUp())

/** For each path, whether the container could open it for reading and for writing. */
const probe = (paths: string[]) =>
  paths
    .map((p) => `(exec 3<${p}) 2>/dev/null && r=r || r=-; (exec 3>${p}) 2>/dev/null && w=w || w=-; echo "${p} $r$w"`)
    .join('; ')

function run(edit: (c: any) => void, cmd: string) {
  const r = o.run(['run', '--bundle', o.bundle(['sh', '-c', cmd], edit), `dev-${process.pid}`])
  return r
}

const fuse = { type: 'c', path: '/dev/fuse', major: 10, minor: 229, fileMode: 0o620, uid: 5, gid: 6 }

describe('linux.devices', () => {
  itRoot('a character device, a block device and a fifo are made with their numbers, mode and owner', () => {
    const r = run((c) => {
      c.linux.devices = [
        fuse,
        { type: 'b', path: '/dev/disk/loop7', major: 7, minor: 7, fileMode: 0o600 },
        { type: 'p', path: '/dev/pipe', fileMode: 0o644, uid: 1, gid: 2 },
      ]
      c.linux.resources.devices.push({ allow: true, type: 'c', major: 10, minor: 229, access: 'rw' })
    }, 'for d in /dev/fuse /dev/disk/loop7 /dev/pipe; do stat -c "%n %F %t:%T %a %u:%g" $d; done')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(
      '/dev/fuse character special file a:e5 620 5:6\n' +
        '/dev/disk/loop7 block special file 7:7 600 0:0\n' +
        '/dev/pipe fifo 0:0 644 1:2\n',
    )
  })

  itNs('in a user namespace a node is bound from the host’s, and one the host lacks is an error naming it', () => {
    const userns = (c: any) => {
      if (!c.linux.namespaces.some((n: any) => n.type === 'user')) {
        c.linux.namespaces.push({ type: 'user' })
        c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }]
        c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }]
        delete c.linux.resources
      }
    }
    const host = statSync('/dev/fuse', { throwIfNoEntry: false })
    if (host) {
      const r = run((c) => {
        userns(c)
        c.linux.devices = [fuse]
      }, 'stat -c "%F %t:%T" /dev/fuse')
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toBe('character special file a:e5\n')
    }
    const missing = run((c) => {
      userns(c)
      c.linux.devices = [{ type: 'c', path: '/dev/nope0', major: 10, minor: 250 }]
    }, 'true')
    expect(missing.code).not.toBe(0)
    expect(missing.stderr).toContain('/dev/nope0')
    expect(missing.stderr).toContain('linux.devices[0]')
  })

  itRoot('a node that is there already and is another device is refused', () => {
    const r = run((c) => (c.linux.devices = [{ type: 'c', path: '/dev/null', major: 1, minor: 5 }]), 'true')
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain('linux.devices[0].path: /dev/null exists in the container and is not that device')
  })
})

describe('linux.resources.devices', () => {
  itRoot('deny-all with runc’s defaults: the usual nodes open, a disk does not, nor a device made with mknod', () => {
    const r = run(
      (c) => {
        c.linux.devices = [{ type: 'b', path: '/dev/loop7', major: 7, minor: 7, fileMode: 0o600 }]
        for (const set of ['bounding', 'effective', 'permitted']) c.process.capabilities[set].push('CAP_MKNOD')
      },
      `${probe(['/dev/null', '/dev/zero', '/dev/tty', '/dev/loop7'])}; mknod /dev/mem c 1 1 && echo mknod-ok; ${probe(['/dev/mem'])}`,
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(
      '/dev/null rw\n/dev/zero rw\n/dev/tty rw\n/dev/loop7 --\nmknod-ok\n/dev/mem --\n'.replace(
        '/dev/tty rw',
        // Without a controlling terminal /dev/tty cannot be opened, whatever the rules.
        '/dev/tty --',
      ),
    )
  })

  itRoot('an allow rule opens a device for what it allows and no more; a later deny takes access away', () => {
    const r = run(
      (c) => {
        c.linux.devices = [
          { type: 'b', path: '/dev/loop7', major: 7, minor: 7, fileMode: 0o600 },
          { type: 'c', path: '/dev/cpu_dma_latency', major: 10, minor: 259, fileMode: 0o600 },
        ]
        c.linux.resources.devices.push(
          { allow: true, type: 'b', major: 7, minor: 7, access: 'r' },
          { allow: true, type: 'c', major: 10, minor: 259, access: 'rw' },
          { allow: false, type: 'c', major: 10, minor: 259, access: 'w' },
        )
      },
      probe(['/dev/loop7', '/dev/cpu_dma_latency']),
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('/dev/loop7 r-\n/dev/cpu_dma_latency r-\n')
  })

  itNs('a bad rule is refused naming it', () => {
    const r = run((c) => {
      c.linux.resources = { devices: [{ allow: true, type: 'x', access: 'r' }] }
    }, 'true')
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('linux.resources.devices[0].type:')
  })

  itNs(
    isRoot
      ? 'without root, rules that deny a node the container has are refused (checked as a user elsewhere)'
      : 'without root: rules that allow the container’s nodes hold by themselves; one that denies a node it has is refused',
    () => {
      if (isRoot) return
      const ok = run((c) => (c.linux.resources = { devices: [{ allow: false, access: 'rwm' }] }), probe(['/dev/null']))
      expect(ok.code, ok.stderr).toBe(0)
      expect(ok.stdout).toBe('/dev/null rw\n')
      if (!existsSync('/dev/fuse')) return
      const denied = run((c) => {
        c.linux.devices = [fuse]
        c.linux.resources = { devices: [{ allow: false, access: 'rwm' }] }
      }, 'true')
      expect(denied.code).toBe(1)
      expect(denied.stderr).toContain('linux.resources.devices: denies /dev/fuse, which the container has')
    },
  )
})
