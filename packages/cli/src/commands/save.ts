import { defineCommand } from '../command.js'
import { value } from '../flags.js'
import { storeOf } from '../image-output.js'

export default defineCommand({
  description: 'write images to an archive (oci-archive, docker-archive) or an OCI layout directory',
  args: [['<reference...>', 'names, ids or digests']],
  flags: {
    output: value(
      '-o, --output <path>',
      'where (also oci:DIR[:name], oci-archive:FILE[:name], docker-archive:FILE[:ref])',
    ),
    format: value('--format <format>', 'oci-archive, docker-archive or oci-dir', {
      choices: ['oci-archive', 'docker-archive', 'oci-dir'],
    }),
  },
  async action([references], o, ctx) {
    if (o.output === undefined)
      ctx.cmd.error("error: required option '-o, --output <path>' not specified", { exitCode: 125 })
    await storeOf(ctx).save(references as string[], o.output!, o.format as 'oci-archive' | undefined)
  },
})
