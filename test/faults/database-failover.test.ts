import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { MAX_CONNECTION_LIFETIME_S } from '../../src/orm.ts';
import { makeReadOnly, sql } from '../support/database.ts';
import { cleanUpAfterEach } from '../support/hooks.ts';
import { expectExactlyStored, startScenario, useReceiverStack } from '../support/stack.ts';

/** How long deliveries keep arriving on each side of the failover, 10 every 250 ms. */
const BEFORE_MS = 3_000;
const AFTER_MS = 10_000;
const ROUND_MS = 250;
const PER_ROUND = 10;
/**
 * A connection opened before the failover lives at most MAX_CONNECTION_LIFETIME_S; a job that
 * failed on one waits out its backoff, at most about as long again; the rest is margin.
 */
const RECOVERY_LIMIT_MS = 2 * MAX_CONNECTION_LIFETIME_S * 1_000 + 15_000;

const { stack, users, sendNewUsers } = useReceiverStack();
const cleanUpLater = cleanUpAfterEach();

async function deliverFor(ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    await Promise.all([sendNewUsers(PER_ROUND), sleep(ROUND_MS)]);
  }
}

it('replaces its connections to a primary demoted by a failover, and stores every delivery', async () => {
  const scenario = startScenario('database failover');
  // The worker's connections are opened while the database takes no writes, as they would be
  // to a primary that a failover then demotes to a standby: each keeps answering read-only.
  await makeReadOnly(stack.db);
  const worker = await stack.startWorker();
  cleanUpLater(() => worker.stop());
  await deliverFor(BEFORE_MS);

  // The failover: new connections reach a primary that takes writes; the worker's open ones
  // still answer read-only, and deliveries keep them busy.
  await sql(stack.db, `alter database "${stack.db.name}" reset default_transaction_read_only`);
  const failedOverAt = performance.now();
  await deliverFor(AFTER_MS);
  const recoveryMs = await stack.waitUntilDrained(users.size, RECOVERY_LIMIT_MS);

  expect(worker.output.join('\n')).toContain('event processing failed: the database is read-only');
  expect((await stack.jobCounts()).failed).toBe(0);
  await expectExactlyStored(stack.db, users);
  expect(worker.isRunning()).toBe(true);
  scenario.report({
    deliveries: users.size,
    storedWithinMsOfFailover: Math.round(performance.now() - failedOverAt),
    drainedWithinMsOfLastDelivery: Math.round(recoveryMs),
  });
});
