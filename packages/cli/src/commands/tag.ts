import { defineCommand } from '../command.js'
import { storeOf } from '../image-output.js'

export default defineCommand({
  description: 'give an image of the store another name',
  args: [
    ['<source>', 'a name, id or digest'],
    ['<target>', 'the new name (repo:tag)'],
  ],
  flags: {},
  async action([source, target], _o, ctx) {
    await storeOf(ctx).tag(source as string, target as string)
  },
})
