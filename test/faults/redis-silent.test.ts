import { expect, it } from 'vitest';
import { cleanUpAfterEach } from '../support/hooks.ts';
import { type Delivery, isAcknowledged, newUsers, redelivery, send } from '../support/load.ts';
import {
  expectExactlyStored,
  sendAllAcknowledged,
  startScenario,
  timeUntil,
  useFaultStack,
} from '../support/stack.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

const BATCH = 100;
/**
 * The receiver replaces a connection that has not answered for 5 s, the worker one that has not
 * answered for 15 s (longer than BullMQ's blocking reads); the rest is margin.
 */
const RECEIVER_LIMIT_MS = 20_000;
const WORKER_LIMIT_MS = 45_000;

const stack = useFaultStack();
const cleanUpLater = cleanUpAfterEach();

it('replaces Redis connections that went silent without a reset, in the receiver and the worker', async () => {
  const scenario = startScenario('redis connections silent');
  // Between both processes and Redis: a route that can drop every open connection silently (a
  // NAT or load balancer forgetting them, a partition) while new connections get through.
  const route = await startTcpProxy(stack.redis.url);
  cleanUpLater(() => route.close());
  const receiver = await stack.startReceiver({ REDIS_URL: route.url });
  const worker = await stack.startWorker({ REDIS_URL: route.url });
  const users = new Set<string>();
  await sendAllAcknowledged(receiver.url, newUsers(BATCH, users));
  await stack.waitUntilDrained(users.size, 30_000);

  route.stallAll();
  const stalled = route.open;
  const refused: Delivery[] = [];
  const acceptedAfterMs = await timeUntil(
    async () => {
      const [probe] = newUsers(1, users) as [Delivery];
      const accepted = isAcknowledged(await send(receiver.url, probe));
      if (!accepted) refused.push(probe);
      return accepted;
    },
    RECEIVER_LIMIT_MS,
    'the receiver to accept deliveries again',
  );
  // Svix sends each refused delivery again, and the receiver acknowledges it now.
  await sendAllAcknowledged(receiver.url, refused.map(redelivery));
  await sendAllAcknowledged(receiver.url, newUsers(BATCH, users));
  const drainedAfterMs = await stack.waitUntilDrained(users.size, WORKER_LIMIT_MS);

  expect((await stack.jobCounts()).failed).toBe(0);
  await expectExactlyStored(stack.db, users);
  expect(receiver.isRunning() && worker.isRunning()).toBe(true);
  scenario.report({
    connectionsStalled: stalled,
    refusedMeanwhile: refused.length,
    acceptedAgainAfterMs: Math.round(acceptedAfterMs),
    drainedAfterMs: Math.round(drainedAfterMs),
  });
});
