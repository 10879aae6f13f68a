import { Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { sampleUserEvent } from '../src/clerk/sample-events.ts';
import { createLogger } from '../src/logger.ts';
import { type ClerkEvent, createQueue } from '../src/queue/queue.ts';
import { createProducerConnection } from '../src/redis.ts';
import { enqueueDelivery } from '../src/webhooks/enqueue.ts';
import { toJobEvent } from '../src/webhooks/job-event.ts';
import { uniqueQueueName } from './support/queue.ts';
import { startPrivateRedis } from './support/redis-server.ts';
import { newSvixId } from './support/svix.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it('sends each new delivery to Redis in one read: the failed-set lookup goes with the add', async () => {
  // A server of its own, so that its count of reads is this connection's alone.
  const server = await startPrivateRedis();
  cleanups.push(() => server.destroy());
  const log = createLogger({ level: 'silent' });
  const connection = createProducerConnection(server.url, log);
  const queue = createQueue(uniqueQueueName(), 'bull', connection, log);
  const stats = new Redis(server.url);
  cleanups.push(async () => {
    await queue.close();
    connection.disconnect();
    stats.disconnect();
  });
  await queue.waitUntilReady();
  // Each INFO is itself one read, counted in the figure it reports.
  const reads = async () =>
    Number(/^total_reads_processed:(\d+)/m.exec(await stats.info('stats'))?.[1]);
  const event = toJobEvent(sampleUserEvent('user.created') as unknown as ClerkEvent);
  const deliver = () =>
    enqueueDelivery(queue, connection, { svixId: newSvixId(), receivedAt: Date.now(), event });
  // The first add sends BullMQ's script itself, too long for one read.
  expect(await deliver()).toBe('queued');
  const deliveries = 20;

  const before = await reads();
  for (let delivery = 0; delivery < deliveries; delivery++) {
    expect(await deliver()).toBe('queued');
  }
  const after = await reads();

  expect(after - before - 1).toBe(deliveries);
  expect(await queue.getWaitingCount()).toBe(deliveries + 1);
});
