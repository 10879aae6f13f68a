import { defineConfig } from 'vitest/config';

/**
 * The configuration of a suite that runs real processes and servers (faults, security, infra,
 * ops): files run one at a time, since they start, kill and starve processes and compete for
 * the same two cores.
 */
export function processSuite(directory: string) {
  return defineConfig({
    test: {
      include: [`${directory}/**/*.test.ts`],
      pool: 'forks',
      fileParallelism: false,
      testTimeout: 180_000,
      hookTimeout: 90_000,
      env: { LOG_LEVEL: 'silent', NODE_ENV: 'test' },
    },
  });
}
