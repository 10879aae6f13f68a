import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { WebhookJobData } from '../../src/queue.ts';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Every test gets a queue name of its own. */
export function uniqueQueueName(): string {
  return `test-${randomUUID()}`;
}

/** A plain BullMQ handle on a test queue, for inspecting and cleaning it up. */
export function inspectQueue(name: string): Queue<WebhookJobData> {
  const url = new URL(REDIS_URL);
  return new Queue<WebhookJobData>(name, {
    connection: { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null },
  });
}

export async function removeQueue(queue: Queue): Promise<void> {
  await queue.obliterate({ force: true });
  await queue.close();
}
