import { Job, type Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QueueUnavailableError } from '../errors.ts';
import { retryFailedJob } from '../queue/failed-jobs.ts';
import type { WebhookJobData } from '../queue/queue.ts';
import { isReady, type RedisConnection } from '../redis.ts';

export type EnqueueResult = 'queued' | 'requeued';

/**
 * Adds a delivery as the job whose id is its svix-id. BullMQ ignores an add whose id already
 * exists, which makes a duplicate of a waiting, active or completed delivery a no-op; but a
 * job that failed for good would then swallow the redelivery (or dashboard replay) meant to
 * repair it, so a failed job with that id is retried instead.
 *
 * BullMQ's add script answers with the job id whether or not the job existed, so the lookup in
 * the failed set goes with the add: both commands in one socket write and one round trip. The
 * lookup is sent first: if that failed job is trimmed before the add, the add makes a new one,
 * and an accepted delivery always leaves a job behind.
 */
export async function enqueueDelivery(
  queue: Queue<WebhookJobData>,
  redis: RedisConnection,
  data: WebhookJobData,
): Promise<EnqueueResult> {
  if (!isReady(redis)) throw new QueueUnavailableError(`redis is ${redis.status}`);
  const client = await queue.getBackend().client;
  // What queue.add does, with the client in hand, so that the add is written at once.
  const job = new Job(
    queue,
    data.event.type,
    data,
    { ...queue.defaultJobOptions, jobId: data.svixId },
    data.svixId,
  );
  // A write to the socket costs the receiver more CPU than either command: corked, the two
  // go out as one. (An ioredis pipeline would too, but copies every BullMQ script onto each.)
  const socket = redis instanceof Redis ? redis.stream : undefined;
  socket?.cork();
  const replies = Promise.all([
    redis.zscore(queue.toKey('failed'), data.svixId),
    job.addJob(client),
  ]);
  socket?.uncork();
  const [failedAt] = await replies;
  if (failedAt === null) return 'queued';
  if (!(await retryFailedJob(queue, data.svixId))) {
    // Another redelivery retried it first, or it was trimmed meanwhile: make sure a job remains.
    await queue.add(data.event.type, data, { jobId: data.svixId });
  }
  return 'requeued';
}
