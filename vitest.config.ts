import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real threads, files and sockets: generous per-test time, but bounded.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // 2-core CI: tests that start brokers must not all run at once.
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1,
  },
});
