// The memory of the monitor process that watches one detached @ns/core container (running
// `sleep 30`), read from /proc: its RSS and, from smaps_rollup, its proportional set size.

import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import path from 'node:path'
import { firstLine, FIXTURE } from '../bench-common.mjs'
import { ns, nsForceDelete, nsImportError, nsNamespaces } from './ns-core.mjs'
import { uniqueId } from './processes.mjs'

/** The monitor of one detached container running `sleep 30` in the state root `nsState`: its memory, in KiB. */
export async function monitorMemory(nsState) {
  const out = {
    command: ['sleep', '30'],
    monitorPid: null,
    monitorCommand: null,
    monitorExe: null,
    otherProcessesOfSameBinary: null,
    vmRssKiB: null,
    rssAnonKiB: null,
    rssFileKiB: null,
    pssKiB: null,
    pssAnonKiB: null,
    pssFileKiB: null,
    privateKiB: null,
    error: null,
  }
  if (nsImportError) {
    out.error = nsImportError
    return out
  }
  const id = uniqueId('nsbench-monitor')
  let c = null
  try {
    c = await ns.runDetached({
      command: ['sleep', '30'],
      rootfs: FIXTURE,
      namespaces: nsNamespaces(false),
      init: false,
      root: nsState,
      name: id,
    })
    // Let it settle: the figures are those of a monitor that is just watching.
    await new Promise((r) => setTimeout(r, 200))
    const state = JSON.parse(readFileSync(path.join(nsState, id, 'state.json'), 'utf8'))
    const pid = state.monitorPid
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no monitorPid in ${id}/state.json`)
    out.monitorPid = pid
    out.monitorCommand = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')
    out.monitorExe = readlinkSync(`/proc/${pid}/exe`)
    const field = (text, name) => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)
      return m ? Number(m[1]) : null
    }
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
    out.vmRssKiB = field(status, 'VmRSS')
    out.rssAnonKiB = field(status, 'RssAnon')
    out.rssFileKiB = field(status, 'RssFile')
    out.pssKiB = field(rollup, 'Pss')
    out.pssAnonKiB = field(rollup, 'Pss_Anon')
    out.pssFileKiB = field(rollup, 'Pss_File')
    const pc = field(rollup, 'Private_Clean')
    const pd = field(rollup, 'Private_Dirty')
    out.privateKiB = pc === null || pd === null ? null : pc + pd
    // Pss divides the binary's pages among all processes that map it: how many
    // others run the same binary right now (this container's own process, other
    // containers, anyone's) says how far that lowers the monitor's figure.
    let others = 0
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d) || Number(d) === pid) continue
      try {
        if (readlinkSync(`/proc/${d}/exe`) === out.monitorExe) others++
      } catch {
        /* gone, or not ours to read */
      }
    }
    out.otherProcessesOfSameBinary = others
    const status2 = c.state().status
    if (status2 !== 'running') throw new Error(`the container was ${status2}, not running, when its monitor was read`)
  } catch (err) {
    out.error = firstLine(err?.message ?? err)
  } finally {
    if (c) {
      try {
        await c.delete({ force: true })
      } catch (err) {
        out.error ??= `delete --force: ${firstLine(err?.message ?? err)}`
        await nsForceDelete(id, nsState)
      }
    } else {
      await nsForceDelete(id, nsState)
    }
  }
  return out
}
