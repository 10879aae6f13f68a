import { expect, it } from 'vitest';
import { metricTotal, type ServiceProcess } from '../support/services.ts';
import { expectExactlyStored, startScenario, useReceiverStack } from '../support/stack.ts';

const BACKLOG = 1_500;
const BACKLOG_WHEN_REDIS_DIES = 600;
/**
 * The shortest grace period a process manager gives between SIGTERM and SIGKILL by default:
 * Docker's `docker stop` and Compose wait 10 s (Kubernetes 30 s, systemd 90 s).
 */
const GRACE_PERIOD_MS = 10_000;
/**
 * Every worker of this file, so that the one started after the Redis crash retakes the jobs of
 * the one that stopped within seconds. (They share BullMQ's stalled-check throttle, which the
 * last worker to check sets for its own lock duration: one 30 s worker would delay the rest.)
 */
const WORKER_ENV = { WORKER_LOCK_DURATION_MS: '2000' };

const { stack, users, sendNewUsers } = useReceiverStack();

/** SIGTERM to a worker, which must exit 0 within the grace period; how it exited, and when. */
async function stopWithinGracePeriod(worker: ServiceProcess) {
  const signalledAt = performance.now();
  worker.process.kill('SIGTERM');
  const exit = await worker.exitWithin(GRACE_PERIOD_MS);
  const exitMs = performance.now() - signalledAt;
  expect(exit, 'exit within the grace period').toEqual({ code: 0, signal: null });
  expect(exitMs).toBeLessThan(GRACE_PERIOD_MS);
  return { exit, exitMs };
}

it('on SIGTERM mid-drain the worker finishes what it holds and exits 0 within the grace period; a new one does the rest', async () => {
  const scenario = startScenario('5 worker SIGTERM');
  const deliveries = await sendNewUsers(BACKLOG);
  const userOf = new Map(deliveries.map((delivery) => [delivery.svixId, delivery.clerkUserId]));

  const first = await stack.startWorker(WORKER_ENV);
  await stack.waitUntilBusy(200);
  const activeAtSignal = (await stack.jobIds(['active'])).size;
  const { exit, exitMs } = await stopWithinGracePeriod(first);
  const afterStop = await stack.jobCounts();
  expect(afterStop).toMatchObject({ active: 0, failed: 0, delayed: 0 });
  expect(afterStop.waiting).toBeGreaterThan(0);
  expect(afterStop.completed + afterStop.waiting).toBe(BACKLOG);
  // What it finished is stored, exactly; nothing else is.
  const completed = [...(await stack.jobIds(['completed']))];
  await expectExactlyStored(
    stack.db,
    completed.map((svixId) => userOf.get(svixId) as string),
  );

  const second = await stack.startWorker(WORKER_ENV);
  const restToDrainMs = await stack.waitUntilDrained(BACKLOG, 60_000);
  expect(await stack.jobCounts()).toMatchObject({ completed: BACKLOG, failed: 0 });
  expect(await metricTotal(second, 'clerk_sync_jobs_completed_total')).toBe(afterStop.waiting);
  await expectExactlyStored(stack.db, users);
  const secondExit = await second.stop('SIGTERM');
  expect(secondExit).toEqual({ code: 0, signal: null });

  scenario.report({
    backlog: BACKLOG,
    activeAtSignal,
    sigtermToExitMs: Math.round(exitMs),
    gracePeriodMs: GRACE_PERIOD_MS,
    exit,
    completedByFirst: afterStop.completed,
    leftWaiting: afterStop.waiting,
    completedBySecond: afterStop.waiting,
    restToDrainMs: Math.round(restToDrainMs),
    stored: BACKLOG,
  });
});

it('on SIGTERM while Redis is down the worker still exits 0 within the grace period, and loses nothing', async () => {
  const scenario = startScenario('5 worker SIGTERM with Redis down');
  await sendNewUsers(BACKLOG_WHEN_REDIS_DIES);
  const first = await stack.startWorker(WORKER_ENV);
  const completedBefore = (await stack.jobCounts()).completed;
  await stack.waitUntilBusy(completedBefore + 100);

  await stack.redis.kill();
  const { exit, exitMs } = await stopWithinGracePeriod(first);

  await stack.redis.restart();
  await stack.startWorker(WORKER_ENV);
  const drainMs = await stack.waitUntilDrained(users.size, 60_000);
  expect((await stack.jobCounts()).failed).toBe(0);
  await expectExactlyStored(stack.db, users);

  scenario.report({
    backlog: BACKLOG_WHEN_REDIS_DIES,
    sigtermToExitMs: Math.round(exitMs),
    gracePeriodMs: GRACE_PERIOD_MS,
    exit,
    restartToDrainedMs: Math.round(drainMs),
    stored: users.size,
  });
});
