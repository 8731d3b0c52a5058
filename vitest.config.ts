import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Real threads, files and sockets: generous per-test time, but bounded.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.timing.test.ts', '**/node_modules/**'],
          // 2-core CI: tests that start brokers must not all run at once.
          fileParallelism: true,
          maxWorkers: 2,
          minWorkers: 1,
          sequence: { groupOrder: 0 },
        },
      },
      {
        // Tests that assert a deadline the issue sets (e.g. delayed messages within 100 ms of due):
        // run alone after everything else, so another file's brokers do not share the 2 cores.
        extends: true,
        test: {
          name: 'timing',
          include: ['test/**/*.timing.test.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
