/**
 * Redis memory taken by failed jobs, which are trimmed by age only: queues JOBS deliveries
 * (100,000 by default) shaped as the receiver queues them, fails each one as a job that used
 * up its attempts does (three attempts, so it keeps STACK_TRACE_LIMIT stack traces, each of
 * the error a job meets while PostgreSQL is unreachable), and reports Redis's used_memory
 * before and after. Runs against a private redis-server, which it removes afterwards.
 *   node bench/failed-jobs-memory.ts            (JOBS=10000 for a shorter run)
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createLogger } from '../src/logger.ts';
import { createORM } from '../src/orm.ts';
import { createQueue } from '../src/queue/queue.ts';
import { STACK_TRACE_LIMIT } from '../src/queue/retry-policy.ts';
import { applyUserChanges } from '../src/users/apply-user-changes.ts';
import { clerkUserSchema } from '../src/users/clerk-user.ts';
import { deliveryJob, removeQueue } from '../test/support/queue.ts';
import { startPrivateRedis, usedMemory } from '../test/support/redis-server.ts';

const JOBS = Number(process.env.JOBS ?? 100_000);
const BATCH = 1_000;

/** The error a job meets while PostgreSQL is unreachable, with its stack through the ORM. */
async function databaseError(): Promise<Error> {
  const { orm, em } = createORM('postgresql://postgres@127.0.0.1:1/unreachable');
  const { event } = deliveryJob().data;
  try {
    await applyUserChanges(em.fork(), [
      { kind: 'upsert', user: clerkUserSchema.parse(event.data) },
    ]);
    return new Error('unexpectedly connected');
  } catch (error) {
    return error as Error;
  } finally {
    await orm.close(true);
  }
}

const server = await startPrivateRedis();
const redis = new Redis(server.url, { maxRetriesPerRequest: null });
const workerConnection = new Redis(server.url, { maxRetriesPerRequest: null });
const queueName = 'failed-jobs-memory';
const queue = createQueue(queueName, 'bull', redis, createLogger({ level: 'silent' }));
const error = await databaseError();
try {
  const before = await usedMemory(redis);
  const startedAt = performance.now();
  for (let added = 0; added < JOBS; added += BATCH) {
    const jobs = Array.from({ length: Math.min(BATCH, JOBS - added) }, () => {
      const job = deliveryJob();
      // Three attempts without backoff stand for the 400 of a long outage: either way the job
      // keeps STACK_TRACE_LIMIT traces.
      return { ...job, opts: { ...job.opts, attempts: STACK_TRACE_LIMIT, backoff: undefined } };
    });
    await queue.addBulk(jobs);
  }
  const worker = new Worker(
    queueName,
    async () => {
      const failure = new Error(error.message);
      failure.stack = error.stack;
      throw failure;
    },
    { connection: workerConnection, concurrency: 100 },
  );
  while ((await queue.getFailedCount()) < JOBS) {
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await worker.close();
  const after = await usedMemory(redis);
  const [sample] = await queue.getFailed(0, 0);
  console.log(
    JSON.stringify(
      {
        failedJobs: await queue.getFailedCount(),
        stackTracesPerJob: sample?.stacktrace?.length,
        bytesPerStackTrace: error.stack?.length,
        seconds: Number(((performance.now() - startedAt) / 1000).toFixed(1)),
        redisUsedMemoryBeforeMiB: Number((before / 2 ** 20).toFixed(1)),
        redisUsedMemoryAfterMiB: Number((after / 2 ** 20).toFixed(1)),
        bytesPerFailedJob: Math.round((after - before) / JOBS),
      },
      null,
      2,
    ),
  );
} finally {
  await removeQueue(queue);
  redis.disconnect();
  workerConnection.disconnect();
  await server.destroy();
}
