import { defineCommand } from '../command.js'
import { humanSize, shortId, storeOf } from '../image-output.js'
import { table } from '../output.js'

const actions = ['inspect', 'history', 'prune'] as const

export default defineCommand({
  description: 'ns image inspect REF… (records and configs, as JSON), ns image history REF, ns image prune',
  args: [
    ['<action>', actions.join(', ')],
    ['[reference...]', 'names, ids or digests'],
  ],
  flags: {},
  async action([action, references], _o, ctx) {
    const refs = references as string[]
    if (!(actions as readonly string[]).includes(action as string))
      ctx.cmd.error(`error: unknown action '${String(action)}' (one of ${actions.join(', ')})`, { exitCode: 125 })
    if (action !== 'prune' && refs.length === 0)
      ctx.cmd.error(`error: ns image ${String(action)} needs a reference`, { exitCode: 125 })
    if (action === 'prune' && refs.length > 0)
      ctx.cmd.error('error: ns image prune takes no reference', { exitCode: 125 })
    const images = storeOf(ctx)
    if (action === 'inspect') {
      const all = []
      for (const r of refs) all.push(await images.inspect(r))
      process.stdout.write(`${JSON.stringify(all, null, 2)}\n`)
    } else if (action === 'history') {
      const d = await images.inspect(refs[0]!)
      const rows = [['IMAGE', 'CREATED', 'CREATED BY', 'SIZE']]
      // Each step with the layer it made (none for an empty one), newest first as docker shows
      // them; without a history, the layers alone.
      const steps = (d.imageConfig.history ?? []).map((h) => ({
        created: typeof h.created === 'string' ? h.created : '-',
        by: typeof h.created_by === 'string' ? h.created_by.slice(0, 60) : '',
        empty: h.empty_layer === true,
      }))
      if (steps.length === 0) for (const _ of d.layers) steps.push({ created: '-', by: '', empty: false })
      let next = 0
      const sized = steps.map((s) => ({ ...s, size: s.empty ? 0 : (d.layers[next++]?.size ?? 0) }))
      sized
        .reverse()
        .forEach((s, k) => rows.push([k === 0 ? shortId(d.id) : '<missing>', s.created, s.by, humanSize(s.size)]))
      process.stdout.write(table(rows))
    } else {
      const r = await images.prune()
      for (const d of r.deleted) process.stdout.write(`Deleted: ${d}\n`)
      process.stdout.write(
        `Total reclaimed space: ${humanSize(r.bytesRemoved)} (${r.blobsRemoved} blobs, ${r.containersRemoved} leftover containers)\n`,
      )
    }
  },
})
