/** The version of ns (the same as packages/cli/package.json's; a test keeps them equal). */
export const version = '0.1.0'
