import { expect, it } from 'vitest';
import { JOB_ATTEMPTS } from '../../src/queue/retry-policy.ts';
import { newUsers, type Outcome, sendAll, tally } from '../support/load.ts';
import { health, metricTotal } from '../support/services.ts';
import { expectExactlyStored, startScenario, useRunningStack } from '../support/stack.ts';

/** An outage long enough to outlast several retries with backoff (30 s or more). */
const OUTAGE_MS = 31_000;
const DELIVERY_INTERVAL_MS = 500;
const DELIVERIES_PER_INTERVAL = 20;
/**
 * After the outage, a job waits out the backoff it was given last: at most about as long as it
 * had been failing (the delays double from 1 s), so about OUTAGE_MS; the rest is margin.
 */
const RECOVERY_LIMIT_MS = OUTAGE_MS + 30_000;

const { stack, receiver, worker, users, storeNewUsers } = useRunningStack({
  WORKER_LOCK_DURATION_MS: '2000',
});

it('keeps every job through a PostgreSQL outage of 30 s or more, and the worker process survives it', async () => {
  const scenario = startScenario('4 postgres outage');
  await storeNewUsers(300, 30_000);

  // The worker's database goes away: open connections (idle ones in its pool among them) are
  // cut, new ones are reset.
  const connectionsCut = stack.proxy.open;
  stack.proxy.refuse();
  stack.proxy.cutAll();
  const outageStartedAt = performance.now();
  const duringOutage: Outcome[] = [];
  let workerHealthDuringOutage: Awaited<ReturnType<typeof health>> | undefined;
  const rounds = Math.ceil(OUTAGE_MS / DELIVERY_INTERVAL_MS);
  for (let round = 0; round < rounds; round++) {
    const roundStartedAt = performance.now();
    duringOutage.push(...(await sendAll(receiver.url, newUsers(DELIVERIES_PER_INTERVAL, users))));
    if (round === Math.floor(rounds / 2)) workerHealthDuringOutage = await health(worker);
    if (performance.now() - outageStartedAt >= OUTAGE_MS) break;
    const rest = DELIVERY_INTERVAL_MS - (performance.now() - roundStartedAt);
    if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
  }
  const remaining = OUTAGE_MS - (performance.now() - outageStartedAt);
  if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining));
  const countsAtEnd = await stack.jobCounts();
  const retriedDuringOutage = await metricTotal(worker, 'clerk_sync_jobs_retried_total');
  stack.proxy.accept();
  const outageMs = performance.now() - outageStartedAt;

  expect(tally(duringOutage)).toEqual({ 202: duringOutage.length });
  expect(worker.isRunning()).toBe(true);
  expect(workerHealthDuringOutage).toMatchObject({
    status: 503,
    body: { database: 'disconnected', redis: 'connected' },
  });
  expect(connectionsCut).toBeGreaterThan(0);
  expect(retriedDuringOutage).toBeGreaterThan(0);
  expect(countsAtEnd.failed).toBe(0);
  expect(countsAtEnd.delayed + countsAtEnd.waiting + countsAtEnd.active).toBeGreaterThan(0);

  const recoveryMs = await storeNewUsers(100, RECOVERY_LIMIT_MS);

  const counts = await stack.jobCounts();
  expect(counts).toMatchObject({ failed: 0, delayed: 0, waiting: 0, active: 0 });
  expect(counts.completed).toBe(users.size);
  await expectExactlyStored(stack.db, users);
  expect(worker.isRunning()).toBe(true);
  expect((await health(worker)).status).toBe(200);
  expect(await metricTotal(worker, 'clerk_sync_jobs_failed_total')).toBe(0);
  const maxAttempts = await stack.maxAttemptsMade();
  expect(maxAttempts).toBeLessThan(JOB_ATTEMPTS);
  expect(worker.output.join('\n')).not.toMatch(/uncaught|unhandled|"level":60/i);

  scenario.report({
    outageMs: Math.round(outageMs),
    acknowledgedDuringOutage: duringOutage.length,
    jobsAtEndOfOutage: countsAtEnd,
    retriedAttemptsDuringOutage: retriedDuringOutage,
    mostAttemptsByOneJob: maxAttempts,
    maxAttemptsAllowed: JOB_ATTEMPTS,
    connectionsCut,
    connectionsRefused: stack.proxy.refused,
    restoreToDrainedMs: Math.round(recoveryMs),
    failed: counts.failed,
    stored: users.size,
    workerPid: worker.pid,
    workerSurvived: worker.isRunning(),
  });
});
