import { defineConfig } from 'vitest/config';

// Integration tests run real PM2 daemons and real workers; on a 2-core
// machine two test files at a time is what keeps their timing honest.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Installs the Debian packages the tests need (as root), once per run.
    globalSetup: ['test/setup/system-packages.ts'],
    reporters: ['default', './test/setup/skip-reasons.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    fileParallelism: true,
  },
});
