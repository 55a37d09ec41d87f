// `ns`: the command line for people. Each command is a file of commands/; its flags are a table
// there, from which commander's options and the @ns/core options are both made.
export { main } from './main.js'
export { program, USAGE_ERROR } from './program.js'
export { runOptionsFromFlags, runFlags, containerFlags } from './commands/run-flags.js'
export type { RunFlags, RunRequest, RunContext } from './commands/run-flags.js'
