import { expect, it } from 'vitest';
import { clerkId } from '../../src/clerk/sample-events.ts';
import { isAcknowledged, send, userCreated } from '../support/load.ts';
import { health } from '../support/services.ts';
import {
  expectExactlyStored,
  startScenario,
  timeUntil,
  useReceiverStack,
} from '../support/stack.ts';

const DELIVERIES = 1_500;
/**
 * With `appendfsync everysec` Redis writes every command to the append-only file before it
 * answers, and fsyncs that file once a second; but while a background fsync is slow it may
 * hold the write itself back for up to 2 s (its clock counts whole seconds). Killing it more
 * than 3 s after the last acknowledgement therefore stays clear of both windows, whether it is
 * the process that dies (only unwritten data is lost) or the machine (unsynced data too).
 */
const QUIET_BEFORE_KILL_MS = 3_000;

const { stack, receiver, users, sendNewUsers } = useReceiverStack();

it('loses no acknowledged delivery when Redis is killed with SIGKILL and restarted from its append-only file', async () => {
  const scenario = startScenario('2 redis SIGKILL + AOF restart');
  // No worker yet: every acknowledged delivery lives only in Redis until after the crash.
  const deliveries = await sendNewUsers(DELIVERIES);
  const lastAckAt = performance.now();
  const acknowledged = new Set(deliveries.map((delivery) => delivery.svixId));

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
  const probe = clerkId('user');
  const probeMs = await timeUntil(
    async () => isAcknowledged(await send(receiver.url, userCreated(probe))),
    10_000,
    'the receiver to accept deliveries again',
  );
  const receiverBackMs = performance.now() - killedAt;
  expect(probeMs).toBeLessThan(10_000);
  expect((await health(receiver)).status).toBe(200);
  expect(receiver.isRunning()).toBe(true);
  // Restarted from its append-only file, Redis kept its data: no loss to report.
  expect(receiver.output.join('\n')).not.toContain('Redis lost its data');
  users.add(probe);

  await stack.startWorker();
  const drainMs = await stack.waitUntilDrained(DELIVERIES + 1, 60_000);
  expect(await stack.jobCounts()).toMatchObject({ failed: 0, completed: DELIVERIES + 1 });
  await expectExactlyStored(stack.db, users);

  scenario.report({
    acknowledged: acknowledged.size,
    quietBeforeKillMs: QUIET_BEFORE_KILL_MS,
    sinceLastAckAtKillMs: Math.round(killedAt - lastAckAt),
    jobsAfterRestart: survivors.size,
    lost: lost.length,
    redisRestartMs: Math.round(restartMs),
    killToReceiverAcceptingMs: Math.round(receiverBackMs),
    drainMs: Math.round(drainMs),
    stored: DELIVERIES + 1,
  });
});
