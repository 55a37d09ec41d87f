// Bridge networks are root's: who the caller is, and the error for anyone else (rootless
// networking is not supported yet).
import { NsError } from '../errors.js'

export const euid = () => process.geteuid?.() ?? 0

const rootlessHint =
  'bridge networks need root; rootless networking (pasta, slirp4netns) is not supported yet: use --network none (loopback only) or --network host'

export function needRoot(field: string): void {
  if (euid() !== 0)
    throw new NsError({
      code: 'EPERM',
      field,
      step: 'validate options',
      message: `${field}: bridge networks need root`,
      hint: rootlessHint,
    })
}
