/**
 * The drain's other baseline: a BullMQ worker with the service's own connection, concurrency
 * and lock settings whose processor does nothing, so its rate is what the queue alone allows
 * one worker process on this machine. Configured like the worker (REDIS_URL, QUEUE_NAME,
 * QUEUE_PREFIX, WORKER_CONCURRENCY, WORKER_METRICS_PORT for its health route).
 */
import { createServer } from 'node:http';
import { Worker } from 'bullmq';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createWorkerConnection } from '../../src/redis.ts';

const config = loadConfig();
const worker = new Worker(config.queueName, async () => ({ outcome: 'created' }), {
  prefix: config.queuePrefix,
  connection: createWorkerConnection(config.redisUrl, createLogger({ level: 'silent' })),
  concurrency: config.workerConcurrency,
  lockDuration: config.workerLockDurationMs,
  stalledInterval: config.workerLockDurationMs,
});
await worker.waitUntilReady();
createServer((_request, response) => response.end('{"status":"ok"}')).listen(
  config.workerMetricsPort,
  '127.0.0.1',
);
process.once('SIGTERM', () => void worker.close().then(() => process.exit(0)));
