import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.ts';
import { createQueue } from '../src/queue/queue.ts';
import {
  BACKOFF_MAX_DELAY_MS,
  cappedExponentialBackoff,
  JOB_ATTEMPTS,
  STACK_TRACE_LIMIT,
} from '../src/queue/retry-policy.ts';
import { startWorker } from '../src/services/worker.ts';
import { testConfig } from './support/config.ts';
import { addDelivery, REDIS_URL, removeQueue, uniqueQueueName } from './support/queue.ts';
import { newSvixId } from './support/svix.ts';
import { waitFor } from './support/wait.ts';

/** Svix's retry schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
const SVIX_RETRY_DELAYS_S = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600];
const HOUR_MS = 3_600_000;

describe('retry policy', () => {
  it('retries with backoff capped at 5 minutes for longer than Svix retries (about 28 hours)', () => {
    const delays = Array.from({ length: JOB_ATTEMPTS - 1 }, (_, index) =>
      cappedExponentialBackoff(index + 1),
    );
    const spanMs = delays.reduce((sum, delay) => sum + delay, 0);
    const svixSpanMs = SVIX_RETRY_DELAYS_S.reduce((sum, delay) => sum + delay, 0) * 1000;

    expect(Math.max(...delays)).toBe(BACKOFF_MAX_DELAY_MS);
    expect(BACKOFF_MAX_DELAY_MS).toBe(5 * 60_000);
    expect(svixSpanMs / HOUR_MS).toBeCloseTo(27.6, 1);
    expect(spanMs).toBeGreaterThan(svixSpanMs);
    expect(spanMs / HOUR_MS).toBeCloseTo(32.6, 1);
  });
});

describe('a delivery processed while PostgreSQL is unreachable', () => {
  const queueName = uniqueQueueName();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = createQueue(queueName, 'bull', redis, createLogger({ level: 'silent' }));
  afterAll(async () => {
    await removeQueue(queue);
    redis.disconnect();
  });

  it('is retried, never failed, keeps at most three stack traces, and is kept by age alone', async () => {
    const worker = await startWorker(
      testConfig({
        DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/unreachable',
        REDIS_URL,
        QUEUE_NAME: queueName,
      }),
      createLogger({ level: 'silent' }),
    );
    const svixId = newSvixId();
    try {
      await addDelivery(queue, svixId);
      // Each failed attempt waits out its backoff in the delayed set; promoting it runs the
      // next attempt at once, as the backoff would after its delay.
      const ATTEMPTS_RUN = 6;
      for (let attempt = 1; attempt <= ATTEMPTS_RUN; attempt++) {
        await waitFor(
          async () =>
            (await queue.getJobState(svixId)) === 'delayed' &&
            (await queue.getJob(svixId))?.attemptsMade === attempt,
          15_000,
          `attempt ${attempt} to fail and be scheduled again`,
        );
        if (attempt < ATTEMPTS_RUN) await (await queue.getJob(svixId))?.promote();
      }
    } finally {
      await worker.stop();
    }

    const job = await queue.getJob(svixId);
    expect(await queue.getJobState(svixId)).toBe('delayed');
    expect(job?.failedReason).toMatch(/ECONNREFUSED|connect/);
    expect(job?.stacktrace).toHaveLength(STACK_TRACE_LIMIT);
    expect(STACK_TRACE_LIMIT).toBe(3);
    expect(job?.opts).toMatchObject({ attempts: JOB_ATTEMPTS, stackTraceLimit: 3 });
    expect(job?.opts.removeOnFail).toEqual({ age: 14 * 24 * 60 * 60 });
  });
});
