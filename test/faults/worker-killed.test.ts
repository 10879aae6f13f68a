import { expect, it } from 'vitest';
import { metricTotal } from '../support/services.ts';
import { expectExactlyStored, startScenario, useReceiverStack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';

const BACKLOG = 1_200;
const LOCK_DURATION_MS = 2_000;

const { stack, users, sendNewUsers } = useReceiverStack();

it('a worker killed with SIGKILL mid-backlog leaves its jobs to a new worker, which stores every user once', async () => {
  const scenario = startScenario('1 worker SIGKILL');
  await sendNewUsers(BACKLOG);

  const env = { WORKER_CONCURRENCY: '16', WORKER_LOCK_DURATION_MS: String(LOCK_DURATION_MS) };
  const doomed = await stack.startWorker(env);
  await stack.waitUntilBusy(200);
  expect((await doomed.stop('SIGKILL')).signal).toBe('SIGKILL');
  const killedAt = performance.now();
  const atKill = await stack.jobCounts();
  const orphans = await stack.jobIds(['active']);
  expect(orphans.size).toBeGreaterThan(0);
  expect(atKill.completed).toBeLessThan(BACKLOG);

  const rescuer = await stack.startWorker(env);
  await waitFor(
    async () => {
      const completed = await stack.jobIds(['completed']);
      return [...orphans].every((id) => completed.has(id));
    },
    30_000,
    'the orphaned jobs to complete',
  );
  const orphansRecoveredMs = performance.now() - killedAt;
  await stack.waitUntilDrained(BACKLOG, 60_000);
  const allStoredMs = performance.now() - killedAt;

  expect(await stack.jobCounts()).toMatchObject({
    waiting: 0,
    active: 0,
    delayed: 0,
    failed: 0,
    completed: BACKLOG,
  });
  expect(await metricTotal(rescuer, 'clerk_sync_jobs_completed_total')).toBe(
    BACKLOG - atKill.completed,
  );
  await expectExactlyStored(stack.db, users);
  scenario.report({
    acknowledged: BACKLOG,
    completedBeforeKill: atKill.completed,
    orphanedActive: orphans.size,
    completedByRescuer: BACKLOG - atKill.completed,
    killToOrphansCompletedMs: Math.round(orphansRecoveredMs),
    killToAllStoredMs: Math.round(allStoredMs),
    stored: BACKLOG,
  });
});
