import { defineCommand } from '../command.js'
import { bool } from '../flags.js'
import { storeOf } from '../image-output.js'
import { report } from '../output.js'

export default defineCommand({
  description: 'remove images: untag a name; the image goes with its last name (and blobs no other image uses)',
  args: [['<reference...>', 'names, ids or digests']],
  flags: {
    force: bool('-f, --force', 'remove an image of several names by its id (all its names go)'),
  },
  async action([references], o, ctx) {
    const images = storeOf(ctx)
    let status = 0
    for (const r of references as string[]) {
      try {
        const res = await images.remove(r, o.force ? { force: true } : {})
        for (const n of res.untagged) process.stdout.write(`Untagged: ${n}\n`)
        for (const d of res.deleted) process.stdout.write(`Deleted: ${d}\n`)
      } catch (e) {
        // As docker: the others are still removed; the status says one was not.
        status = report(e)
      }
    }
    return status
  },
})
