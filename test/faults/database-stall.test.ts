import { expect, it } from 'vitest';
import { COMMIT_TIMEOUT_MS } from '../../src/workers/webhook-worker.ts';
import { newUsers, sendAll, tally } from '../support/load.ts';
import { health } from '../support/services.ts';
import {
  expectExactlyStored,
  report,
  useRunningStack,
  waitUntilDrained,
} from '../support/stack.ts';

/**
 * Each stalled connection the worker still holds can cost one batch a commit timeout before the
 * pool's idle timeout (30 s) retires the rest; then the jobs' retry backoff. The rest is margin.
 */
const RECOVERY_LIMIT_MS = 2 * COMMIT_TIMEOUT_MS + 45_000;

const running = useRunningStack();
const { stack, users } = running;

it('keeps storing events when its database connections stop answering without a reset', async () => {
  const startedAt = performance.now();
  expect(tally(await sendAll(running.receiver.url, newUsers(200, users)))).toEqual({ 202: 200 });
  await waitUntilDrained(stack, users.size, 30_000);

  // Every connection the worker has open goes silent, as to a host that vanished; new
  // connections work. Nothing is reset, so nothing tells the worker to give up on the old ones.
  const connectionsStalled = stack.proxy.open;
  stack.proxy.stallAll();
  const stalledAt = performance.now();
  expect(tally(await sendAll(running.receiver.url, newUsers(300, users)))).toEqual({ 202: 300 });
  const recoveryMs = await waitUntilDrained(stack, users.size, RECOVERY_LIMIT_MS);

  const counts = await stack.jobCounts();
  expect(counts).toMatchObject({ failed: 0, delayed: 0, waiting: 0, active: 0 });
  await expectExactlyStored(stack.db, users);
  expect(connectionsStalled).toBeGreaterThan(0);
  expect(running.worker.isRunning()).toBe(true);
  expect((await health(running.worker)).status).toBe(200);
  const output = running.worker.output.join('\n');
  expect(output).toMatch(/timed out after/);
  expect(output).not.toMatch(/uncaught|unhandled|"level":60/i);

  report('9 postgres connections stalled', {
    connectionsStalled,
    commitTimeoutMs: COMMIT_TIMEOUT_MS,
    stallToDrainedMs: Math.round(performance.now() - stalledAt),
    waitUntilDrainedMs: Math.round(recoveryMs),
    mostAttemptsByOneJob: await stack.maxAttemptsMade(),
    stored: users.size,
    scenarioMs: Math.round(performance.now() - startedAt),
  });
});
