import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { defineConfig } from 'vitest/config'

export default defineConfig({
  // Per user, so the suite also runs as an unprivileged user on a tree root built.
  cacheDir: join(tmpdir(), `ns-vitest-${process.getuid?.() ?? 0}`),
  test: {
    include: ['test/**/*.test.ts', 'packages/*/src/**/*.test.ts'],
    // Addons misbehave in worker threads: keep the default forks pool.
    pool: 'forks',
    // Tests compare the host's mount table and processes before and after: one file at a time.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ['test/global-setup.ts'],
  },
})
