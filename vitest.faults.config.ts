import { defineConfig } from 'vitest/config';

/**
 * The fault-injection suite (test/faults): real receiver and worker processes against a Redis
 * and a PostgreSQL proxy of each file's own. Files run one at a time, since they kill and
 * starve processes and compete for the same two cores; run with `npm run test:faults`.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 90_000,
    env: { LOG_LEVEL: 'silent', NODE_ENV: 'test' },
  },
});
