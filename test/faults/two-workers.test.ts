import { expect, it } from 'vitest';
import {
  asNewMessage,
  createdDeliveries,
  type Delivery,
  newClerkUserIds,
  redelivery,
  shuffle,
} from '../support/load.ts';
import { metricTotal } from '../support/services.ts';
import {
  expectExactlyStored,
  sendAllAcknowledged,
  startScenario,
  useReceiverStack,
} from '../support/stack.ts';

const USERS = 1_200;
const DUPLICATES_AS_NEW_MESSAGES = 400;
const REDELIVERIES = 200;

const { stack, receiver } = useReceiverStack();

it('two workers on one queue process each job once and store each user once', async () => {
  const scenario = startScenario('8 two workers');
  const users = newClerkUserIds(USERS);
  const originals = createdDeliveries(users);
  const deliveries: Delivery[] = [
    ...originals,
    ...originals.slice(0, DUPLICATES_AS_NEW_MESSAGES).map(asNewMessage),
    ...originals.slice(-REDELIVERIES).map(redelivery),
  ];
  shuffle(deliveries);
  const messages = new Set(deliveries.map((delivery) => delivery.svixId)).size;
  const sendStartedAt = performance.now();
  await sendAllAcknowledged(receiver.url, deliveries);
  const sendMs = performance.now() - sendStartedAt;
  expect((await stack.jobCounts()).waiting).toBe(messages);

  const workers = await Promise.all([stack.startWorker(), stack.startWorker()]);
  const drainMs = await stack.waitUntilDrained(USERS, 60_000);

  expect(await stack.jobCounts()).toMatchObject({ completed: messages, failed: 0, active: 0 });
  const perWorker = await Promise.all(
    workers.map((worker) => metricTotal(worker, 'clerk_sync_jobs_completed_total')),
  );
  // Both took part, and between them ran every job exactly once.
  expect(perWorker.every((count) => count > 0)).toBe(true);
  expect(perWorker.reduce((sum, count) => sum + count, 0)).toBe(messages);
  await expectExactlyStored(stack.db, users);

  scenario.report({
    users: USERS,
    deliveries: deliveries.length,
    distinctMessages: messages,
    completedPerWorker: perWorker,
    storedUsers: USERS,
    storedPreferences: USERS,
    sendMs: Math.round(sendMs),
    drainMs: Math.round(drainMs),
  });
});
