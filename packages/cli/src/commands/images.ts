import { defineCommand } from '../command.js'
import { bool, value } from '../flags.js'
import { imageRows, storeOf } from '../image-output.js'
import { table } from '../output.js'

export default defineCommand({
  description: 'list the images of the store',
  args: [['[reference]', 'only this repository (alpine) or name (alpine:3.20)']],
  flags: {
    quiet: bool('-q, --quiet', 'only image ids'),
    format: value('--format <format>', 'table or json', { choices: ['table', 'json'], default: 'table' }),
  },
  async action([reference], o, ctx) {
    let all = await storeOf(ctx).list()
    if (reference !== undefined) {
      const r = reference as string
      all = all.filter((i) =>
        i.names.some((n) => n === r || n.startsWith(`${r}:`) || n.endsWith(`/${r}`) || n.includes(`/${r}:`)),
      )
    }
    if (o.quiet) process.stdout.write([...new Set(all.map((i) => i.id))].map((id) => `${id}\n`).join(''))
    else if (o.format === 'json') process.stdout.write(`${JSON.stringify(all)}\n`)
    else process.stdout.write(table(imageRows(all)))
  },
})
