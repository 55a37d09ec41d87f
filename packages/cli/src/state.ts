// The default state root of detached containers, @ns/core's (loaded once a command runs).
export { defaultRoot } from '@ns/core'
