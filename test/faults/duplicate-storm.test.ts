import { expect, it } from 'vitest';
import { sql } from '../support/database.ts';
import {
  asNewMessage,
  type Delivery,
  newClerkUserIds,
  redelivery,
  shuffle,
  userCreated,
  userUpdated,
} from '../support/load.ts';
import {
  expectExactlyStored,
  sendAllAcknowledged,
  startScenario,
  useRunningStack,
} from '../support/stack.ts';

const USERS = 400;
const CONCURRENCY = 64;

const { stack, receiver, worker } = useRunningStack();

it('stores one user and one preferences row per user from a shuffled, concurrent storm of duplicates', async () => {
  const scenario = startScenario('6 duplicate storm');
  const users = newClerkUserIds(USERS);
  const createdAt = Date.now() - 60_000;
  const finalEmail = new Map<string, string>();
  const deliveries: Delivery[] = [];
  for (const id of users) {
    const created = userCreated(id, { updatedAt: createdAt });
    const email = `${id.toLowerCase()}.new@example.com`;
    finalEmail.set(id, email);
    const updated = userUpdated(id, { updatedAt: createdAt + 1_000, email });
    deliveries.push(
      // Svix retries of one message: the same svix-id three times...
      created,
      redelivery(created),
      redelivery(created),
      // ...and Clerk's duplicates of one event: new svix-ids, same payload.
      asNewMessage(created),
      asNewMessage(created),
      updated,
      redelivery(updated),
      asNewMessage(updated),
    );
  }
  const messages = new Set(deliveries.map((delivery) => delivery.svixId)).size;
  shuffle(deliveries);

  await sendAllAcknowledged(receiver.url, deliveries, CONCURRENCY);
  const drainMs = await stack.waitUntilDrained(USERS, 60_000);

  expect(await stack.jobCounts()).toMatchObject({ completed: messages, failed: 0 });
  await expectExactlyStored(stack.db, users);
  const rows = await sql<{ clerk_user_id: string; email: string }>(
    stack.db,
    'select clerk_user_id, email from users',
  );
  const stale = rows.filter((row) => row.email !== finalEmail.get(row.clerk_user_id));
  expect(stale.length, 'users left with an older email than their newest event').toBe(0);
  expect(worker.isRunning()).toBe(true);

  scenario.report({
    users: USERS,
    deliveries: deliveries.length,
    distinctMessages: messages,
    acknowledged: deliveries.length,
    jobsCompleted: messages,
    storedUsers: USERS,
    storedPreferences: USERS,
    drainAfterLastAckMs: Math.round(drainMs),
  });
});
