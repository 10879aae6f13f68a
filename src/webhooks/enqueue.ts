import { type IRedisTransaction, Job, type Queue } from 'bullmq';
import type { ChainableCommander } from 'ioredis';
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
 * BullMQ's add script answers with the job id whether or not the job existed, so the
 * failed-set lookup rides with the add in one pipeline: one write and one round trip to Redis
 * per delivery. The lookup goes first: if that failed job is trimmed before the add, the add
 * then makes a new one, and an accepted delivery always leaves a job behind.
 */
export async function enqueueDelivery(
  queue: Queue<WebhookJobData>,
  redis: RedisConnection,
  data: WebhookJobData,
): Promise<EnqueueResult> {
  if (!isReady(redis)) throw new QueueUnavailableError(`redis is ${redis.status}`);
  // BullMQ's transaction type names only the commands BullMQ itself sends; with an ioredis
  // connection it is an ioredis pipeline, which has the rest.
  const pipeline = (await queue.getBackend().client).pipeline() as IRedisTransaction &
    Pick<ChainableCommander, 'zscore'>;
  pipeline.zscore(queue.toKey('failed'), data.svixId);
  // What queue.add does, onto the pipeline (as BullMQ's addBulk does): the command is queued
  // before the pipeline is sent, and its reply is the pipeline's second.
  const job = new Job(
    queue,
    data.event.type,
    data,
    { ...queue.defaultJobOptions, jobId: data.svixId },
    data.svixId,
  );
  const adding = job.addJob(pipeline);
  const [replies] = await Promise.all([pipeline.exec(), adding]);
  const [[lookupError, failedAt] = [], [addError] = []] = replies ?? [];
  if (lookupError || addError) throw lookupError ?? addError;
  if (failedAt == null) return 'queued';

  if (await retryFailedJob(queue, data.svixId)) return 'requeued';
  // Another redelivery retried it first, or it was trimmed meanwhile: make sure a job remains.
  await queue.add(data.event.type, data, { jobId: data.svixId });
  return 'requeued';
}
