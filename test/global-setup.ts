// Builds the fixture rootfs once (busybox-static when installed, else host binaries).
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

import { fixtureRootfs } from './helpers.js'

export default function setup() {
  if (!existsSync(`${fixtureRootfs}/bin/sh`)) {
    execFileSync('bash', ['tools/make-rootfs.sh', fixtureRootfs], { stdio: 'inherit' })
  }
}
