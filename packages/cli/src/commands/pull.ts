import { defineCommand } from '../command.js'
import { value, bool } from '../flags.js'
import { pullProgress, shortId, storeOf } from '../image-output.js'

export default defineCommand({
  description: 'pull an image from its registry (or oci:DIR, oci-archive:FILE, docker-archive:FILE) into the store',
  args: [['<reference>', 'alpine:3.20, host:port/repo:tag, repo@sha256:…']],
  flags: {
    platform: value('--platform <os/arch[/variant]>', "the image's platform (default: this host's)"),
    quiet: bool('-q, --quiet', 'print only the image id'),
  },
  async action([reference], o, ctx) {
    const image = await storeOf(ctx).pull(reference as string, {
      ...(o.platform !== undefined ? { platform: o.platform } : {}),
      ...(o.quiet ? {} : { onProgress: pullProgress() }),
    })
    if (!o.quiet) process.stderr.write(`${reference as string}: ${image.digest} (image id ${shortId(image.id)})\n`)
    process.stdout.write(`${image.id}\n`)
  },
})
