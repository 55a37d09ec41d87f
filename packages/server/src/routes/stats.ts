// One-shot resource figures of a container: from its cgroup files when it has a cgroup (it was
// given limits), otherwise summed from /proc over its processes.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

import { createRoute } from '@hono/zod-openapi'

import { lookup, router, type AppContext } from '../context.js'
import { errors, idParams, json, stats } from '../schemas.js'

let clockTicks: number | undefined

/** Clock ticks per second of /proc/PID/stat times (`getconf CLK_TCK`), asked once. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim()) || 100
    } catch {
      clockTicks = 100 // USER_HZ on every Linux architecture ns runs on
    }
  }
  return clockTicks
}

/** Resident bytes and CPU ticks of one process, or undefined if it has gone. */
export function procUsage(pid: number): { rssBytes: number; ticks: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command (which may hold spaces and parentheses): state is field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const utime = Number(fields[14 - 3])
    const stime = Number(fields[15 - 3])
    const rssKiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0)
    return { rssBytes: rssKiB * 1024, ticks: utime + stime }
  } catch {
    return undefined
  }
}

const getStats = createRoute({
  method: 'get',
  path: '/v1/containers/{id}/stats',
  tags: ['stats'],
  summary: 'Memory, CPU time and process count of a container, now',
  description:
    'From the container\'s cgroup (source "cgroup") when it has limits, else from /proc for its processes (source "proc"); a stopped container has none.',
  request: { params: idParams },
  responses: { 200: json(stats, 'The figures'), ...errors(400, 401, 404, 500) },
})

export function statsRoutes(ctx: AppContext) {
  const app = router()

  app.openapi(getStats, (c) => {
    const { id } = c.req.valid('param')
    const container = lookup(ctx, id)
    const info = container.inspect()
    if (info.status !== 'stopped') {
      let cg: ReturnType<typeof container.stats> | undefined
      try {
        cg = container.stats()
      } catch {
        cg = undefined // no cgroup: no limits were asked for
      }
      if (cg) {
        return c.json(
          {
            id,
            status: info.status,
            source: 'cgroup' as const,
            memoryBytes: cg.memoryBytes ?? 0,
            ...(cg.memoryPeakBytes !== undefined ? { memoryPeakBytes: cg.memoryPeakBytes } : {}),
            ...(cg.memoryLimitBytes !== undefined ? { memoryLimitBytes: cg.memoryLimitBytes } : {}),
            cpuSeconds: Math.round((cg.cpuUsageNs ?? 0) / 1e6) / 1000,
            pids: cg.pids ?? 0,
            ...(cg.pidsLimit !== undefined ? { pidsLimit: cg.pidsLimit } : {}),
            oomKilled: cg.oomKilled,
            time: new Date().toISOString(),
          },
          200,
        )
      }
    }
    let memoryBytes = 0
    let ticks = 0
    let pids = 0
    for (const pid of info.pids) {
      const u = procUsage(pid)
      if (!u) continue
      memoryBytes += u.rssBytes
      ticks += u.ticks
      pids++
    }
    const cpuSeconds = Math.round((ticks / ticksPerSecond()) * 1000) / 1000
    return c.json(
      {
        id,
        status: info.status,
        source: 'proc' as const,
        memoryBytes,
        cpuSeconds,
        pids,
        time: new Date().toISOString(),
      },
      200,
    )
  })

  return app
}
