import { clerkClientFrom } from '../../src/clerk/api.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { fakeClerkEnv } from './fake-clerk-api.ts';
import { TEST_SECRET } from './svix.ts';

/** A validated config for a test, on port 0 (any free port). */
export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    PORT: '0',
    WORKER_METRICS_PORT: '0',
    CLERK_WEBHOOK_SIGNING_SECRET: TEST_SECRET,
    ...overrides,
  });
}

/** The service's Clerk client, pointed at a fake Clerk API. */
export function fakeClerkClient(api: { url: string }, env: Record<string, string> = {}) {
  return clerkClientFrom(testConfig({ ...fakeClerkEnv(api), ...env }));
}

/** The ConfigError loadConfig throws for this environment; fails the test when it accepts it. */
export function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected loadConfig to reject the environment');
}
