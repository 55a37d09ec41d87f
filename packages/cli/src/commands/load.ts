import { defineCommand } from '../command.js'
import { value } from '../flags.js'
import { storeOf } from '../image-output.js'

export default defineCommand({
  description: 'load the images of an archive (oci-archive or docker-archive, gzip or not) or an OCI layout directory',
  flags: {
    input: value(
      '-i, --input <path>',
      'the archive or directory (also oci:DIR, oci-archive:FILE, docker-archive:FILE)',
    ),
    platform: value('--platform <os/arch[/variant]>', 'for a multi-platform entry (default: this host)'),
  },
  async action(_args, o, ctx) {
    if (o.input === undefined)
      ctx.cmd.error("error: required option '-i, --input <path>' not specified", { exitCode: 125 })
    const got = await storeOf(ctx).load(o.input!, o.platform !== undefined ? { platform: o.platform } : {})
    for (const i of got) process.stdout.write(`Loaded image: ${i.names.join(', ') || i.id}\n`)
  },
})
