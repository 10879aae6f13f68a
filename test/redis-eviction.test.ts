import { describe, expect, it } from 'vitest';
import { DURABILITY_CHECK_INTERVAL_MS } from '../src/redis.ts';
import { useTestDatabase } from './support/hooks.ts';
import {
  type Delivery,
  isAcknowledged,
  newUsers,
  type Outcome,
  send,
  sendAll,
  tally,
} from './support/load.ts';
import { capturingLogger } from './support/logs.ts';
import { useReceiverOnPrivateRedis } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

/** Small enough that these deliveries fill it: an evicting Redis then drops queued jobs. */
const MAX_MEMORY = '4mb';
/** About twice what fits in MAX_MEMORY. */
const DELIVERIES = 3_000;

const db = useTestDatabase({ migrate: false });
const logs = capturingLogger();
const { admin, receiver, queue } = useReceiverOnPrivateRedis(
  db,
  ['--maxmemory', MAX_MEMORY, '--maxmemory-policy', 'allkeys-lru'],
  logs.log,
);

const users = new Set<string>();

/** The svix-ids of the deliveries acknowledged whose job is not in Redis: each one lost. */
async function lost(outcomes: Outcome[]): Promise<string[]> {
  const ids: string[] = [];
  for (const outcome of outcomes.filter(isAcknowledged)) {
    if (!(await queue.getJob(outcome.delivery.svixId))) ids.push(outcome.delivery.svixId);
  }
  return ids;
}

const policyLines = () =>
  logs.records().filter((record) => String(record.msg).startsWith('Redis may evict'));

describe('a Redis whose maxmemory-policy may evict queued jobs', () => {
  it('gets every delivery refused with 503, so that none acknowledged can be evicted, and one error naming the policy', async () => {
    const outcomes = await sendAll(receiver.url, newUsers(DELIVERIES, users));

    expect(await lost(outcomes)).toEqual([]);
    expect(tally(outcomes)).toEqual({ 503: DELIVERIES });
    expect(policyLines()).toEqual([
      expect.objectContaining({ level: 50, maxmemoryPolicy: 'allkeys-lru' }),
    ]);
  });

  it('is accepted again once the policy is noeviction; every delivery acknowledged keeps its job, and a full Redis gets 503s', async () => {
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await waitFor(
      async () => isAcknowledged(await send(receiver.url, newUsers(1, users)[0] as Delivery)),
      3 * DURABILITY_CHECK_INTERVAL_MS,
      'a delivery accepted',
    );
    expect(logs.records()).toContainEqual(
      expect.objectContaining({ level: 40, msg: expect.stringMatching(/no longer evicts/) }),
    );

    const outcomes = await sendAll(receiver.url, newUsers(DELIVERIES, users));
    expect(Object.keys(tally(outcomes)).sort()).toEqual(['202', '503']);
    expect(await lost(outcomes)).toEqual([]);
  });

  it('is refused again when the policy is changed while the receiver runs', async () => {
    await admin.flushall(); // room again: a 503 below is the policy's, not a full Redis's
    await admin.config('SET', 'maxmemory-policy', 'allkeys-random');
    await waitFor(
      async () => (await send(receiver.url, newUsers(1, users)[0] as Delivery)).status === 503,
      3 * DURABILITY_CHECK_INTERVAL_MS,
      'a delivery refused',
    );
    const outcomes = await sendAll(receiver.url, newUsers(DELIVERIES, users));
    expect(await lost(outcomes)).toEqual([]);
    expect(tally(outcomes)).toEqual({ 503: DELIVERIES });
    expect(policyLines().at(-1)).toMatchObject({ maxmemoryPolicy: 'allkeys-random' });
  });
});
