import { expect, it } from 'vitest';
import { clerkId } from '../../src/clerk/sample-events.ts';
import {
  createdDeliveries,
  isAcknowledged,
  newClerkUserIds,
  send,
  sendAll,
  tally,
  userCreated,
} from '../support/load.ts';
import { health } from '../support/services.ts';
import { expectExactlyStored, report, useFaultStack, waitUntilDrained } from '../support/stack.ts';

const DELIVERIES = 1_500;
/**
 * With `appendfsync everysec` Redis writes every command to the append-only file before it
 * answers, and fsyncs that file once a second; but while a background fsync is slow it may
 * hold the write itself back for up to 2 s (its clock counts whole seconds). Killing it more
 * than 3 s after the last acknowledgement therefore stays clear of both windows, whether it is
 * the process that dies (only unwritten data is lost) or the machine (unsynced data too).
 */
const QUIET_BEFORE_KILL_MS = 3_000;

const stack = useFaultStack();

it('loses no acknowledged delivery when Redis is killed with SIGKILL and restarted from its append-only file', async () => {
  const startedAt = performance.now();
  const receiver = await stack.startReceiver();
  // No worker yet: every acknowledged delivery lives only in Redis until after the crash.
  const users = newClerkUserIds(DELIVERIES);
  const outcomes = await sendAll(receiver.url, createdDeliveries(users));
  expect(tally(outcomes)).toEqual({ 202: DELIVERIES });
  const lastAckAt = performance.now();
  const acknowledged = new Set(outcomes.filter(isAcknowledged).map((o) => o.delivery.svixId));

  await new Promise((resolve) => setTimeout(resolve, QUIET_BEFORE_KILL_MS));
  expect(await stack.jobIds()).toEqual(acknowledged);
  const killedAt = performance.now();
  await stack.redis.kill();
  await stack.redis.restart();
  const restartMs = performance.now() - killedAt;

  const survivors = await stack.jobIds();
  const lost = [...acknowledged].filter((id) => !survivors.has(id));
  expect({ lost: lost.length, firstLost: lost.slice(0, 5) }).toEqual({ lost: 0, firstLost: [] });
  expect((await stack.jobCounts()).waiting).toBe(DELIVERIES);

  // The receiver reconnects by itself and takes deliveries again.
  let receiverBackMs = 0;
  const probe = clerkId('user');
  const probeStartedAt = performance.now();
  for (let attempt = 0; attempt < 100; attempt++) {
    if (isAcknowledged(await send(receiver.url, userCreated(probe)))) {
      receiverBackMs = performance.now() - killedAt;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(receiverBackMs, 'the receiver to accept deliveries again').toBeGreaterThan(0);
  expect(performance.now() - probeStartedAt).toBeLessThan(10_000);
  expect((await health(receiver)).status).toBe(200);
  expect(receiver.isRunning()).toBe(true);

  await stack.startWorker();
  const drainMs = await waitUntilDrained(stack, DELIVERIES + 1, 60_000);
  expect(await stack.jobCounts()).toMatchObject({ failed: 0, completed: DELIVERIES + 1 });
  await expectExactlyStored(stack.db, [...users, probe]);

  report('2 redis SIGKILL + AOF restart', {
    acknowledged: acknowledged.size,
    quietBeforeKillMs: QUIET_BEFORE_KILL_MS,
    sinceLastAckAtKillMs: Math.round(killedAt - lastAckAt),
    jobsAfterRestart: survivors.size,
    lost: lost.length,
    redisRestartMs: Math.round(restartMs),
    killToReceiverAcceptingMs: Math.round(receiverBackMs),
    drainMs: Math.round(drainMs),
    stored: DELIVERIES + 1,
    scenarioMs: Math.round(performance.now() - startedAt),
  });
});
