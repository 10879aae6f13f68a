/**
 * Baseline (c), the ceiling for a receiver that queues durably: verify the Svix signature, make
 * one BullMQ add whose job id is the svix-id (the verified body as the job's data; the
 * receiver's connection settings and job options), answer 200. Nothing else: no parsing, no
 * validation, no metrics, no request logging.
 */
import { Queue } from 'bullmq';
import { createLogger } from '../../src/logger.ts';
import { DEFAULT_JOB_OPTIONS } from '../../src/queue/retry-policy.ts';
import { createProducerConnection } from '../../src/redis.ts';
import { serveVerifiedWebhooks } from './server.ts';

const queue = new Queue(process.env.QUEUE_NAME ?? '', {
  connection: createProducerConnection(process.env.REDIS_URL ?? '', createLogger()),
  prefix: process.env.QUEUE_PREFIX,
  defaultJobOptions: DEFAULT_JOB_OPTIONS,
});

serveVerifiedWebhooks((body, svixId) =>
  queue.add('webhook', body.toString('utf8'), { jobId: svixId }),
);
