import { randomUUID } from 'node:crypto';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { clerkId, sampleUserEvent } from '../../src/clerk/sample-events.ts';
import { createLogger } from '../../src/logger.ts';
import { type ClerkEvent, createQueue, type WebhookJobData } from '../../src/queue/queue.ts';
import { toJobEvent } from '../../src/webhooks/job-event.ts';
import { newSvixId } from './svix.ts';
import { waitFor } from './wait.ts';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Every test gets a queue name of its own. */
export function uniqueQueueName(): string {
  return `test-${randomUUID()}`;
}

/** A plain BullMQ handle on a test queue (in the test's Redis unless told), for inspecting and cleaning it up. */
export function inspectQueue(name: string, redisUrl = REDIS_URL): Queue<WebhookJobData> {
  const url = new URL(redisUrl);
  return new Queue<WebhookJobData>(name, {
    connection: { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null },
  });
}

export async function removeQueue(queue: Queue): Promise<void> {
  await queue.obliterate({ force: true });
  await queue.close();
}

/** A user.created delivery as the receiver queues it: the trimmed event, its svix-id as job id. */
export function deliveryJob(svixId = newSvixId(), clerkUserId = clerkId('user')) {
  const event = toJobEvent(
    sampleUserEvent('user.created', { id: clerkUserId }) as unknown as ClerkEvent,
  );
  const data: WebhookJobData = { svixId, receivedAt: Date.now(), event };
  return { name: event.type, data, opts: { jobId: svixId } };
}

export function addDelivery(queue: Queue<WebhookJobData>, svixId?: string, clerkUserId?: string) {
  const { name, data, opts } = deliveryJob(svixId, clerkUserId);
  return queue.add(name, data, opts);
}

/**
 * Fails every job waiting in the queue for good, as a payload that can never succeed does (the
 * reason quotes an email address, which readers of the failed set must not show), and waits
 * until `count` jobs are in the failed set.
 */
export async function failWaitingJobs(queue: Queue, count: number): Promise<void> {
  const failing = new Worker(
    queue.name,
    async () => {
      throw new UnrecoverableError('simulated failure for person@example.com');
    },
    { connection: inspectQueue(queue.name).opts.connection, prefix: queue.opts.prefix },
  );
  try {
    await waitFor(async () => (await queue.getFailedCount()) >= count, 10_000, 'failed jobs');
  } finally {
    await failing.close();
  }
}

export interface QueueWithFailures {
  queue: Queue<WebhookJobData>;
  /** The test's own connection to the queue's Redis, for reading keys directly. */
  redis: Redis;
  failed: { svixId: string; clerkUserId: string }[];
  waitingId: string;
  remove(): Promise<void>;
}

/**
 * A queue of its own, with the service's job options, holding three deliveries that failed for
 * good and one that waits.
 */
export async function queueWithFailures(): Promise<QueueWithFailures> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = createQueue(uniqueQueueName(), 'bull', redis, createLogger({ level: 'silent' }));
  const failed = Array.from({ length: 3 }, () => ({
    svixId: newSvixId(),
    clerkUserId: clerkId('user'),
  }));
  for (const { svixId, clerkUserId } of failed) await addDelivery(queue, svixId, clerkUserId);
  await failWaitingJobs(queue, failed.length);
  const waitingId = newSvixId();
  await addDelivery(queue, waitingId);
  return {
    queue,
    redis,
    failed,
    waitingId,
    async remove() {
      await removeQueue(queue);
      redis.disconnect();
    },
  };
}
