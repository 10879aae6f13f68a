import type { Queue } from 'bullmq';
import { QueueUnavailableError } from '../errors.ts';
import type { WebhookJobData } from '../queue/queue.ts';
import { isReady, type RedisConnection } from '../redis.ts';

export type EnqueueResult = 'queued' | 'requeued';

/**
 * Adds a delivery as the job whose id is its svix-id. BullMQ ignores an add whose id already
 * exists, which makes a duplicate of a waiting, active or completed delivery a no-op; but a
 * job that failed for good would then swallow the redelivery (or dashboard replay) meant to
 * repair it, so a failed job with that id is retried instead.
 */
export async function enqueueDelivery(
  queue: Queue<WebhookJobData>,
  redis: RedisConnection,
  data: WebhookJobData,
): Promise<EnqueueResult> {
  if (!isReady(redis)) throw new QueueUnavailableError(`redis is ${redis.status}`);
  const failedAt = await redis.zscore(queue.toKey('failed'), data.svixId);
  if (failedAt !== null) {
    const job = await queue.getJob(data.svixId);
    if (job) {
      try {
        await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      } catch (error) {
        // A concurrent redelivery may have moved it out of the failed set first.
        if ((await job.getState()) === 'failed') throw error;
      }
      return 'requeued';
    }
  }
  await queue.add(data.event.type, data, { jobId: data.svixId });
  return 'queued';
}
