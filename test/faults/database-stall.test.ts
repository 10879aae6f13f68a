import { expect, it } from 'vitest';
import { COMMIT_TIMEOUT_MS } from '../../src/workers/webhook-worker.ts';
import { health } from '../support/services.ts';
import { expectExactlyStored, startScenario, useRunningStack } from '../support/stack.ts';

/**
 * Each stalled connection the worker still holds can cost one batch a commit timeout before the
 * pool's idle timeout (30 s) retires the rest; then the jobs' retry backoff. The rest is margin.
 */
const RECOVERY_LIMIT_MS = 2 * COMMIT_TIMEOUT_MS + 45_000;

const { stack, worker, users, storeNewUsers } = useRunningStack();

it('keeps storing events when its database connections stop answering without a reset', async () => {
  const scenario = startScenario('9 postgres connections stalled');
  await storeNewUsers(200, 30_000);

  // Every connection the worker has open goes silent, as to a host that vanished; new
  // connections work. Nothing is reset, so nothing tells the worker to give up on the old ones.
  const connectionsStalled = stack.proxy.open;
  stack.proxy.stallAll();
  const stalledAt = performance.now();
  const recoveryMs = await storeNewUsers(300, RECOVERY_LIMIT_MS);

  const counts = await stack.jobCounts();
  expect(counts).toMatchObject({ failed: 0, delayed: 0, waiting: 0, active: 0 });
  await expectExactlyStored(stack.db, users);
  expect(connectionsStalled).toBeGreaterThan(0);
  expect(worker.isRunning()).toBe(true);
  expect((await health(worker)).status).toBe(200);
  const output = worker.output.join('\n');
  expect(output).toMatch(/timed out after/);
  expect(output).not.toMatch(/uncaught|unhandled|"level":60/i);

  scenario.report({
    connectionsStalled,
    commitTimeoutMs: COMMIT_TIMEOUT_MS,
    stallToDrainedMs: Math.round(performance.now() - stalledAt),
    waitUntilDrainedMs: Math.round(recoveryMs),
    mostAttemptsByOneJob: await stack.maxAttemptsMade(),
    stored: users.size,
  });
});
